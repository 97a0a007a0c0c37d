"""The fused LIF kernel (csrc/, neurodeploy/core/fused.py) against its PyTorch twin.

Contract: spikes identical; membrane and gradients (x, lateral) within 1e-5 relative, i.e.
``|a - b| <= 1e-5 (|b| + max|b|)`` element-wise. The sweep is seeded (deterministic), covering
segment/checkpoint boundaries (T around 32 and 64), SIMD and chunk tails (N around 128),
feedback, refractory periods, reset detach, per-neuron parameters and infinite thresholds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest
import torch

from neurodeploy.core import dispatch, fused
from neurodeploy.core.lif import LIFParameters, lif_sequence
from neurodeploy.core.surrogate import KINDS, Surrogate

CSRC = Path(__file__).resolve().parents[1] / "csrc"
DT_S = 1e-3


@pytest.fixture(scope="module")
def built() -> None:
    """Skips kernel tests when the extension did not build (test_fused_path_required fails then)."""
    status = fused.kernel_status()
    if fused._extension() is None:
        pytest.skip(f"fused extension not built: {status['build_error']}")


def test_fused_path_required() -> None:
    """CI sets NEURODEPLOY_REQUIRE_FUSED=1: there a silent fallback to the twin is a failure."""
    status = fused.kernel_status()
    if os.environ.get("NEURODEPLOY_REQUIRE_FUSED") == "1":
        assert fused._extension() is not None, f"fused kernel did not build: {status}"
        assert status["path"] == "fused-cpu", status
        assert fused.use_fused(torch.rand(3, 2, 4), LIFParameters())  # what dispatch runs
    elif status["path"] != "fused-cpu":  # then the status must say why
        assert status["reason"] and (status["build_error"] or status["mode"] == "twin"), status


def _close(actual: torch.Tensor, expected: torch.Tensor, rel: float = 1e-5) -> None:
    scale = expected.abs().max().item() if expected.numel() else 0.0
    torch.testing.assert_close(actual, expected, rtol=rel, atol=rel * scale, equal_nan=False)


def _case(seed: int, steps: int, batch: int, n: int, *, lateral: bool, refractory: bool,
          inf_th: bool, dtype: torch.dtype = torch.float32):
    """Random inputs, per-neuron parameters (floats for some), feedback matrix or None."""
    g = torch.Generator().manual_seed(seed)
    rand = lambda *s: torch.rand(*s, generator=g, dtype=dtype)  # noqa: E731
    v_th = 0.8 + 0.4 * rand(n)
    if inf_th:
        v_th[::5] = float("inf")  # non-spiking readout neurons inside the population
    p = LIFParameters(
        tau_mem_s=4e-3 + 12e-3 * rand(n), tau_syn_s=2e-3 + 6e-3 * rand(n) if seed % 2 else 5e-3,
        v_leak=0.1 * rand(n) - 0.05, v_th=v_th,
        v_reset=-0.2 * rand(n) if seed % 3 else 0.0,
        t_ref_s=(1e-3 + 3e-3 * rand(n)) if refractory else 0.0)
    x = 0.25 + 0.6 * torch.randn(steps, batch, n, generator=g, dtype=dtype)
    lat = 0.6 * torch.randn(n, n, generator=g, dtype=dtype) / max(n, 1) ** 0.5 if lateral else None
    return x, p, lat


# (seed, T, B, N, lateral, refractory, detach_reset, inf thresholds)
SWEEP = [
    (1, 1, 1, 1, False, False, False, False),
    (2, 31, 3, 7, False, True, False, False),
    (3, 32, 2, 128, True, False, True, False),
    (4, 33, 2, 129, False, True, True, True),
    (5, 64, 3, 50, True, True, False, True),
    (6, 65, 1, 200, True, False, False, False),
    (7, 97, 4, 33, False, False, False, True),
    (8, 100, 2, 257, True, True, True, True),
    (9, 12, 5, 3, True, True, False, False),
    (10, 70, 2, 130, False, True, False, False),
    (11, 40, 3, 64, True, False, True, True),
    (12, 5, 2, 300, False, False, True, False),
]


def _fused_matches_twin(seed: int, steps: int, batch: int, n: int, lateral: bool, refractory: bool, detach: bool,
                        inf_th: bool, surrogate: Surrogate | None = None) -> torch.Tensor:
    """Run one random case on the fused kernel and the twin: spikes identical, membrane and the gradients of x
    and L (under random output gradients) finite and within the contract's 1e-5; returns the twin's spikes."""
    x, p, lat = _case(seed, steps, batch, n, lateral=lateral, refractory=refractory, inf_th=inf_th)
    outs, grads = [], []
    for fn in (fused.fused_lif_sequence, lif_sequence):
        xi = x.clone().requires_grad_()
        li = None if lat is None else lat.clone().requires_grad_()
        z, v = fn(xi, p, DT_S, lateral=li, detach_reset=detach, surrogate=surrogate)
        g = torch.Generator().manual_seed(seed + 100)
        gz, gv = torch.randn(z.shape, generator=g), torch.randn(v.shape, generator=g)
        outs.append((z, v))
        grads.append(torch.autograd.grad([z, v], [xi] + ([li] if li is not None else []), [gz, gv]))
    (zf, vf), (zt, vt) = outs
    assert torch.equal(zf, zt), f"{int((zf != zt).sum())} spikes differ"
    _close(vf, vt)
    for gf, gt in zip(*grads):
        assert torch.isfinite(gf).all()
        _close(gf, gt)
    return zt


@pytest.mark.parametrize("seed,steps,batch,n,lateral,refractory,detach,inf_th", SWEEP)
def test_matches_twin(built, seed, steps, batch, n, lateral, refractory, detach, inf_th) -> None:
    zt = _fused_matches_twin(seed, steps, batch, n, lateral, refractory, detach, inf_th)
    if steps >= 20 and steps * batch * n >= 1000:  # must exercise spikes, else it tests little
        assert 0.01 < zt.mean().item() < 0.6, zt.mean().item()


def _random_cases(kind: str, count: int) -> list[tuple]:
    """``count`` seeded random cases for one surrogate kind: shapes (T up to 100, across checkpoint
    boundaries; B up to 4; N up to 300, across chunk tails) and every switch drawn at random."""
    g = torch.Generator().manual_seed(1000 + KINDS[kind].code)
    draw = lambda lo, hi: int(torch.randint(lo, hi + 1, (1,), generator=g))  # noqa: E731
    return [(1000 + 10 * KINDS[kind].code + i, draw(1, 100), draw(1, 4), draw(1, 300),
             *(bool(draw(0, 1)) for _ in range(4))) for i in range(count)]


# Each kind at its defaults and at other parameters (SLAYER's own tau_rho = scale_rho = 1).
SURROGATES = [Surrogate.of(kind) for kind in KINDS] + [
    Surrogate.of("superspike", steepness=3.0), Surrogate.of("arctan", alpha=7.0),
    Surrogate.of("triangle", height=0.3, width=1.0), Surrogate.of("slayer", scale_rho=1.0, tau_rho=1.0)]
SURROGATE_SWEEP = [(s, *case) for s in SURROGATES for case in _random_cases(s.kind, 4)]


@pytest.mark.parametrize("surrogate,seed,steps,batch,n,lateral,refractory,detach,inf_th", SURROGATE_SWEEP,
                         ids=[f"{c[0].describe()}-{c[1]}" for c in SURROGATE_SWEEP])
def test_every_surrogate_matches_twin(built, surrogate, seed, steps, batch, n, lateral, refractory, detach,
                                      inf_th) -> None:
    """The fused kernel's surrogate (csrc/lif_core.h) against the twin's (core/surrogate.py), for every kind:
    spikes identical, membrane and the gradients of x and L within the contract's 1e-5."""
    _fused_matches_twin(seed, steps, batch, n, lateral, refractory, detach, inf_th, surrogate)


