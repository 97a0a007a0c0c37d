"""The deployment file: a chip's complete configuration, versioned, without pickle.

One ``.npz`` archive (read with ``allow_pickle=False``): named integer/float arrays (placement,
synapse weights and labels, row modes, routes, per-circuit analog settings, float reference weights)
and a JSON document ``meta`` (format, version, target, graph, dt, encoding, report). It loads
without the model file and without any user code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .atomic import atomic_path
from .fileformat import Envelope, read_envelope

FORMAT = "neurodeploy.deployment"
VERSION = 2  # 2: delay realisations (``delay_copies``, ``float_delay:*``, meta ``delays``)
READABLE_VERSIONS = (1, 2)  # a version-1 deployment is one without delays
ENVELOPE = Envelope("deployment", FORMAT, READABLE_VERSIONS,
                    "map a model with `neurodeploy map MODEL --target TARGET -o OUT`")


@dataclass
class Deployment:
    meta: dict
    arrays: dict  # name → np.ndarray

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    @property
    def target(self) -> str:
        return self.meta["target"]

    def float_weights(self) -> dict:
        return {k.split(":", 1)[1]: v for k, v in self.arrays.items() if k.startswith("float_weight:")}


def save_deployment(deployment: Deployment, path: str | Path) -> None:
    meta = {"format": FORMAT, "version": VERSION, "software_version": __version__, **deployment.meta}
    payload = {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **deployment.arrays}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **payload)


def _read_archive(path: Path, arrays: dict) -> dict:
    """The archive's JSON ``meta``; its named arrays go into ``arrays``."""
    with np.load(path, allow_pickle=False) as archive:
        arrays.update({name: archive[name] for name in archive.files})
    return json.loads(arrays.pop("meta").tobytes().decode())


def load_deployment(path: str | Path) -> Deployment:
    arrays: dict = {}
    meta = read_envelope(path, ENVELOPE, lambda p: _read_archive(p, arrays))
    return Deployment(meta=meta, arrays=arrays)
