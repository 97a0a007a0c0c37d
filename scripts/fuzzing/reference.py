"""The verdict of each format's own reader (torch, numpy, PyYAML, nir) on a damaged file, in a forked child."""

from __future__ import annotations

import io
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from .constants import MEMORY_LIMIT


# ----------------------------------------------------------------------------------------------------
# Reading damaged files the way any reader of the format would (not neurodeploy's code): a file the
# reference reader refuses is certainly invalid; one it reads unchanged is a no-op (valid).


def _reference_object(fmt: str, data: bytes) -> Any:
    if fmt == "pt":
        import torch

        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        return _canonical(obj)
    if fmt == "npz":
        import numpy as np

        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return {k: _canonical(archive[k]) for k in archive.files}
    if fmt == "yaml":
        import yaml

        return repr(yaml.load(data.decode("utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
    if fmt == "nir":
        import nir

        with tempfile.NamedTemporaryFile(suffix=".nir") as handle:
            handle.write(data)
            handle.flush()
            graph = nir.read(handle.name, type_check=False)
            return _canonical(_nir_plain(graph))
    raise ValueError(fmt)


def _nir_plain(obj: Any) -> Any:
    """A NIR graph or node as plain dicts, lists and arrays (comparable)."""
    if hasattr(obj, "__dataclass_fields__"):
        return {"type": type(obj).__name__, **{k: _nir_plain(v) for k, v in vars(obj).items()}}
    if isinstance(obj, dict):
        return {k: _nir_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nir_plain(v) for v in obj]
    return obj


def _canonical(obj: Any) -> Any:
    import numpy as np

    if hasattr(obj, "detach"):
        try:
            content = obj.detach().to_dense().contiguous().numpy().tobytes()
        except Exception:  # noqa: BLE001 - meta tensors and other exotics have no bytes to compare
            content = repr(obj).encode()
        return ("tensor", str(obj.dtype), tuple(obj.shape), obj.layout, obj.device.type, content)
    if isinstance(obj, np.ndarray):
        return ("array", str(obj.dtype), obj.shape, obj.tobytes())
    if isinstance(obj, dict):
        return {k: _canonical(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    return repr(obj)


def reference_verdict(fmt: str, original: bytes, damaged: bytes) -> str:
    """``invalid`` (the format's own reader refuses it), ``hangs`` (it does not finish), ``same`` (reads as the
    original) or ``changed``.

    Runs in a forked child: a damaged HDF5 or zip file must not crash or stall the fuzzer.
    """
    if damaged == original:
        return "same"
    status = _isolated(lambda: 0 if _reference_object(fmt, damaged) == _reference_object(fmt, original) else 3,
                       timeout=REFERENCE_TIMEOUT)
    return {0: "same", 3: "changed", -2: "hangs"}.get(status, "invalid")


REFERENCE_TIMEOUT = 20.0


def _isolated(function: Callable[[], int], timeout: float = 60.0) -> int:
    """``function()`` in a forked child; its return value, 2 if it raised, -1 if it crashed, -2 if it timed out."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            code = function()
        except BaseException:  # noqa: BLE001 - any failure of the reference reader is the verdict
            code = 2
        os._exit(code)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else -1
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return -2
        time.sleep(0.005)