def test_surrogates_reach_the_kernel(built) -> None:
    """Each kind gives the kernel's backward other gradients (the kind and its numbers are not dropped), and the
    dispatcher passes the surrogate on; float64 too."""
    x, p, _ = _case(81, 40, 2, 20, lateral=False, refractory=True, inf_th=False, dtype=torch.float64)
    seen = {}
    for surrogate in SURROGATES:
        xi = x.clone().requires_grad_()
        z, _ = dispatch.lif_sequence(xi, p, DT_S, surrogate=surrogate)
        (g,) = torch.autograd.grad(z.sum(), xi)
        xt = x.clone().requires_grad_()
        (gt,) = torch.autograd.grad(lif_sequence(xt, p, DT_S, surrogate=surrogate)[0].sum(), xt)
        _close(g, gt)
        seen[surrogate] = g
    assert len({tuple(g.flatten().tolist()) for g in seen.values()}) == len(SURROGATES)
    with pytest.raises(RuntimeError, match="surrogate must be a SurrogateKind code"):
        xi = x.clone().requires_grad_()
        z, _ = fused._FusedLIF.apply(xi, None, fused._coefficients(p, DT_S, 20, x.dtype, x.device),
                                     (len(KINDS), 1.0, 1.0), True, False)
        z.sum().backward()


