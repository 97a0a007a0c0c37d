"""Packages that share their name with an API function (``neurodeploy.targets``, ``neurodeploy.itl``).

Importing a subpackage sets it as an attribute of ``neurodeploy``, which would hide the API
function of the same name (``nd.targets()``, ``nd.itl(...)``). Such a package therefore calls the
function when called, so ``nd.targets()`` works whether or not the package was imported first.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


def make_callable(package: str, function: str) -> None:
    """Let the module ``package`` forward calls to ``neurodeploy.api.<function>``."""

    class CallablePackage(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return getattr(importlib.import_module("neurodeploy.api"), function)(*args, **kwargs)

    CallablePackage.__call__.__doc__ = f"Call :func:`neurodeploy.api.{function}`."
    sys.modules[package].__class__ = CallablePackage
