"""``run --record``: what a backend did on a few samples, beside what the software model does on them.

A recording (``.npz``, format ``neurodeploy.recording``) holds, for the first ``samples`` samples:

* ``spikes`` ``[T, B, N]`` (uint8) of every logical neuron on the backend, and ``software_spikes`` of the
  deployment's float network on the same samples (the software backend), neurons in the same order;
* ``membrane`` ``[T, B, R]`` of the recorded neurons ``recorded`` ``[R]`` in **model units** (the backend's
  readings, e.g. CADC samples on a mock chip, minus the rest potential the deployment asked for, divided by
  its layer's CADC per model unit, plus the layer's ``v_leak``), and ``software_readout`` ``[T, B, C]``, the
  float network's readout membrane;
* ``labels``, ``predictions`` (on the backend), ``neuron_layer``;
* ``meta`` (JSON): backend, chip, layers and their kinds, the model time step (both runs share it: the chip's
  hardware step is the model's divided by the speed-up), counters.

So chip and software can be overlaid step by step (:mod:`neurodeploy.plots`, ``neurodeploy plot``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from .. import __version__
from ..api import for_backend
from ..atomic import atomic_path, check_output
from ..backends.base import Recording, readout_scores
from ..backends.registry import get_backend
from ..backends.retry import Retrying
from ..backends.software import SoftwareBackend
from ..data.datasets import load_data
from ..data.encoding import encode
from ..errors import FileKindError, NeurodeployError
from ..graph import Graph
from ..validation.loading import load_checked_deployment

FORMAT = "neurodeploy.recording"
VERSION = 1
MAX_SAMPLES = 10_000


def _model_units(membrane: torch.Tensor, recorded: np.ndarray, baseline: torch.Tensor, neuron_layer: np.ndarray,
                 per_unit: list[float], v_leak: list[float]) -> np.ndarray:
    """Backend readings → model units, per neuron's layer (see the module docstring)."""
    layer = neuron_layer[recorded]
    scale = torch.as_tensor([per_unit[i] for i in layer], dtype=torch.float32)
    leak = torch.as_tensor([v_leak[i] for i in layer], dtype=torch.float32)
    return ((membrane.float() - baseline.float()) / scale + leak).numpy().astype(np.float32)


def record(deployment_path: str | Path, output: str | Path, backend: str = "mock:ideal", data: Optional[str] = None,
           samples: int = 100, calibration: Optional[str | Path] = None) -> dict:
    """Run the first ``samples`` samples on ``backend`` and in software, and write the recording ``output``."""
    check_output(output, (deployment_path, calibration))
    if not 1 <= samples <= MAX_SAMPLES:
        raise NeurodeployError(f"--record-samples {samples} is outside 1..{MAX_SAMPLES}", "record fewer samples")
    loaded = load_checked_deployment(deployment_path)
    if "graph" not in loaded.meta:
        raise FileKindError(f"{deployment_path} is a chip experiment, not a model's deployment",
                            "record a deployment made by `neurodeploy map`")
    x, y = load_data(loaded.meta["dataset"], data)
    x, y = x[:samples], y[:samples]
    times = encode(x, loaded.meta["encoding"])
    engine = Retrying(get_backend(backend))
    deployment = for_backend(loaded, engine, calibration)
    obs = engine.run(deployment, times, Recording(spikes=True, membrane=True))
    reference = SoftwareBackend().run(deployment, times)
    graph = Graph.from_dict(deployment.meta["graph"])
    layers = deployment.meta["layers"]
    neuron_layer = np.asarray(deployment["neuron_layer"]) if "neuron_layer" in deployment.arrays else \
        np.repeat(np.arange(len(layers)), [graph.population(name).size for name in layers])
    report_layers = {row["name"]: row for row in deployment.meta.get("report", {}).get("layers", [])}
    is_chip = obs.time_step_s != deployment.meta["dt_s"]  # a chip's readings are in its own units (CADC)
    per_unit = [float(report_layers.get(name, {}).get("cadc_per_model_unit", 1.0)) if is_chip else 1.0
                for name in layers]
    v_leak = [graph.population(name).parameters.v_leak for name in layers]
    recorded = np.asarray(obs.recorded, np.int64)
    arrays = {
        "spikes": obs.spikes.numpy().astype(np.uint8), "software_spikes": reference.spikes.numpy().astype(np.uint8),
        "membrane": _model_units(obs.membrane, recorded, obs.baseline, neuron_layer, per_unit, v_leak),
        "recorded": recorded, "software_readout": reference.membrane.numpy().astype(np.float32),
        "labels": np.asarray(y, np.int64), "neuron_layer": neuron_layer.astype(np.int64),
        "predictions": readout_scores(deployment, obs).argmax(1).numpy().astype(np.int64),
    }
    meta = {"format": FORMAT, "version": VERSION, "software_version": __version__, "backend": engine.name,
            "chip": engine.chip_id, "layers": layers, "layer_kinds": deployment.meta["layer_kinds"],
            "time_step_s": float(deployment.meta["dt_s"]), "dataset": deployment.meta["dataset"],
            "samples": int(len(y)), "counters": dict(obs.counters), "deployment": str(deployment_path)}
    payload: dict[str, Any] = {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays}
    with atomic_path(output) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **payload)
    accuracy = float((arrays["predictions"] == arrays["labels"]).mean())
    return {"output": str(output), "backend": engine.name, "samples": int(len(y)), "accuracy": accuracy,
            "spikes": int(arrays["spikes"].sum()), "software_spikes": int(arrays["software_spikes"].sum()),
            "recorded_neurons": int(len(recorded))}


def load_recording(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """``(meta, arrays)`` of a recording; anything else is a ``FileKindError``."""
    path = Path(path)
    fix = "write one with `neurodeploy run DEPLOYMENT --record -o rec.npz`"
    if not path.is_file():
        raise FileKindError(f"recording {path} does not exist", fix)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        meta = json.loads(bytes(arrays.pop("meta")).decode())
    except Exception as exc:  # zip, zlib, JSON or a missing entry: a damaged or foreign file
        raise FileKindError(f"{path} is not a readable recording ({type(exc).__name__})", fix) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise FileKindError(f"{path} is not a neurodeploy recording (version {VERSION})", fix)
    missing = {"spikes", "software_spikes", "membrane", "recorded", "neuron_layer", "labels"} - set(arrays)
    if missing:
        raise FileKindError(f"recording {path} lacks {sorted(missing)}", fix)
    return meta, arrays
