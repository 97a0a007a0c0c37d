"""Backend lookup by the name users type: ``software``, ``mock:ideal``, ``pynn``, ``hxtorch``."""

from __future__ import annotations

import importlib.util

from ..errors import BackendError
from .base import Backend

KNOWN = ("software", "mock:ideal", "hxtorch")


def get_backend(name: str) -> Backend:
    if name == "software":
        from .software import SoftwareBackend
        return SoftwareBackend()
    if name == "mock" or name == "mock:ideal":
        from .mock.chip import MockChip
        return MockChip("ideal")
    if name.startswith("mock:"):
        raise BackendError(f"mock chip '{name}' is not available: this version emulates only the ideal chip",
                           "use --backend mock:ideal")
    if name == "hxtorch":
        if importlib.util.find_spec("hxtorch") is None:
            raise BackendError("backend 'hxtorch' needs the hxtorch package (BrainScaleS-2 software), "
                               "which is not installed here", "run on a BSS-2 system, or use --backend mock:ideal")
        raise BackendError("hxtorch is installed but the hxtorch backend is not implemented in this version",
                           "use --backend mock:ideal")
    raise BackendError(f"unknown backend '{name}'", f"use one of {list(KNOWN)}")
