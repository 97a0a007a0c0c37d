"""Where verbs find targets: the built-in ones, plus the ``neurodeploy.targets`` entry-point group.

A package adds a target without editing neurodeploy by declaring, in its own ``pyproject.toml``::

    [project.entry-points."neurodeploy.targets"]
    loihi2 = "my_package.loihi2:Loihi2Target"

where ``Loihi2Target`` subclasses :class:`neurodeploy.targets.base.Target`. Built-in targets are
named here by import path only, so that no generic module imports a target's internals.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from pathlib import Path

from ..errors import TargetSpecError
from .base import Target
from .spec import load_spec

ENTRY_POINT_GROUP = "neurodeploy.targets"

BUILTIN: dict[str, str] = {
    "bss2": "neurodeploy.targets.bss2.target:BSS2Target",
    "xylo": "neurodeploy.targets.xylo.target:XyloTarget",
}


def _plugins() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name not in BUILTIN}


def target_names() -> list[str]:
    """Every target this installation knows, built-in first."""
    return list(BUILTIN) + sorted(_plugins())


def target_class(name: str) -> type[Target]:
    """The class of target ``name``; an unknown name is a ``TargetSpecError`` listing the known ones."""
    if name in BUILTIN:
        module, _, attribute = BUILTIN[name].partition(":")
        cls = getattr(importlib.import_module(module), attribute)
    elif name in _plugins():
        try:
            cls = _plugins()[name].load()  # type: ignore[attr-defined]
        except Exception as exc:  # a broken plug-in must not break the other targets
            raise TargetSpecError(f"target plug-in '{name}' failed to load ({type(exc).__name__}: {exc})",
                                  "reinstall or remove the package that provides it") from None
    else:
        raise TargetSpecError(f"unknown target '{name}'", f"use one of {target_names()} (see `neurodeploy targets`)")
    if not (isinstance(cls, type) and issubclass(cls, Target)):
        raise TargetSpecError(f"target plug-in '{name}' is not a neurodeploy Target",
                              "fix the package that provides it")
    return cls


def get_target(name_or_path: str | Path) -> Target:
    """A target by name (``bss2``) or by the path of a spec file (its ``name`` picks the target)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        spec = load_spec(path)
        return target_class(spec.name)(spec)
    return target_class(str(name_or_path)).load()


def all_targets() -> list[Target]:
    """One instance of every known target, each with its default spec."""
    return [get_target(name) for name in target_names()]