@pytest.mark.parametrize("which", ["spikes", "membrane"])
def test_single_output_gradients(built, which: str) -> None:
    """A loss on one output only: the other gradient is None inside the kernel (null pointer)."""
    x, p, lat = _case(21, 45, 3, 40, lateral=True, refractory=True, inf_th=False)
    results = []
    for fn in (fused.fused_lif_sequence, lif_sequence):
        xi, li = x.clone().requires_grad_(), lat.clone().requires_grad_()
        z, v = fn(xi, p, DT_S, lateral=li)
        out = z if which == "spikes" else v
        w = torch.linspace(-1.0, 1.0, out.numel()).reshape(out.shape)
        results.append(torch.autograd.grad((out * w).sum(), [xi, li]))
    for gf, gt in zip(*results):
        _close(gf, gt)


def test_float64_and_inference_path(built) -> None:
    """float64 matches too, and the no-grad path (no checkpoints) returns the same outputs."""
    x, p, lat = _case(31, 70, 2, 30, lateral=True, refractory=True, inf_th=True,
                      dtype=torch.float64)
    zt, vt = lif_sequence(x, p, DT_S, lateral=lat)
    with torch.no_grad():
        zi, vi = fused.fused_lif_sequence(x, p, DT_S, lateral=lat)
    zg, vg = fused.fused_lif_sequence(x.clone().requires_grad_(), p, DT_S, lateral=lat)
    assert torch.equal(zi, zt) and torch.equal(zg, zt)
    _close(vi, vt)
    assert torch.equal(vi, vg.detach())


def test_infinite_thresholds(built) -> None:
    """v_th = inf: no spikes, zero surrogate gradient, no NaN, membrane = the leaky integrator."""
    x, p, _ = _case(41, 50, 2, 10, lateral=False, refractory=True, inf_th=False)
    p = p._replace(v_th=float("inf"))
    xi = x.clone().requires_grad_()
    z, v = fused.fused_lif_sequence(xi, p, DT_S, surrogate_steepness=10.0)
    (gx,) = torch.autograd.grad([z, v], [xi], [torch.ones_like(z), torch.ones_like(v)])
    assert z.sum() == 0 and torch.isfinite(v).all() and torch.isfinite(gx).all()
    zt, vt = lif_sequence(x, p, DT_S)
    _close(v, vt)


def test_non_contiguous_inputs(built) -> None:
    """The mock passes ``recurrent.t()``; x may be a view too."""
    x, p, lat = _case(51, 20, 3, 16, lateral=True, refractory=False, inf_th=False)
    xt = x.transpose(1, 2).contiguous().transpose(1, 2)  # same values, non-contiguous
    lt = lat.t().contiguous().t()
    zf, vf = fused.fused_lif_sequence(xt, p, DT_S, lateral=lt)
    zt, vt = lif_sequence(x, p, DT_S, lateral=lat)
    assert torch.equal(zf, zt)
    _close(vf, vt)


def test_large_outputs_are_ordinary_tensors(built) -> None:
    """Outputs of >= 4 MiB come from the kernel's huge-page pool; they must still resize,
    share and free like any tensor (a from_blob storage segfaulted after a failed resize_)."""
    x = 0.3 + torch.rand(40, 64, 512)  # 5 MiB per output
    for _ in range(2):  # the second call reuses the pooled mappings of the first
        z, v = fused.fused_lif_sequence(x, LIFParameters(), DT_S)
        zt, vt = lif_sequence(x, LIFParameters(), DT_S)
        assert torch.equal(z, zt) and torch.equal(v, vt)
    z.resize_(80, 64, 512)
    assert z.clone()[:40].sum() == zt.sum()
    assert v.share_memory_().is_shared() and torch.equal(v, vt)


