"""The model file (``model.pt``): a versioned dict of plain types and tensors.

It loads with ``torch.load(weights_only=True)``, so loading never runs code and never needs the
user's classes. Contents: format, version, graph, weights (projection → ``[post, pre]``), dt,
discretisation (``native`` or ``nir-euler``, with a description of what it means; the graph
carries the kind, so that deployments made from the model simulate it the same way), encoding,
dataset, seed, training settings and metrics, provenance (e.g. where an imported graph came
from), software version; after
in-the-loop training also ``mapping``: the quantisation scales and readout potential scale it was
trained with (``map`` keeps them), the measured trace alignment and ``trained_on`` (chip, backend,
calibration checksum); from version 4 ``checksum``, the SHA-256 of everything else
(:mod:`neurodeploy.validation.checksum`); from version 5 ``recurrent``, the constraints (mask, sign,
learnable) of each recurrent projection, which `itl` keeps as training did.

Loading checks everything before anything uses it (:mod:`neurodeploy.validation.model`: every key,
type, shape, range and cross-field invariant of the file's version), then the checksum: a file
edited or damaged after writing is refused. Versions 1-3 (no checksum) and 4 (no constraints) still load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .atomic import atomic_path
from .errors import FileKindError
from .fileformat import Envelope, read_envelope
from .graph import Graph
from .validation.checksum import FIELD as CHECKSUM, digest
from .validation.model import check_model_dict
from .validation.rules import Invalid, refusal

FORMAT = "neurodeploy.model"
# 2: learnable synaptic delays (``delays``, ``delay_sigma_steps``); 3: the discretisation's kind; 4: ``checksum``;
# 5: ``recurrent``, the constraints of recurrent projections (a reader that ignored them would break them in `itl`)
VERSION = 5
READABLE_VERSIONS = (1, 2, 3, 4, 5)  # 1 and 2 are native models; 1 has no delays; 1-3 no checksum; 1-4 no constraints
ENVELOPE = Envelope("model file", FORMAT, READABLE_VERSIONS,
                    "train one with `neurodeploy train RECIPE -o MODEL`, or import a NIR graph")
DISCRETISATIONS = {  # written into every model file, keyed by ``kind`` (the graph's ``discretisation``)
    "native": {
        "kind": "native",
        "integration": "exact exponential decay per step",
        "update_order": ["synapse", "membrane (clamped while refractory)", "spike", "reset", "refractory counter"],
        "reset": "to v_reset",
        "transmission_latency_steps": 1,
    },
    "nir-euler": {
        "kind": "nir-euler",
        "integration": "forward Euler of NIR's equations; time constants stored as the exact exponential ones "
                       "with the same decay per step, input gains (r, w_in, dt/tau_syn) folded into the weights",
        "update_order": ["synapse", "membrane", "spike (v > v_th)", "reset"],
        "reset": "to v_reset, or by subtraction where the population says so; no refractory period",
        "transmission_latency_steps": 0,
    },
}


@dataclass
class ModelFile:
    graph: Graph
    weights: dict  # projection name → float tensor [post, pre]
    dt_s: float
    encoding: dict
    dataset: str
    seed: int
    training: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    delays: dict = field(default_factory=dict)  # delayed projection → float delays [post, pre] in steps
    delay_sigma_steps: dict = field(default_factory=dict)  # delayed projection → σ of its kernel at the end
    mapping: dict = field(default_factory=dict)  # set by `itl`: pinned scales, alignment, trained_on
    recurrent: dict = field(default_factory=dict)  # recurrent projection → {mask, sign, learnable} (core/recurrent.py)

    @property
    def discretisation(self) -> str:
        """``native`` or ``nir-euler``: the graph's, which every simulation of the model follows."""
        return self.graph.discretisation

    def to_dict(self) -> dict[str, Any]:
        """The file's contents: :meth:`payload` and its checksum."""
        payload = self.payload()
        return {**payload, CHECKSUM: digest(payload)}

    def payload(self) -> dict[str, Any]:
        """Everything the file holds but its checksum (plain types and tensors)."""
        return {"format": FORMAT, "version": VERSION, "software_version": __version__,
                "graph": self.graph.to_dict(), "weights": {k: v.detach().cpu().float().contiguous()
                                                           for k, v in self.weights.items()},
                "dt_s": float(self.dt_s), "discretisation": DISCRETISATIONS[self.discretisation],
                "encoding": dict(self.encoding),
                "dataset": self.dataset, "seed": int(self.seed), "training": dict(self.training),
                "metrics": dict(self.metrics), "provenance": dict(self.provenance),
                "delays": {k: v.detach().cpu().float().contiguous() for k, v in self.delays.items()},
                "delay_sigma_steps": {k: float(v) for k, v in self.delay_sigma_steps.items()},
                "recurrent": {k: dict(v) for k, v in self.recurrent.items()},
                **({"mapping": dict(self.mapping)} if self.mapping else {})}


def save_model(model: ModelFile, path: str | Path) -> None:
    """Write atomically: a crash never leaves a half-written model file."""
    with atomic_path(path) as tmp:
        torch.save(model.to_dict(), tmp)


def _read(path: str | Path) -> tuple[dict, Graph]:
    data = read_envelope(path, ENVELOPE, lambda p: torch.load(p, map_location="cpu", weights_only=True))
    return data, check_model_file(data, str(path))


def read_model_dict(path: str | Path) -> dict:
    """The file's contents as stored (plain types and tensors), after every check :func:`load_model` makes."""
    return _read(path)[0]


def check_model_file(data: dict, source: str) -> Graph:
    """Validate a loaded model dict (:func:`~neurodeploy.validation.model.check_model_dict`), then its checksum
    (required from version 4; verified wherever present); returns its graph. ``FileKindError`` otherwise."""
    remedy = "re-create it with `neurodeploy train`, `neurodeploy import` or `neurodeploy itl`"
    try:
        graph = check_model_dict(data)
    except Invalid as invalid:
        raise refusal(FileKindError, f"model file {source}", invalid, remedy, prefer_remedy=True) from None
    if CHECKSUM in data and data[CHECKSUM] != digest({k: v for k, v in data.items() if k != CHECKSUM}):
        raise FileKindError(f"model file {source} fails its checksum: it was edited or damaged after writing",
                            remedy)
    return graph


def load_model(path: str | Path) -> ModelFile:
    """Read a model file; anything missing, malformed, out of range or changed after writing is a
    ``FileKindError`` naming the field."""
    data, graph = _read(path)
    return ModelFile(graph=graph, weights={k: v.detach().float() for k, v in data["weights"].items()},
                     dt_s=float(data["dt_s"]),
                     encoding=dict(data["encoding"]), dataset=data["dataset"], seed=int(data["seed"]),
                     training=dict(data["training"]), metrics=dict(data["metrics"]),
                     provenance=dict(data["provenance"]),
                     delays={k: v.detach().float() for k, v in data.get("delays", {}).items()},
                     delay_sigma_steps=dict(data.get("delay_sigma_steps", {})),
                     mapping=_detached(dict(data.get("mapping", {}))),
                     recurrent={k: dict(v) for k, v in data.get("recurrent", {}).items()})


def _detached(tree: Any) -> Any:
    """Tensors as plain values: a file may hold one that requires a gradient, which nothing here wants."""
    if isinstance(tree, torch.Tensor):
        return tree.detach()
    return {k: _detached(v) for k, v in tree.items()} if isinstance(tree, dict) else tree
