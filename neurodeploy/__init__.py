"""neurodeploy: spiking networks from PyTorch training to neuromorphic chips (BrainScaleS-2, Xylo) and their emulators.

The Python API (:mod:`neurodeploy.api`) mirrors the command line; functions take and return objects,
and only the ``load_*``/``save_*`` functions take paths::

    import neurodeploy as nd
    model = nd.train("yinyang")                       # or nd.load_model("yy.pt")
    deployment = nd.map(model, target="bss2")
    x, y = nd.load_split("yinyang", "test")
    nd.run(deployment, "mock:ideal", inputs=x).accuracy(y)
    nd.save_deployment(deployment, "yy.npz")

The names below load on first use, so that ``import neurodeploy`` (and the command line) stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_PUBLIC = {
    "api": ("RunResult", "calibrate", "check", "evaluate", "for_backend", "itl", "load_deployment", "map", "run",
            "targets", "train"),
    "data.datasets": ("load_split",),
    "deployment": ("Deployment", "save_deployment"),
    "errors": ("DoesNotFitError", "NeurodeployError"),
    "interchange": ("export_nir", "import_nir", "read_nir", "write_nir"),
    "modelfile": ("ModelFile", "load_model", "save_model"),
    "recipe": ("Recipe", "load_recipe"),
}
_WHERE = {name: module for module, names in _PUBLIC.items() for name in names}
__all__ = sorted(_WHERE)


if TYPE_CHECKING:  # what type checkers and IDEs see
    from .api import (RunResult, calibrate, check, evaluate, for_backend, itl, load_deployment, map, run,  # noqa: F401
                      targets, train)
    from .data.datasets import load_split  # noqa: F401
    from .deployment import Deployment, save_deployment  # noqa: F401
    from .errors import DoesNotFitError, NeurodeployError  # noqa: F401
    from .interchange import export_nir, import_nir, read_nir, write_nir  # noqa: F401
    from .modelfile import ModelFile, load_model, save_model  # noqa: F401
    from .recipe import Recipe, load_recipe  # noqa: F401


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'neurodeploy' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
