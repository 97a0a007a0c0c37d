"""``doctor``: what this installation can do — versions, kernel path, backends, targets."""

from __future__ import annotations

import importlib.util
import platform
import shutil

import torch

from .. import __version__
from ..backends.registry import backend_names
from ..targets.registry import all_targets, target_names


def _kernel() -> dict:
    try:
        from ..core.fused import kernel_status
    except ImportError:
        return {"path": "twin", "reason": "the fused kernel is not part of this build"}
    return kernel_status()


def doctor() -> dict:
    return {
        "neurodeploy": __version__, "python": platform.python_version(), "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(), "cuda_available": torch.cuda.is_available(),
        "nvcc": shutil.which("nvcc"), "kernel": _kernel(), "targets": target_names(),
        "backends": {name: ("installed" if importlib.util.find_spec("hxtorch") else
                            "not installed (BrainScaleS-2 software; not on PyPI)")
                     if name.startswith("hxtorch") else "available"
                     for name in backend_names()},
        "emulators": {target.name: status for target in all_targets() if (status := target.engine_status())},
    }
