"""The per-epoch checkpoint of an in-the-loop run, and the fingerprint a resumed run must match.

Written atomically after every epoch (temporary file, then rename), so a run killed at any
moment, ``kill -9`` included, leaves either the previous checkpoint or the new one: ``--resume``
loses at most the epoch in progress. Loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch

from ..atomic import atomic_path
from ..errors import FileKindError
from ..fileformat import Envelope, read_envelope

FORMAT = "neurodeploy.itl-checkpoint"
VERSION = 1
ENVELOPE = Envelope("in-the-loop checkpoint", FORMAT, (VERSION,),
                    "delete it and run itl without --resume")


def checkpoint_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.name + ".checkpoint")


def save_checkpoint(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "version": VERSION, **state}, tmp)


def load_checkpoint(path: Path, fingerprint: dict) -> Optional[dict]:
    """The checkpoint's state, or None if there is none; one of another run is an error."""
    if not path.is_file():
        return None
    state = read_envelope(path, ENVELOPE, lambda p: torch.load(p, map_location="cpu", weights_only=True))
    differs = sorted(k for k in fingerprint if state["fingerprint"].get(k) != fingerprint[k])
    if differs:
        raise FileKindError(f"checkpoint {path} belongs to another run (it differs in {', '.join(differs)})",
                            "resume with the same model, backend, calibration and settings, or delete the checkpoint")
    return state


def starting_state(path: Path, fingerprint: dict, resume: bool) -> Optional[dict]:
    """The state a run starts from: the checkpoint with ``resume`` (which must exist), else None; without
    ``resume`` an existing checkpoint of an interrupted run is an error rather than something to overwrite."""
    state = load_checkpoint(path, fingerprint) if resume else None
    if resume and state is None:
        raise FileKindError(f"--resume: there is no checkpoint {path}", "run without --resume to start")
    if not resume and path.exists():
        raise FileKindError(f"checkpoint {path} of an interrupted run exists",
                            "add --resume to continue it, or delete it to start over")
    return state
