r"""The fused LIF time loop (``csrc/``): build, load, autograd, and which path runs.

``fused_lif_sequence`` computes exactly what :func:`neurodeploy.core.lif.lif_sequence` (the
twin) computes, update order and all, in one C++ loop over time per neuron instead of ~15
PyTorch operations per step; with ``lateral`` the feedback :math:`L z_{k-1}` is event-driven
(only the columns of the neurons that spiked are added).

Gradients flow to ``x`` and ``lateral``, through time, with the surrogate gradient of
``surrogate`` (every kind of :mod:`neurodeploy.core.surrogate`; ``None``: SuperSpike
:math:`\partial z/\partial u = 1/(s|u|+1)^2` with ``surrogate_steepness``); with a surrogate that is 0
outside a band, by the sparse backward (:mod:`neurodeploy.core.sparse`) unless ``sparse_backward=False``.
The neuron parameters (``p``, ``dt_s``) are
constants of the kernel: it returns no gradient for them, and refuses parameter tensors that
require grad (the dispatcher sends such calls to the twin instead).

The extension is compiled just in time by ``torch.utils.cpp_extension.load`` and cached (under
``$TORCH_EXTENSIONS_DIR`` when set); see ``csrc/README.md`` for why. The path is chosen by
``NEURODEPLOY_KERNEL`` = ``auto`` (default: fused if it builds, else the twin with one warning),
``fused`` (a build failure is an error) or ``twin``; :func:`set_kernel_mode` overrides it.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import warnings
from pathlib import Path
from typing import Any, Optional

import torch

from ..errors import NeurodeployError
from ..shipped import shipped_dir
from .lif import LIFParameters, lif_coefficients, lif_sequence as twin_lif_sequence
from .sparse import check_sparse, record_active
from .surrogate import Surrogate, resolve

_MODES = ("auto", "fused", "twin")
_EXTENSION_NAME = "neurodeploy_lif"
# The sources sit at the repository root in a checkout (csrc/) and ship inside the package when
# installed (neurodeploy/_shipped/csrc): neurodeploy.shipped picks the one that applies.
# Compiled for every build (the operators, the CPU launcher, the output pool); lif_cuda.cu is added
# when CUDA is. The headers they include (lif_core.h, lif_cpu.h, output_pool.h) sit beside them.
_SOURCES = ("lif_ops.cpp", "lif_cpu.cpp", "output_pool.cpp")
_CUDA_SOURCE = "lif_cuda.cu"
# What the source hash covers: every file of the directory with one of these suffixes, i.e.
# everything compiled or included, so that a change to any of them gives a new build.
_HASHED_SUFFIXES = (".h", ".cpp", ".cu")
# -O3: cpp_extension.load adds no optimisation flag. -ffp-contract=off: no fused multiply-add,
# so every float operation rounds like PyTorch's unfused ops and the spikes match the twin.
_CFLAGS = ["-O3", "-fopenmp", "-ffp-contract=off", "-fno-trapping-math"]

_build: dict[str, Any] = {"attempted": False, "ops": None, "error": None, "cuda": False}
_warned = False
_mode_override: Optional[str] = None


class FusedKernelUnavailable(NeurodeployError, RuntimeError):
    """``NEURODEPLOY_KERNEL=fused`` was asked for but the extension could not be built.

    A user-facing error: the command line prints it as one ``error: ... (fix: ...)`` line.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, "see `neurodeploy doctor`: a C++17 compiler with OpenMP, ninja and the csrc "
                                  "sources are needed; or set NEURODEPLOY_KERNEL=auto (falls back to the twin)")


def kernel_mode() -> str:
    """The requested path: :func:`set_kernel_mode`'s value, else ``$NEURODEPLOY_KERNEL``, else auto."""
    mode = (_mode_override or os.environ.get("NEURODEPLOY_KERNEL") or "auto").strip().lower()
    if mode not in _MODES:
        raise ValueError(f"NEURODEPLOY_KERNEL={mode!r}: expected one of {', '.join(_MODES)}")
    return mode


