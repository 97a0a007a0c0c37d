"""Fake hxtorch (tests only; tests/fake_hxtorch/README.md): ``init_hardware``/``release_hardware`` and ``spiking``.

hxtorch/__init__.py re-exports ``_hxtorch_core`` (which holds ``init_hardware``/``release_hardware``) and
aliases ``hxtorch.spiking`` as ``hxtorch.snn``.
"""

import sys as _sys

from hxtorch import spiking
from hxtorch import spiking as snn  # noqa: F401

hardware_sessions = {"init": 0, "release": 0}


def init_hardware(*args, **kwargs) -> None:
    """_hxtorch_core.init_hardware: connect to the chip (here: count)."""
    hardware_sessions["init"] += 1


def release_hardware() -> None:
    """_hxtorch_core.release_hardware."""
    hardware_sessions["release"] += 1


_sys.modules.update({name.replace("hxtorch.spiking", "hxtorch.snn"): module
                     for name, module in list(_sys.modules.items()) if name.startswith("hxtorch.spiking")})
__all__ = ["spiking", "init_hardware", "release_hardware"]
