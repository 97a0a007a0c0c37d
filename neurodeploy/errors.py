"""One exception hierarchy for everything a user can get wrong.

Every error carries a one-line ``message`` naming the problem and a ``fix``. The CLI prints
``error: <message> (fix: <fix>)`` and exits with code 2; nothing else is shown unless ``--debug``.
"""

from __future__ import annotations


class NeurodeployError(Exception):
    """Base class of all user-facing errors."""

    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def one_line(self) -> str:
        text = self.message if not self.fix else f"{self.message} (fix: {self.fix})"
        return " ".join(text.split())


class FileKindError(NeurodeployError):
    """A file is missing, of another kind or version, truncated or corrupted."""


class RecipeError(NeurodeployError):
    """A training recipe has an unknown key or an impossible value."""


class GraphError(NeurodeployError):
    """A network graph is inconsistent (unknown population, wrong shape, ...)."""


class TargetSpecError(NeurodeployError):
    """A target spec file is malformed."""


class DataError(NeurodeployError):
    """A dataset file does not match what the model expects."""


class BackendError(NeurodeployError):
    """A backend is unknown or cannot run here."""

    retryable: bool = False  # True: the same run may succeed when repeated (a lost connection, a time-out)


class CalibrationError(NeurodeployError):
    """A calibration file does not fit the chip, the model or itself."""


class InterchangeError(NeurodeployError):
    """A NIR graph cannot be read, or expressed in neurodeploy (or a model in NIR): names the node and why."""


class DesignRuleViolation(NeurodeployError):
    """One design rule broken by one layer: rule id, layer, needed vs available, fix."""

    def __init__(self, rule_id: str, layer: str, what: str, needed: object, available: object,
                 fix: str) -> None:
        self.rule_id = rule_id
        self.layer = layer
        self.what = what
        self.needed = needed
        self.available = available
        super().__init__(
            f"{rule_id}: layer '{layer}' needs {needed} {what}, available {available}", fix)

    def to_dict(self) -> dict:
        return {"rule": self.rule_id, "layer": self.layer, "what": self.what,
                "needed": self.needed, "available": self.available, "fix": self.fix}


class DoesNotFitError(NeurodeployError):
    """A model violates one or more design rules of a target; carries all violations."""

    def __init__(self, target: str, violations: list[DesignRuleViolation]) -> None:
        self.violations = violations
        first = violations[0]
        more = f" (+{len(violations) - 1} more, see `map --check`)" if len(violations) > 1 else ""
        super().__init__(f"model does not fit target '{target}': {first.message}{more}",
                         first.fix)
