"""Atomic file writes: the output appears complete, or not at all, even under ``kill -9``.

:func:`atomic_path` gives the writer a temporary file in the output's folder and renames it over the
output once the writer is done; folders created for the output are removed again if the write fails.
The temporary file is named ``.NAME.PID.XXXXXXXX.tmp``; a writer killed meanwhile leaves it behind, and
the next write of the same output removes it. Inside :func:`nameless_temporaries` (which the verbs use
around writers that accept any path: ``torch.save``, ``open``) the temporary file has no name at all
while it is written (Linux ``O_TMPFILE``), so a process killed at any moment leaves nothing behind.
HDF5 (``.nir``) resolves the file's real name, so it always gets a named one.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

_TEMP_SUFFIX = ".tmp"
_TEMP_EXTRA = 40  # what the temporary name adds to the output's: ".", ".PID.XXXXXXXX" and ".tmp" (with room)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _make_folders(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; returns the created ones, innermost first."""
    created = []
    missing = folder
    while not missing.exists():
        created.append(missing)
        missing = missing.parent
    folder.mkdir(parents=True, exist_ok=True)
    return created


def _remove_folders(created: list[Path]) -> None:
    for folder in created:  # innermost first; a folder something else wrote into stays
        try:
            folder.rmdir()
        except OSError:
            return


def _remove_stale_temporaries(path: Path) -> None:
    """Named temporary files of ``path`` whose writer process is gone (it was killed)."""
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)\.[^.]+{re.escape(_TEMP_SUFFIX)}$")
    try:
        names = os.listdir(path.parent)
    except OSError:
        return
    for name in names:
        match = pattern.match(name)
        if not match:
            continue
        pid = int(match.group(1))
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
            continue  # its writer still runs
        except ProcessLookupError:
            pass
        except (PermissionError, OverflowError):
            continue
        try:
            (path.parent / name).unlink()
        except OSError:
            pass


def _anonymous_file(folder: Path) -> int | None:
    """A nameless file in ``folder`` (Linux ``O_TMPFILE``), or None where the system has none."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        return os.open(folder, flag | os.O_RDWR, 0o666 & ~_umask())
    except OSError:  # a filesystem without O_TMPFILE support
        return None


def _name_anonymous_file(fd: int, name: Path) -> None:
    """Give the nameless file ``fd`` the name ``name``: a link through ``/proc`` (what open(2) documents),
    else ``linkat(AT_EMPTY_PATH)``, else a copy of its bytes (where neither is allowed)."""
    try:
        os.link(f"/proc/self/fd/{fd}", name, follow_symlinks=True)
        return
    except OSError:
        pass
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.linkat(fd, b"", -100, os.fsencode(name), 0x1000) == 0:  # AT_FDCWD, AT_EMPTY_PATH
            return
    except (OSError, AttributeError):
        pass
    os.lseek(fd, 0, os.SEEK_SET)
    with open(name, "xb") as copy:
        while chunk := os.read(fd, 2**20):
            copy.write(chunk)
        copy.flush()
        os.fsync(copy.fileno())


# Writers that need the temporary file's real name (HDF5 resolves it): always a named one.
NAMED_SUFFIXES = (".nir", ".h5", ".hdf5")
_NAMELESS: ContextVar[bool] = ContextVar("neurodeploy_nameless_temporaries", default=False)


@contextmanager
def nameless_temporaries() -> Iterator[None]:
    """Within this block, :func:`atomic_path` hands out nameless temporary files where the system has them
    (``/proc/self/fd/N``): for writers that open the path they are given (``torch.save``, ``open``,
    ``Path.write_text``), not for those that resolve it (HDF5)."""
    token = _NAMELESS.set(True)
    try:
        yield
    finally:
        _NAMELESS.reset(token)


@contextmanager
def atomic_path(path: str | Path, named: bool | None = None) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on error it vanishes.

    ``named``: a named temporary file (a kill leaves it until the next write of ``path``) or a nameless one
    (a kill leaves nothing; the writer must not resolve the path). Default: nameless only inside
    :func:`nameless_temporaries`, and never for :data:`NAMED_SUFFIXES`."""
    path = Path(path)
    if named is None:
        named = not _NAMELESS.get() or path.suffix.lower() in NAMED_SUFFIXES
    created = _make_folders(path.parent)
    try:
        _remove_stale_temporaries(path)
        fd = None if named else _anonymous_file(path.parent)
        if fd is not None:
            try:
                yield Path(f"/proc/self/fd/{fd}")  # the writer opens the nameless file through this
                os.fsync(fd)
                # Give it a name only now, then move it over the output: a kill in between these two
                # system calls is the only moment that leaves a (named, stale) temporary file.
                tmp = path.parent / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}{_TEMP_SUFFIX}"
                _name_anonymous_file(fd, tmp)
                try:
                    os.replace(tmp, path)
                except BaseException:
                    tmp.unlink(missing_ok=True)
                    raise
            finally:
                os.close(fd)
            return
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=_TEMP_SUFFIX, dir=path.parent)
        os.close(handle)
        os.chmod(name, 0o666 & ~_umask())  # mkstemp makes it private (0600); give it a new file's permissions
        try:
            yield Path(name)
            os.replace(name, path)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
    except BaseException:
        _remove_folders(created)
        raise


