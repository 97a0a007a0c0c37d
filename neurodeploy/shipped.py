"""Files that ship with neurodeploy: target specs, recipes, the fused kernel's sources, example calibrations.

Their source of truth is the repository's top-level folders ``targets/``, ``models/``, ``csrc/`` and
``calibration/``. A checkout (``make setup``'s editable install, or the tree on ``PYTHONPATH``)
reads them there, so an edit takes effect at once; a wheel or sdist install carries copies of them
as package data, ``neurodeploy/_shipped/FOLDER/`` (``setup.py`` maps each folder there). See
``docs/packaging.md``.
"""

from __future__ import annotations

from pathlib import Path

FOLDERS = ("targets", "models", "csrc", "calibration")
_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent
PACKAGED = "_shipped"  # the folder inside the package that holds the copies


def _in_checkout() -> bool:
    """Whether this package is the ``neurodeploy/`` folder of a source tree (not an installed copy)."""
    return (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "setup.py").is_file()


def shipped_dir(folder: str) -> Path:
    """The folder of shipped files ``folder`` (one of :data:`FOLDERS`): the checkout's, else the package's."""
    if folder not in FOLDERS:
        raise ValueError(f"unknown shipped folder {folder!r}: expected one of {', '.join(FOLDERS)}")
    if _in_checkout() and (_CHECKOUT / folder).is_dir():
        return _CHECKOUT / folder
    return _PACKAGE / PACKAGED / folder


def shipped_names(folder: str, suffix: str = ".yaml") -> list[str]:
    """The names (file stems) of the shipped files with ``suffix`` in ``folder``, sorted."""
    directory = shipped_dir(folder)
    return sorted(p.stem for p in directory.glob(f"*{suffix}") if p.is_file()) if directory.is_dir() else []


def is_bare_name(name_or_path: str | Path) -> bool:
    """A name like ``yinyang``: one path component without a suffix (``models/x.yaml``, ``x.yaml`` are paths)."""
    path = Path(name_or_path)
    return len(path.parts) == 1 and not path.suffix and not str(name_or_path).startswith(".")


def resolve(folder: str, name_or_path: str | Path, suffix: str = ".yaml") -> Path:
    """A file that exists, or a path, stays as given; a bare name becomes the shipped file ``folder/NAME.yaml``."""
    path = Path(name_or_path)
    if path.exists() or not is_bare_name(name_or_path):
        return path
    return shipped_dir(folder) / f"{path.name}{suffix}"


__all__ = ["FOLDERS", "PACKAGED", "is_bare_name", "resolve", "shipped_dir", "shipped_names"]
