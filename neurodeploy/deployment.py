"""The deployment file: a chip's complete configuration, versioned, without pickle.

One ``.npz`` archive (read with ``allow_pickle=False``): named integer/float arrays (placement,
synapse weights and labels, row modes, routes, per-circuit analog settings, float reference weights)
and a JSON document ``meta`` (format, version, target, graph, dt, encoding, report). It loads
without the model file and without any user code.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .atomic import atomic_path
from .errors import FileKindError

FORMAT = "neurodeploy.deployment"
VERSION = 2  # 2: delay realisations (``delay_copies``, ``float_delay:*``, meta ``delays``)
READABLE_VERSIONS = (1, 2)  # a version-1 deployment is one without delays


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


def load_deployment(path: str | Path) -> Deployment:
    path = Path(path)
    if not path.is_file():
        raise FileKindError(f"deployment {path} does not exist",
                            "create one with `neurodeploy map MODEL --target bss2 -o OUT`")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        meta = json.loads(arrays.pop("meta").tobytes().decode())
    except (zipfile.BadZipFile, ValueError, KeyError, OSError, EOFError, UnicodeDecodeError) as exc:
        raise FileKindError(f"{path} is not a readable deployment: truncated, corrupted or another kind "
                            f"({type(exc).__name__})", "re-create it with `neurodeploy map`") from None
    if meta.get("format") != FORMAT:
        raise FileKindError(f"{path} is not a neurodeploy deployment (format {meta.get('format')!r})",
                            "give a file written by `neurodeploy map`")
    if meta.get("version") not in READABLE_VERSIONS:
        raise FileKindError(f"{path} has deployment version {meta.get('version')}, this neurodeploy reads "
                            f"{', '.join(map(str, READABLE_VERSIONS))}",
                            "map the model again with this version")
    return Deployment(meta=meta, arrays=arrays)