def _gradcheck_fn(p: LIFParameters, steepness: float):
    def fn(x: torch.Tensor, lat: torch.Tensor):
        return fused.fused_lif_sequence(x, p, DT_S, lateral=lat, surrogate_steepness=steepness)
    return fn


def test_gradcheck_float64(built) -> None:
    """torch.autograd.gradcheck on the fused Function, float64, across a checkpoint boundary.

    A surrogate is not the derivative of the Heaviside step, so finite differences can only
    match where the surrogate vanishes: (a) with a huge steepness (surrogate ~ 0 away from the
    threshold: the exact derivative at a fixed spike pattern, with resets, refractory clamps and
    the feedback of the spikes), (b) with v_th = inf at the default steepness (no spikes). The
    surrogate itself is checked against the twin above.
    """
    x, p, lat = _case(61, 40, 2, 3, lateral=True, refractory=True, inf_th=False,
                      dtype=torch.float64)
    x, lat = x.requires_grad_(), lat.requires_grad_()
    z, _ = fused.fused_lif_sequence(x, p, DT_S, lateral=lat)
    assert z.sum() > 5  # spikes, resets and refractory periods are in play
    assert torch.autograd.gradcheck(_gradcheck_fn(p, 1e12), (x, lat), eps=1e-6, atol=1e-6)
    no_spikes = p._replace(v_th=float("inf"))
    assert torch.autograd.gradcheck(_gradcheck_fn(no_spikes, 10.0), (x, lat), eps=1e-6,
                                    atol=1e-6)


def test_gradcheck_without_feedback(built) -> None:
    x, p, _ = _case(62, 35, 2, 4, lateral=False, refractory=True, inf_th=True,
                    dtype=torch.float64)
    fn = lambda x_: fused.fused_lif_sequence(x_, p, DT_S, surrogate_steepness=1e12,  # noqa: E731
                                             detach_reset=True)
    assert torch.autograd.gradcheck(fn, (x.requires_grad_(),), eps=1e-6, atol=1e-6)


# ---- path selection ------------------------------------------------------------------------------


@pytest.fixture()
def failed_build(monkeypatch):
    """Pretend the extension failed to build (fresh state; restored afterwards)."""
    def fail():
        raise RuntimeError("simulated compiler failure")
    monkeypatch.setattr(fused, "_compile", fail)
    for key, value in {"attempted": False, "ops": None, "error": None, "cuda": False}.items():
        monkeypatch.setitem(fused._build, key, value)
    monkeypatch.setattr(fused, "_warned", False)
    monkeypatch.delenv("NEURODEPLOY_KERNEL", raising=False)
    fused.set_kernel_mode(None)


