"""The envelope every neurodeploy file shares: it exists, parses, names its format and a version we read.

Each file kind (model, deployment, recipe, target spec, calibration, itl checkpoint) declares an
:class:`Envelope`; :func:`read_envelope` and :func:`check_envelope` do the checks every kind needs,
in the same order and with the same one-line errors, before the kind checks its own contents.
"""

from __future__ import annotations

from pathlib import Path
from collections.abc import Callable
from typing import Any, NamedTuple

from .errors import FileKindError, NeurodeployError


class Envelope(NamedTuple):
    """What a file kind declares about its files."""

    kind: str  # as users call it: "model file", "deployment", ...
    format: str  # the value of its "format" field, e.g. "neurodeploy.model"
    versions: tuple[int, ...]  # the versions this neurodeploy reads
    remedy: str  # how to get a good one, the fix of every error: "train one with `neurodeploy train ...`"


def check_envelope(data: Any, envelope: Envelope, source: str) -> dict:
    """``data`` (a parsed file) as a dict of the right format and a readable version, else ``FileKindError``."""
    found = data.get("format") if isinstance(data, dict) else type(data).__name__
    if found != envelope.format:
        raise FileKindError(f"{source} is not a neurodeploy {envelope.kind} (it holds {found!r})",
                            f"give a {envelope.kind}, or {envelope.remedy}")
    if data.get("version") not in envelope.versions:
        raise FileKindError(f"{source} has {envelope.kind} version {data.get('version')!r}, this neurodeploy reads "
                            f"{', '.join(map(str, envelope.versions))}",
                            envelope.remedy)
    return data


def read_envelope(path: str | Path, envelope: Envelope, parse: Callable[[Path], Any]) -> dict:
    """Read ``path`` with ``parse`` and check its envelope; a missing or unreadable file is a ``FileKindError``.

    ``parse`` may raise anything on a damaged or foreign file (a truncated zip, a foreign pickle,
    bad YAML): at this boundary every such failure means "not a readable file of this kind"; a
    ``NeurodeployError`` it raises is its own one-line refusal and passes unchanged.
    """
    path = Path(path)
    if not path.is_file():
        raise FileKindError(f"{envelope.kind} {path} does not exist", envelope.remedy)
    if path.stat().st_size == 0:
        raise FileKindError(f"{envelope.kind} {path} is empty (0 bytes)", envelope.remedy)
    try:
        data = parse(path)
    except NeurodeployError:  # the parser's own one-line refusal (e.g. a size limit)
        raise
    except Exception as exc:  # noqa: BLE001 - see the docstring
        raise FileKindError(f"{path} is not a readable {envelope.kind}: truncated, corrupted or another kind "
                            f"({type(exc).__name__})", envelope.remedy) from None
    return check_envelope(data, envelope, str(path))
