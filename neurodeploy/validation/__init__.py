"""Validation of every file neurodeploy reads, at load time, before anything runs.

One layer per file kind, each raising the kind's typed error with one line that names the file, the
field and the rule it breaks, and a fix:

* model files: :mod:`.model` (``FileKindError``), called by :func:`neurodeploy.modelfile.load_model`;
* deployments: :mod:`.deployment` (what every deployment holds) and each target's
  ``validate_deployment`` (its own arrays), run together by :func:`load_checked_deployment`;
* recipes (``RecipeError``), target specs (``TargetSpecError``), calibrations (``CalibrationError``)
  and ``--data`` files (``DataError``): in their loaders, with the rules of :mod:`.rules`;
* arguments of the verbs: :mod:`.arguments` (documented ranges).

Model files and deployments carry a content checksum (:mod:`.checksum`), verified on load.
:mod:`.rules` is the small rule library all of them use; error texts come from the rules.

Nothing here imports a target's modules; :func:`load_checked_deployment` reaches targets through
the registry only.
"""

from __future__ import annotations

from typing import Any

__all__ = ["check_deployment", "load_checked_deployment"]


def __getattr__(name: str) -> Any:
    # Loaded on first use: model and deployment files import this package's rules, and the target registry
    # behind these two imports the model and deployment modules.
    if name in __all__:
        from . import loading
        return getattr(loading, name)
    raise AttributeError(f"module 'neurodeploy.validation' has no attribute {name!r}")