def set_kernel_mode(mode: Optional[str]) -> None:
    """Force ``"fused"``, ``"twin"`` or ``"auto"`` in this process; ``None`` defers to the env."""
    global _mode_override
    if mode is not None and mode not in _MODES:
        raise ValueError(f"kernel mode {mode!r}: expected one of {', '.join(_MODES)}")
    _mode_override = mode


def _isa_flags() -> list[str]:
    """``-mavx2 -mfma`` where this x86-64 CPU has both, else nothing.

    Measured here: forward 1.4x and backward 1.2x faster than the SSE2 baseline (AVX-512 was no
    better). ``-ffp-contract=off`` keeps FMA out of the arithmetic, so results do not change.
    """
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return []
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])
    return ["-mavx2", "-mfma"] if {"avx2", "fma"} <= set(flags) else []


def _source_dir() -> Path:
    """The folder of the kernel's sources: the checkout's ``csrc/`` or the installed package's copy."""
    src = shipped_dir("csrc")
    missing = [name for name in _SOURCES if not (src / name).is_file()]
    if missing:
        raise FileNotFoundError(f"fused LIF sources {', '.join(missing)} not found in {src} "
                                "(an install without its package data?)")
    return src


def _source_digest(src: Path) -> str:
    """Eight hex digits of the hash of every source and header in ``src`` (names and contents).

    The digest is part of the extension's name, which keys the build cache (see ``_compile``):
    it must change with every file that is compiled or included, headers too.
    """
    digest = hashlib.sha256()
    for path in sorted(p for p in src.iterdir() if p.suffix in _HASHED_SUFFIXES and p.is_file()):
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:8]


def _compile() -> tuple[Any, bool]:
    """Build (or load from the cache) the extension; returns its ops and whether CUDA is in it."""
    from torch.utils import cpp_extension

    src = _source_dir()
    sources = [str(src / name) for name in _SOURCES]
    isa = _isa_flags()
    cflags = _CFLAGS + isa
    # The name keys the build cache: an AVX2 build must never be loaded on a CPU without AVX2,
    # and checkouts with different sources (worktrees, branches) must not rebuild over each other.
    name = _EXTENSION_NAME + ("_avx2" if isa else "") + "_" + _source_digest(src)
    with_cuda = torch.cuda.is_available() and cpp_extension.CUDA_HOME is not None
    if with_cuda:  # untested here: no machine of this project has a GPU
        sources.append(str(src / _CUDA_SOURCE))
        cflags.append("-DNEURODEPLOY_WITH_CUDA")
        name += "_cuda"
    cpp_extension.load(name=name, sources=sources,
                       extra_cflags=cflags, extra_ldflags=["-fopenmp"],
                       extra_cuda_cflags=["-O3", "-DNEURODEPLOY_WITH_CUDA"],
                       extra_include_paths=[str(src)], with_cuda=with_cuda,
                       is_python_module=False, verbose=False)
    return torch.ops.neurodeploy_lif, with_cuda


def _extension() -> Any:
    """The loaded ops, building them on first use; ``None`` if the build failed."""
    if not _build["attempted"]:
        _build["attempted"] = True
        try:
            _build["ops"], _build["cuda"] = _compile()
        except Exception as exc:  # any build or load failure means: use the twin
            _build["error"] = f"{type(exc).__name__}: {exc}".strip()[:2000]
    return _build["ops"]


