"""Reading a ``.nir`` file (HDF5) with a deadline.

The HDF5 library can stall for good inside one C call on some damaged files (a zeroed chunk of a
B-tree: ``scripts/fuzz.py`` found one), where no signal reaches Python. So, where the system can
fork, the file is read in a child process that sends the graph back through a pipe; a child still
reading after :data:`READ_TIMEOUT_S` is killed and the damaged file is a one-line
:class:`~neurodeploy.errors.InterchangeError`, as any other damaged file is. Elsewhere (no ``fork``)
it is read in-process.
"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path
from typing import Any

import h5py
import nir

from ..errors import InterchangeError

READ_TIMEOUT_S = 60.0  # a sound file of a few MB reads in well under a second
REMEDY = ("give a .nir file written with nir.write (e.g. by snnTorch's export_to_nir, Norse's to_nir or "
          "neurodeploy export)")


def _read(path: Path) -> Any:
    """The file's NIR object (graph or node); InterchangeError for a file that is not a NIR graph."""
    try:
        with h5py.File(path, "r") as handle:
            if "node" not in handle:
                raise InterchangeError(f"{path} is an HDF5 file but not a NIR graph (it has no 'node' group)", REMEDY)
    except (OSError, RuntimeError, ValueError):  # h5py: RuntimeError for a damaged object header or link
        raise InterchangeError(f"{path} is not a readable NIR file: not HDF5, or a damaged one (truncated, "
                               "corrupted or another kind of file)", REMEDY) from None
    try:
        return nir.read(path, type_check=False)  # types are checked later, with errors that name the node
    except Exception as exc:  # h5py, nir and numpy raise many kinds for a damaged or unknown file
        detail = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise InterchangeError(f"{path} is a damaged or unsupported NIR file ({type(exc).__name__}: {detail})",
                               REMEDY) from None


def _child(path: Path, connection: Any) -> None:
    try:
        result: tuple[str, Any] = ("graph", _read(path))
    except InterchangeError as error:
        result = ("error", (error.message, error.fix))
    try:
        connection.send(result)
    except Exception as exc:  # noqa: BLE001 - a graph that cannot be pickled back: say so, do not hang
        connection.send(("error", (f"{path} holds a NIR object that cannot be passed on ({type(exc).__name__})",
                                   REMEDY)))
    connection.close()
    os._exit(0)  # no atexit handlers, no flushing of the parent's inherited buffers


def read_nir_file(path: Path, timeout_s: float = READ_TIMEOUT_S) -> Any:
    """The NIR object in ``path``, read within ``timeout_s`` seconds (module docstring)."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return _read(path)
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(path, send), daemon=True)
    child.start()
    send.close()
    try:
        if not receive.poll(timeout_s):
            raise InterchangeError(f"{path} could not be read within {timeout_s:g} s (the HDF5 library stalls on "
                                   "this file: it is damaged)", REMEDY)
        try:
            kind, payload = receive.recv()
        except EOFError:  # the child died (a crash inside the HDF5 library)
            child.join(5)  # the pipe closes as the child exits, a moment before it can be reaped
            raise InterchangeError(f"{path} crashed the HDF5 reader (exit code {child.exitcode}): it is damaged",
                                   REMEDY) from None
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receive.close()
    if kind == "error":
        raise InterchangeError(*payload)
    return payload