def check_output(path: str | Path, inputs: tuple[str | Path | None, ...] = ()) -> Path:
    """Refuse, before any work, an output that cannot be written: a directory (or a name ending in a
    separator), something that is not a regular file (a device, a pipe), a path below a file, a
    folder without write permission, a name too long for the filesystem, or one of the command's own
    inputs. Missing folders are created when the output is written (so ``-o out/run1/model.pt`` works)."""
    from .errors import FileKindError  # errors is a leaf module; imported here to keep atomic dependency-free

    text = os.fspath(path)
    try:
        if "\x00" in text:
            raise ValueError("a NUL character")
        path = Path(text)
        existing, missing = path.parent, [path.name]  # the nearest existing folder, and the names below it
        while not os.path.lexists(existing):
            existing, missing = existing.parent, [existing.name, *missing]
        try:
            limit = os.pathconf(existing, "PC_NAME_MAX") if existing.is_dir() else 255
        except (OSError, ValueError):
            limit = 255
        lengths = [len(os.fsencode(part)) + (_TEMP_EXTRA if index == len(missing) - 1 else 0)
                   for index, part in enumerate(missing)]
        if max(lengths) > limit:
            raise FileKindError(f"output {text[:60]}... has a name longer than this filesystem allows "
                                f"({limit} bytes per name, {limit - _TEMP_EXTRA} for the file's)",
                                "choose a shorter name")
        if text in ("", ".") or text.endswith(("/", os.sep)) or path.is_dir():
            raise FileKindError(f"output '{text}' is a directory", "give a file name, e.g. -o out/model.pt")
        if os.path.lexists(path) and not path.is_file():
            raise FileKindError(f"output {path} exists and is not a regular file (a device, pipe or broken link)",
                                "write to a new file name")
        for given in inputs:
            if given is not None and Path(given).exists() and path.exists() and path.samefile(given):
                raise FileKindError(f"output {path} is also an input of this command", "write to another file")
        if not existing.is_dir():
            what = "a file" if existing.is_file() else "not a folder"
            raise FileKindError(f"output {path} lies below {existing}, which is {what}", "choose another folder")
        if not os.access(existing, os.W_OK):
            raise FileKindError(f"cannot write into {existing} (no permission)", "choose a folder you can write to")
    except ValueError as exc:  # a NUL byte, or a name the system cannot encode
        raise FileKindError(f"output {text!r} is not a valid file name ({exc})", "choose another name") from None
    except OSError as exc:  # what the system says of the path itself (a loop of links, ...)
        raise FileKindError(f"output {text[:60]} cannot be written ({exc.strerror or exc})",
                            "choose another file name") from None
    return path
