"""Atomic writes under kill -9 (issue 15): a writer killed while writing leaves no file at all; a failed write
removes the folders it made; a named temporary file of a killed writer goes with the next write.
``scripts/soak.py`` does the same to the real verbs at random moments."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from neurodeploy.atomic import atomic_path, nameless_temporaries


def _killed_while_writing(folder: Path, name: str, nameless: bool = True) -> None:
    """A process that writes half of ``folder/name`` through ``atomic_path`` (as the verbs do: inside
    ``nameless_temporaries``) and then SIGKILLs itself."""
    script = textwrap.dedent(f"""
        import contextlib, os, signal
        from neurodeploy.atomic import atomic_path, nameless_temporaries
        context = nameless_temporaries() if {nameless} else contextlib.nullcontext()
        with context, atomic_path({str(folder / name)!r}) as tmp:
            with open(tmp, "wb") as handle:
                handle.write(b"half a file")
                handle.flush()
                os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert done.returncode == -9, done.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="O_TMPFILE is Linux's")
def test_a_writer_killed_mid_write_leaves_nothing(tmp_path):
    _killed_while_writing(tmp_path, "model.pt")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name,nameless", [("graph.nir", True), ("model.pt", False)])
def test_a_named_temporary_of_a_killed_writer_goes_with_the_next_write(tmp_path, name, nameless):
    """HDF5 needs a real name (.nir), and outside nameless_temporaries every writer gets one."""
    _killed_while_writing(tmp_path, name, nameless)
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(f".{name}.") and left[0].endswith(".tmp")
    with atomic_path(tmp_path / name) as tmp:
        Path(tmp).write_bytes(b"complete")
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_a_failed_write_removes_the_folders_it_made(tmp_path):
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "new" / "deeper" / "m.pt") as tmp:
        Path(tmp).write_bytes(b"partial")
        raise RuntimeError("the writer failed")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("nameless", [True, False])
def test_a_complete_write_replaces_the_output_with_a_new_files_permissions(tmp_path, nameless):
    (tmp_path / "d.npz").write_bytes(b"old")
    with nameless_temporaries() if nameless else contextlib.nullcontext(), atomic_path(tmp_path / "d.npz") as tmp:
        with open(tmp, "wb") as handle:
            handle.write(b"new")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "d.npz").read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["d.npz"]
    assert (tmp_path / "d.npz").stat().st_mode & 0o777 == 0o666 & ~umask