def test_build_failure_falls_back_with_one_warning(failed_build) -> None:
    x, p, lat = _case(71, 10, 2, 5, lateral=True, refractory=False, inf_th=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        z1, v1 = dispatch.lif_sequence(x, p, DT_S, lateral=lat)
        dispatch.lif_sequence(x, p, DT_S, lateral=lat)
    ours = [w for w in caught if "fused LIF kernel unavailable" in str(w.message)]
    assert len(ours) == 1 and "simulated compiler failure" in str(ours[0].message)
    zt, vt = lif_sequence(x, p, DT_S, lateral=lat)
    assert torch.equal(z1, zt) and torch.equal(v1, vt)
    status = fused.kernel_status()
    assert status["path"] == "twin" and "simulated" in status["build_error"]


def test_forced_fused_without_build_is_an_error(failed_build, monkeypatch) -> None:
    monkeypatch.setenv("NEURODEPLOY_KERNEL", "fused")
    with pytest.raises(fused.FusedKernelUnavailable, match="simulated compiler failure"):
        dispatch.lif_sequence(torch.rand(3, 1, 2), LIFParameters(), DT_S)
    assert fused.kernel_status()["path"] == "error"


def test_mode_selection(built, monkeypatch) -> None:
    x, p = torch.rand(4, 2, 3), LIFParameters()
    monkeypatch.setenv("NEURODEPLOY_KERNEL", "twin")
    assert not fused.use_fused(x, p) and fused.kernel_status()["path"] == "twin"
    monkeypatch.setenv("NEURODEPLOY_KERNEL", "auto")
    assert fused.use_fused(x, p) and fused.kernel_status()["path"] == "fused-cpu"
    fused.set_kernel_mode("twin")  # the option wins over the environment
    try:
        assert not fused.use_fused(x, p)
    finally:
        fused.set_kernel_mode(None)
    monkeypatch.setenv("NEURODEPLOY_KERNEL", "fast")
    with pytest.raises(ValueError, match="NEURODEPLOY_KERNEL"):
        fused.use_fused(x, p)


def test_learnable_parameters_go_to_the_twin(built, monkeypatch) -> None:
    """The kernel treats parameters as constants; the dispatcher keeps their gradient exact."""
    monkeypatch.setenv("NEURODEPLOY_KERNEL", "auto")
    tau = torch.full((3,), 8e-3, requires_grad=True)
    p = LIFParameters(tau_mem_s=tau)
    x = 0.5 + torch.rand(20, 2, 3)
    assert not fused.use_fused(x, p)
    _, v = dispatch.lif_sequence(x, p, DT_S)
    (g,) = torch.autograd.grad(v.sum(), [tau])
    assert torch.isfinite(g).all() and g.abs().sum() > 0
    with pytest.raises(ValueError, match="parameters"):
        fused.fused_lif_sequence(x, p, DT_S)


# ---- CUDA launcher compiles ----------------------------------------------------------------------


def _nvcc() -> str | None:
    cuda_home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH") or "/usr/local/cuda"
    candidate = Path(cuda_home) / "bin" / "nvcc"
    return shutil.which("nvcc") or (str(candidate) if candidate.is_file() else None)


def _cuda_include(nvcc: str) -> Path | None:
    """The toolkit's include directory (nvcc may be a wrapper script outside the toolkit)."""
    homes = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda",
             str(Path(nvcc).resolve().parents[1])]
    for home in filter(None, homes):
        if (Path(home) / "include" / "cuda_runtime.h").is_file():
            return Path(home) / "include"
    return None


def test_cuda_launcher_compiles(tmp_path: Path) -> None:
    """lif_cuda.cu compiles with nvcc; it cannot run here (no GPU)."""
    nvcc = _nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found (PATH, $CUDA_HOME/bin): the CUDA launcher was not compiled")
    out = tmp_path / "lif_cuda.o"
    run = subprocess.run([nvcc, "-std=c++17", "-O3", f"-I{CSRC}", "-c", str(CSRC / "lif_cuda.cu"),
                          "-o", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, f"nvcc failed:\n{run.stderr[-4000:]}"
    assert out.stat().st_size > 0


def test_cuda_operator_branch_compiles(tmp_path: Path) -> None:
    """lif_ops.cpp's CUDA branch (NEURODEPLOY_WITH_CUDA) compiles, syntax only, against the CUDA
    toolkit's and torch's headers."""
    from torch.utils.cpp_extension import include_paths

    nvcc = _nvcc()
    cuda_include = _cuda_include(nvcc) if nvcc else None
    torch_includes = include_paths()
    if cuda_include is None:
        pytest.skip("no CUDA toolkit headers (cuda_runtime.h) found")
    if not any((Path(p) / "c10" / "cuda" / "CUDAGuard.h").is_file() for p in torch_includes):
        pytest.skip("this torch build ships no c10/cuda headers")
    # A CPU build of torch ships the c10/cuda headers but not this generated one (it only sets
    # the symbol-visibility macro); supply it so that the syntax check can run here.
    stub = tmp_path / "stub" / "c10" / "cuda" / "impl"
    stub.mkdir(parents=True)
    (stub / "cuda_cmake_macros.h").write_text("#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n")
    args = [os.environ.get("CXX", "c++"), "-fsyntax-only", "-std=c++17", "-fopenmp",
            "-DNEURODEPLOY_WITH_CUDA", f"-I{CSRC}", f"-I{tmp_path / 'stub'}",
            f"-isystem{cuda_include}", *(f"-isystem{p}" for p in torch_includes),
            str(CSRC / "lif_ops.cpp")]
    run = subprocess.run(args, capture_output=True, text=True)
    assert run.returncode == 0, f"CUDA branch of lif_ops.cpp failed:\n{run.stderr[-4000:]}"
