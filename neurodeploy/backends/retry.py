"""Backend runs that fail retryably (a lost connection, a time-out) are run again with the same input.

Only errors that say so (:class:`~neurodeploy.errors.BackendError` with ``retryable`` true, e.g. the
mock's ``disconnect`` fault) are retried; :data:`RUN_ATTEMPTS` failures of one run in a row are one
clear error. ``itl``, ``run`` and ``calibrate`` wrap their backend in :class:`Retrying`.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..deployment import Deployment
from ..errors import BackendError
from .base import Backend, Observations, Recording

RUN_ATTEMPTS = 4  # a run failing retryably is tried this many times in all before the verb gives up


def run_with_retry(engine: Backend, deployment: Deployment, input_times_s: np.ndarray,
                   record: Optional[Recording] = None, attempts: int = RUN_ATTEMPTS) -> tuple[Observations, int]:
    """``engine.run`` of one batch, run again while it fails retryably; returns the observations and the retries.

    Only errors that say they are retryable (``retryable`` true, e.g. the mock's disconnect fault)
    are retried; ``attempts`` failures in a row are one clear error (the last failure's cause).
    """
    for attempt in range(1, attempts + 1):
        try:
            return engine.run(deployment, input_times_s, record), attempt - 1
        except BackendError as error:
            if not error.retryable:
                raise
            if attempt == attempts:
                raise BackendError(f"backend {engine.name} failed {attempts} runs of the same batch in a row "
                                   f"(last: {error.message})",
                                   "check the chip's connection and run again (itl continues with --resume)"
                                   ) from error
    raise AssertionError("unreachable")  # the loop returns or raises


class Retrying:
    """``engine`` with every run retried by :func:`run_with_retry`; it declares what ``engine`` declares."""

    def __init__(self, engine: Backend, attempts: int = RUN_ATTEMPTS) -> None:
        self.engine, self.attempts, self.retries = engine, attempts, 0
        self.name, self.target, self.chip_id = engine.name, engine.target, engine.chip_id
        self.uses_codes, self.capabilities = engine.uses_codes, engine.capabilities

    def run(self, deployment: Deployment, input_times_s: np.ndarray,
            record: Optional[Recording] = None) -> Observations:
        obs, retries = run_with_retry(self.engine, deployment, input_times_s, record, self.attempts)
        self.retries += retries
        return obs