def kernel_status() -> dict[str, Any]:
    """Which LIF path runs and why: ``path`` is ``"fused-cpu"``, ``"twin"`` or ``"error"``;
    ``sources`` is the folder the kernel is (or would be) built from.

    Builds the extension if that has not been tried yet (about 0.1 s when cached, 10-20 s the
    first time on a 2-core machine). Never raises for a failed build; see ``build_error``.
    """
    mode = kernel_mode()
    status: dict[str, Any] = {"mode": mode, "build_error": None, "cuda": False,
                              "isa": "avx2" if _isa_flags() else "baseline",
                              "sources": str(shipped_dir("csrc"))}
    if mode == "twin":
        return {**status, "path": "twin", "reason": "forced by NEURODEPLOY_KERNEL=twin"}
    ops = _extension()
    status.update(build_error=_build["error"], cuda=_build["cuda"])
    if ops is not None:
        return {**status, "path": "fused-cpu",
                "reason": f"extension built (mode {mode}); CUDA launcher "
                          + ("compiled in" if _build["cuda"] else "not built (no CUDA device)")}
    if mode == "fused":
        return {**status, "path": "error",
                "reason": "NEURODEPLOY_KERNEL=fused but the extension failed to build"}
    return {**status, "path": "twin", "reason": "extension failed to build; using the twin"}


def _params_need_grad(p: LIFParameters) -> bool:
    return torch.is_grad_enabled() and any(
        isinstance(v, torch.Tensor) and v.requires_grad for v in p)


def fused_supports(x: torch.Tensor, p: LIFParameters) -> bool:
    """Whether the built kernel can run this call (dtype, device, constant parameters)."""
    ops = _extension()
    return (ops is not None and x.dtype in (torch.float32, torch.float64)
            and (x.device.type == "cpu" or (x.device.type == "cuda" and _build["cuda"]))
            and not _params_need_grad(p))


def use_fused(x: torch.Tensor, p: LIFParameters) -> bool:
    """The dispatcher's decision for one call; warns once if ``auto`` falls back on a build error."""
    global _warned
    mode = kernel_mode()
    if mode == "twin":
        return False
    if _extension() is None:
        if mode == "fused":
            raise FusedKernelUnavailable(
                f"NEURODEPLOY_KERNEL=fused, but the fused LIF kernel failed to build: "
                f"{_build['error']}")
        if not _warned:
            _warned = True
            warnings.warn(f"neurodeploy: fused LIF kernel unavailable, using the PyTorch twin "
                          f"({_build['error']})", RuntimeWarning, stacklevel=3)
        return False
    return mode == "fused" or fused_supports(x, p)


def _coefficients(p: LIFParameters, dt_s: float, n: int, dtype: torch.dtype,
                  device: torch.device) -> tuple[torch.Tensor, ...]:
    """The twin's per-neuron coefficients, contiguous ``[N]``; cached for scalar parameters.

    The cache matters: ``torch.exp`` on a few hundred values costs ~1 us on one thread but
    0.02-0.2 ms with two (it wakes the thread pool), as much as a whole small forward pass.
    """
    if all(isinstance(v, (int, float)) for v in p):
        return _scalar_coefficients(tuple(float(v) for v in p), float(dt_s), n, dtype, device)
    return _vector_coefficients(p, dt_s, n, dtype, device)


@functools.lru_cache(maxsize=64)
def _scalar_coefficients(p: tuple[float, ...], dt_s: float, n: int, dtype: torch.dtype,
                         device: torch.device) -> tuple[torch.Tensor, ...]:
    return _vector_coefficients(LIFParameters(*p), dt_s, n, dtype, device)


def _vector_coefficients(p: LIFParameters, dt_s: float, n: int, dtype: torch.dtype,
                         device: torch.device) -> tuple[torch.Tensor, ...]:
    with torch.no_grad():  # parameters are constants of the kernel
        c = lif_coefficients(p, dt_s, n, dtype, device)
        # a one-element parameter broadcasts in the twin: expand it here
        return tuple((t.expand(n) if t.numel() == 1 else t).contiguous() for t in c)


