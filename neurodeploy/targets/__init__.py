"""Targets: turn a graph into a deployment (lower, check design rules, quantise, place, route).

Calling this package is :func:`neurodeploy.api.targets` (``nd.targets()``; see ``_callable_package``).
"""

from .._callable_package import make_callable

make_callable(__name__, "targets")
