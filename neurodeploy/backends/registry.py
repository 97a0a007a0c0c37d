"""Backend lookup by the name users type: ``software``, ``mock:ideal``, ``mock:CHIP[:EFFECT=off,...]``, ``hxtorch``."""

from __future__ import annotations

import importlib.util

from ..errors import BackendError
from .base import Backend

KNOWN = ("software", "mock:ideal", "mock:CHIP (e.g. mock:0)", "hxtorch")


def get_backend(name: str) -> Backend:
    if name == "software":
        from .software import SoftwareBackend
        return SoftwareBackend()
    if name == "mock" or name.startswith("mock:"):
        from .mock.chip import MockChip, parse_chip
        try:
            chip, _, effects = parse_chip(name)
        except ValueError:
            raise BackendError(f"mock chip '{name}' is not a chip number",
                               "use mock:ideal or mock:N with N an integer, e.g. mock:0") from None
        return MockChip(chip, effects)
    if name == "hxtorch":
        if importlib.util.find_spec("hxtorch") is None:
            raise BackendError("backend 'hxtorch' needs the hxtorch package (BrainScaleS-2 software), "
                               "which is not installed here", "run on a BSS-2 system, or use --backend mock:ideal")
        raise BackendError("hxtorch is installed but the hxtorch backend is not implemented in this version",
                           "use --backend mock:ideal")
    raise BackendError(f"unknown backend '{name}'", f"use one of {list(KNOWN)}")
