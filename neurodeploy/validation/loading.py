"""Loading a deployment for use: the common checks, its target's own checks, then its checksum.

:func:`neurodeploy.deployment.load_deployment` is low-level (no target is imported there); the verbs
load deployments with :func:`load_checked_deployment`, which also asks the deployment's target
(through :mod:`neurodeploy.targets.registry`) to check the arrays and meta only it understands
(:meth:`~neurodeploy.targets.base.Target.validate_deployment`). A deployment of a target this
installation does not know is refused.
"""

from __future__ import annotations

from pathlib import Path

from ..deployment import ENVELOPE, Deployment, read_deployment, verify_checksum
from ..errors import FileKindError, TargetSpecError
from ..targets.registry import get_target
from .rules import Invalid, refusal


def check_deployment(deployment: Deployment, source: str = "deployment") -> None:
    """Have the deployment's target check its own arrays and meta; ``FileKindError`` naming the field."""
    try:
        target = get_target(deployment.target)
    except TargetSpecError as exc:
        raise FileKindError(f"{source} is for target '{deployment.target}', which this neurodeploy does not know "
                            f"({exc.message})", exc.fix) from None
    try:
        target.validate_deployment(deployment)
    except Invalid as invalid:
        raise refusal(FileKindError, source, invalid, ENVELOPE.remedy, prefer_remedy=True) from None


def load_checked_deployment(path: str | Path) -> Deployment:
    """Read a deployment and check everything in it (common part, its target's part, checksum) before use."""
    deployment = read_deployment(path)
    check_deployment(deployment, f"deployment {path}")
    verify_checksum(deployment, str(path))
    return deployment
