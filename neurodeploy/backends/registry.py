"""Backend lookup by the name users type: ``software`` and ``pynn:SIMULATOR`` here, every other name from the
targets.

Each target provides its own backends (BSS-2: ``mock:ideal``, ``mock:CHIP``, ``hxtorch``; Xylo:
``xylo-sim``), so adding a target adds its backends without touching this module.
"""

from __future__ import annotations

from ..errors import BackendError
from .base import Backend


def get_backend(name: str) -> Backend:
    """The backend called ``name``; an unknown name is a ``BackendError`` listing the known ones."""
    if name == "software":
        from .software import SoftwareBackend
        return SoftwareBackend()
    if name.startswith("pynn:"):
        from .pynn import PynnBackend, pynn_simulator
        pynn_simulator(name.split(":", 1)[1])  # an unknown or missing simulator fails here, before any work
        return PynnBackend(name.split(":", 1)[1])
    from ..targets.registry import all_targets
    targets = all_targets()
    for target in targets:
        engine = target.backend(name)
        if engine is not None:
            return engine
    known = ["software", "pynn:brian2"] + [n for target in targets for n in target.backend_names()]
    raise BackendError(f"unknown backend '{name}'", f"use one of {known}")


def backend_names() -> list[str]:
    """Every backend name this installation offers (patterns such as ``mock:CHIP`` included)."""
    from ..targets.registry import all_targets
    return ["software", "pynn:brian2"] + [n for target in all_targets() for n in target.backend_names()]


def expand_backends(name: str) -> list[str]:
    """The backends ``name`` stands for: several for a target's range of chips (``mock:0-4``), else ``[name]``."""
    if name == "software":
        return [name]
    from ..targets.registry import all_targets
    for target in all_targets():
        names = target.expand_backend(name)
        if names != [name]:
            return names
    return [name]
