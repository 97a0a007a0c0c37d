"""``evaluate``: a model file's accuracy in software (float weights)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional


from ..data.datasets import load_data
from ..data.encoding import encode_dataset
from ..modelfile import load_model
from ..models.delayed import network_from_model
from ..scoring import accuracy, batched_scores


def evaluate(model_path: str | Path, data: Optional[str] = None) -> dict:
    """Accuracy of the model on ``data`` (default: its dataset's test split, or a ``.npz`` file)."""
    model = load_model(model_path)
    x, y = load_data(model.dataset, data)
    spikes = encode_dataset(x, model.encoding, model.dt_s)
    net = network_from_model(model)
    how = model.training.get("loss", "max_over_time")
    scores = batched_scores(lambda s: net(s).readout_v, spikes, how)
    result = {"accuracy": accuracy(scores, y), "n_samples": int(len(y)), "backend": "software",
              "model": str(model_path), "dataset": model.dataset, "data": data or "test"}
    if model.delays:  # what a chip realises: integer delays
        hard = network_from_model(model, hardened=True)
        result["accuracy_hardened"] = accuracy(batched_scores(lambda s: hard(s).readout_v, spikes, how), y)
    return result