class _FusedLIF(torch.autograd.Function):
    """Autograd wrapper of the two ops; ``lateral`` may be ``None``.

    Forward saves ``x``, the spikes and, without feedback, a checkpoint of the state every 32
    steps (backward recomputes each 32-step segment from it); with feedback, the membrane
    before reset of every step (and the refractory flags if any neuron has a refractory period).
    """

    @staticmethod
    def forward(ctx, x, lateral, coeffs, surrogate_args, detach_reset, sparse):
        z, v, state, refractory = _build["ops"].lif_forward(x, *coeffs, lateral, True)
        ctx.save_for_backward(x, z, state, refractory, lateral)
        ctx.coeffs, ctx.surrogate_args, ctx.detach_reset = coeffs, surrogate_args, detach_reset
        ctx.sparse = sparse
        ctx.set_materialize_grads(False)  # a missing output gradient is a null pointer, not zeros
        return z, v

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_z, grad_v):
        x, z, state, refractory, lateral = ctx.saved_tensors
        contiguous = lambda g: None if g is None else g.contiguous()  # noqa: E731
        grad_x, grad_lateral, active = _build["ops"].lif_backward(
            contiguous(grad_z), contiguous(grad_v), x, z, state, refractory, *ctx.coeffs, lateral,
            *ctx.surrogate_args, ctx.detach_reset, ctx.needs_input_grad[1], ctx.sparse)
        if ctx.sparse and int(active) >= 0:  # -1: not counted (GPU without feedback)
            record_active(int(active), x.numel())
        return (grad_x if ctx.needs_input_grad[0] else None,
                grad_lateral if ctx.needs_input_grad[1] else None, None, None, None, None)


def fused_lif_sequence(x: torch.Tensor, p: LIFParameters, dt_s: float, *,
                       lateral: Optional[torch.Tensor] = None, surrogate_steepness: float = 10.0,
                       detach_reset: bool = False, surrogate: Optional[Surrogate] = None,
                       sparse_backward: Optional[bool] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The twin's :func:`~neurodeploy.core.lif.lif_sequence`, fused: ``x`` ``[T, B, N]`` → (spikes, membrane).

    ``sparse_backward`` (:mod:`neurodeploy.core.sparse`; exact): ``None`` uses it when the surrogate is 0
    outside a band, ``True`` requires such a surrogate (``ValueError`` otherwise), ``False`` is the dense
    backward. Raises :class:`FusedKernelUnavailable` if the extension did not build, and ``ValueError``
    for inputs it does not cover (dtype other than float32/float64, a device it was not built
    for, parameter tensors that require grad).
    """
    ops = _extension()
    if ops is None:
        raise FusedKernelUnavailable(f"fused LIF kernel failed to build: {_build['error']}")
    if not fused_supports(x, p):
        raise ValueError("fused LIF kernel: needs float32/float64 on a built device and "
                         "parameters that do not require grad (use the twin for those)")
    if x.dim() != 3:
        raise ValueError(f"x must be [T, B, N], got shape {tuple(x.shape)}")
    coeffs = _coefficients(p, dt_s, x.shape[-1], x.dtype, x.device)
    x = x.contiguous()
    lat = None if lateral is None else lateral.contiguous()
    needs_grad = torch.is_grad_enabled() and (
        x.requires_grad or (lat is not None and lat.requires_grad))
    if not needs_grad:  # inference (the mock, evaluation): keep nothing for backward
        z, v, _, _ = ops.lif_forward(x, *coeffs, lat, False)
        return z, v
    s = resolve(surrogate, surrogate_steepness)
    sparse = s.sparse if sparse_backward is None else bool(sparse_backward)
    if sparse:
        check_sparse(s)
    return _FusedLIF.apply(x, lat, coeffs, s.kernel_args(), bool(detach_reset), sparse)


__all__ = ["FusedKernelUnavailable", "fused_lif_sequence", "fused_supports", "kernel_mode",
           "kernel_status", "set_kernel_mode", "twin_lif_sequence", "use_fused"]
