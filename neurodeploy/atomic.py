"""Atomic file writes: a temporary file in the target's folder, then ``os.replace``."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from collections.abc import Iterator


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it vanishes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    # mkstemp makes the file private (0600); give it the permissions an ordinary new file gets.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_output(path: str | Path, inputs: tuple[str | Path | None, ...] = ()) -> Path:
    """Refuse, before any work, an output that cannot be written: a directory, a path below a file, a
    folder without write permission, or one of the command's own inputs. Missing folders are created
    when the output is written (so ``-o out/run1/model.pt`` works)."""
    from .errors import FileKindError  # errors is a leaf module; imported here to keep atomic dependency-free

    path = Path(path)
    if str(path) in ("", ".") or path.is_dir():
        raise FileKindError(f"output '{path}' is a directory", "give a file name, e.g. -o out/model.pt")
    for given in inputs:
        if given is not None and Path(given).exists() and path.exists() and path.samefile(given):
            raise FileKindError(f"output {path} is also an input of this command", "write to another file")
    existing = path.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise FileKindError(f"output {path} lies below {existing}, which is a file", "choose another folder")
    if not os.access(existing, os.W_OK):
        raise FileKindError(f"cannot write into {existing} (no permission)", "choose a folder you can write to")
    return path
