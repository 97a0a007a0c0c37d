"""The ``hxtorch`` backend: real BrainScaleS-2 through hxtorch (not on PyPI; not available here).

hxtorch comes with the BrainScaleS-2 software stack (EBRAINS). Where it is not importable, asking
for this backend is an error that says so; where it is, this version does not drive it yet.
"""

from __future__ import annotations

import importlib.util
from typing import Optional

import numpy as np

from ..deployment import Deployment
from ..errors import BackendError
from .base import Observations, Recording


class HxtorchBackend:
    """Real BSS-2 hardware through hxtorch (a placeholder that explains why it cannot run here)."""

    name = "hxtorch"
    target: Optional[str] = "bss2"
    chip_id: Optional[str] = None  # read from the hardware once implemented
    uses_codes = True
    capabilities = frozenset({"madc"})

    def __init__(self) -> None:
        if importlib.util.find_spec("hxtorch") is None:
            raise BackendError("backend 'hxtorch' needs the hxtorch package (BrainScaleS-2 software), "
                               "which is not installed here", "run on a BSS-2 system, or use --backend mock:ideal")
        raise BackendError("hxtorch is installed but the hxtorch backend is not implemented in this version",
                           "use --backend mock:ideal")

    def run(self, deployment: Deployment, input_times_s: np.ndarray,
            record: Optional[Recording] = None) -> Observations:  # pragma: no cover - never constructed
        raise BackendError("the hxtorch backend is not implemented", "use --backend mock:ideal")
