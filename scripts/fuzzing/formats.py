"""Reading and writing each format (torch, npz, YAML), the format and suffix of each kind, files of the wrong
kind (other base files, junk, malicious payloads, special paths), and the reference verdict as a Mutant."""

from __future__ import annotations

import gzip
import io
import random
import zipfile
from typing import Any

from .bases import Bases
from .mutations import Mutant, _npy_header, _rezip
from .reference import reference_verdict


def _torch_bytes(obj: Any) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _npz_bytes(arrays: dict, compressed: bool = True) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def _npz_arrays(data: bytes) -> dict:
    import numpy as np

    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        return {k: archive[k] for k in archive.files}


def _yaml_dump(obj: Any) -> bytes:
    import yaml

    return yaml.dump(obj, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False, allow_unicode=True,
                     width=120).encode()


FOREIGN_JUNK = {
    "png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
    "gzip": gzip.compress(b"format: neurodeploy.recipe\n" * 10),
    "random": bytes(random.Random(7).randbytes(2048)),
    "text": b"hello, I am not a neurodeploy file\n",
    "json": b'{"format": "neurodeploy.model", "version": 3}',
    "html": b"<!doctype html><html><body>404</body></html>",
}


def _pickle_payload() -> bytes:
    """A pickle that creates PWNED in the working folder when unpickled without restrictions."""
    return b"cos\nsystem\n(S'touch PWNED'\ntR."


def _torch_payload() -> bytes:
    """A torch zip whose data.pkl runs ``touch PWNED`` (torch.load without weights_only would)."""
    good = _torch_bytes({"format": "neurodeploy.model"})
    return _rezip(good, lambda n, c: [(n, _pickle_payload())] if n.endswith("data.pkl") else None)


def _npz_payload() -> bytes:
    """An npz whose member is a pickled object array that runs ``touch PWNED`` if loaded with pickle."""
    header = b"\x93NUMPY\x01\x00" + _npy_header("|O", (1,))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("meta.npy", header + _pickle_payload())
        archive.writestr("x.npy", header + _pickle_payload())
        archive.writestr("y.npy", header + _pickle_payload())
    return buf.getvalue()


FOREIGN_BASES = {  # kind → base files of other kinds it can be confused with
    "model": ["dep.npz", "xylo.npz", "recipe.yaml", "graph.nir", "small.npz", "cal.yaml"],
    "dep-bss2": ["xylo.npz", "model.pt", "small.npz", "graph.nir", "recipe.yaml"],
    "dep-xylo": ["dep.npz", "model.pt", "small.npz", "graph.nir"],
    "recipe": ["bss2.yaml", "cal.yaml", "model.pt", "xylo.yaml"],
    "spec": ["recipe.yaml", "cal.yaml", "model.pt", "dep.npz"],
    "calibration": ["recipe.yaml", "bss2.yaml", "model.pt", "dep.npz"],
    "data": ["dep.npz", "xylo.npz", "model.pt", "graph.nir"],
    "nir": ["model.pt", "dep.npz", "recipe.yaml", "small.npz"],
}
FORMAT_OF = {"model": "pt", "dep-bss2": "npz", "dep-xylo": "npz", "recipe": "yaml", "spec": "yaml",
             "calibration": "yaml", "data": "npz", "nir": "nir"}
SUFFIX = {"pt": ".pt", "npz": ".npz", "yaml": ".yaml", "nir": ".nir"}


def foreign_mutation(kind: str, bases: Bases, rng: random.Random) -> Mutant:
    """A file of another kind, junk, a malicious pickle, or a path that is no regular file."""
    op = rng.choice(["base", "base", "base", "junk", "payload", "special"])
    if op == "base":
        name = rng.choice(FOREIGN_BASES[kind])
        return Mutant(f"foreign:{name}", bases[name], certain=True)
    if op == "junk":
        name = rng.choice(sorted(FOREIGN_JUNK))
        return Mutant(f"foreign-junk:{name}", FOREIGN_JUNK[name], certain=True)
    if op == "payload":
        fmt = FORMAT_OF[kind]
        data = {"pt": _torch_payload, "npz": _npz_payload}.get(fmt, lambda: b"!!python/object/apply:os.system "
                                                               b"['touch PWNED']\n")()
        return Mutant(f"foreign-payload:{fmt}", data, certain=True, marker=True)
    special = rng.choice(["dir", "fifo", "dangling", "loop"])
    return Mutant(f"special:{special}", special=special, certain=True)


def _by_reference(fmt: str, base: bytes, name: str, data: bytes, changed_certain: bool = False) -> Mutant:
    verdict = reference_verdict(fmt, base, data)
    if verdict == "same":
        return Mutant(name + "(no-op)", data, False)
    if verdict == "hangs":
        name += "(reader hangs)"
    return Mutant(name, data, verdict in ("invalid", "hangs") or changed_certain)
