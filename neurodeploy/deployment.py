"""The deployment file: a chip's complete configuration, versioned, without pickle.

One ``.npz`` archive (read with ``allow_pickle=False``): named integer/float arrays (placement,
synapse weights and labels, row modes, routes, per-circuit analog settings, float reference weights)
and a JSON document ``meta`` (format, version, target, graph, dt, encoding, report, and from version 3
``checksum``: SHA-256 of the meta and every array, :mod:`neurodeploy.validation.checksum`). It loads
without the model file and without any user code.

:func:`load_deployment` checks what every deployment holds (:mod:`neurodeploy.validation.deployment`)
and the checksum; :func:`neurodeploy.validation.load_checked_deployment` also has the deployment's
target check its own arrays, which is what the verbs use. Versions 1 and 2 (no checksum) still load.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from . import __version__
from .atomic import atomic_path
from .errors import FileKindError
from .fileformat import Envelope, read_envelope

FORMAT = "neurodeploy.deployment"
VERSION = 3  # 2: delay realisations (``delay_copies``, ``float_delay:*``, meta ``delays``); 3: meta ``checksum``
READABLE_VERSIONS = (1, 2, 3)  # a version-1 deployment is one without delays; 1 and 2 have no checksum
ENVELOPE = Envelope("deployment", FORMAT, READABLE_VERSIONS,
                    "map a model with `neurodeploy map MODEL --target TARGET -o OUT`")
MAX_BYTES = 2**30  # a deployment's arrays, uncompressed: a full BSS-2 configuration is about 0.3 MiB
ENVELOPE_KEYS = ("format", "version", "software_version", "checksum")


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


def checksum_of(meta: dict, arrays: dict) -> str:
    """The checksum of a deployment: its meta (as JSON gives it back, without ``checksum``) and its arrays."""
    from .validation.checksum import digest

    plain = json.loads(json.dumps({k: v for k, v in meta.items() if k != "checksum"}))
    return digest({"meta": plain, "arrays": {name: np.asarray(value) for name, value in arrays.items()}})


def save_deployment(deployment: Deployment, path: str | Path) -> None:
    """Write atomically, with the current format, version and checksum (whatever ``deployment.meta`` says)."""
    meta = {"format": FORMAT, "version": VERSION, "software_version": __version__,
            **{k: v for k, v in deployment.meta.items() if k not in ENVELOPE_KEYS}}
    meta["checksum"] = checksum_of(meta, deployment.arrays)
    payload = {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **deployment.arrays}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **payload)


def read_archive(path: Path, arrays: dict, kind: str = "deployment", max_bytes: Optional[int] = None,
                 remedy: str = ENVELOPE.remedy) -> dict:
    """The archive's JSON ``meta``; its named arrays go into ``arrays``. An archive that would unpack to more
    than ``max_bytes`` (default :data:`MAX_BYTES`) is refused before it is read (``kind`` names the file)."""
    max_bytes = MAX_BYTES if max_bytes is None else max_bytes
    with np.load(path, allow_pickle=False) as archive:
        size = sum(info.file_size for info in archive.zip.infolist())
        if size > max_bytes:
            raise FileKindError(f"{kind} {path} unpacks to {size / 2**30:.1f} GiB, more than a {kind} holds "
                                f"({max_bytes // 2**30} GiB at most)", remedy)
        arrays.update({name: archive[name] for name in archive.files})
    return json.loads(arrays.pop("meta").tobytes().decode())


def read_deployment(path: str | Path) -> Deployment:
    """The deployment in ``path`` after the checks every deployment passes
    (:func:`~neurodeploy.validation.deployment.check_common`), without its checksum's (:func:`verify_checksum`)."""
    from .validation.deployment import check_common
    from .validation.rules import Invalid, refusal

    arrays: dict = {}
    meta = read_envelope(path, ENVELOPE, lambda p: read_archive(p, arrays))
    try:
        check_common(meta, arrays)
    except Invalid as invalid:
        raise refusal(FileKindError, f"deployment {path}", invalid, ENVELOPE.remedy, prefer_remedy=True) from None
    return Deployment(meta=meta, arrays=arrays)


def verify_checksum(deployment: Deployment, source: str) -> None:
    """A deployment's stored checksum (required from version 3, verified wherever present) must be its contents'."""
    stored = deployment.meta.get("checksum")
    if stored is not None and stored != checksum_of(deployment.meta, deployment.arrays):
        raise FileKindError(f"deployment {source} fails its checksum: it was edited or damaged after writing",
                            ENVELOPE.remedy)


def load_deployment(path: str | Path) -> Deployment:
    """Read a deployment; what every deployment holds is checked, and its checksum (the target's own arrays:
    :func:`neurodeploy.validation.load_checked_deployment`). ``FileKindError`` naming the field otherwise."""
    deployment = read_deployment(path)
    verify_checksum(deployment, str(path))
    return deployment
