"""The mock chip's CUDA launcher (csrc/mock_cuda.cu) and its wiring (``NEURODEPLOY_MOCK=fast-cuda``).

No machine of this project has a GPU: the launcher is compiled, never run (csrc/README.md). The compile tests
skip only when no CUDA toolkit is found, as tests/test_fused_kernel.py's CUDA tests do; the test that runs the
CUDA path against the CPU path skips without a CUDA device (everywhere here), and the opt-in's error without
one runs everywhere.
"""

from __future__ import annotations

import os
import subprocess
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import torch

from neurodeploy.backends.base import Recording
from neurodeploy.backends.mock import chip as chip_module
from neurodeploy.backends.mock import fast
from neurodeploy.backends.mock.chip import MockChip
from neurodeploy.backends.mock.variation import MockEffects
from neurodeploy.deployment import load_deployment
from neurodeploy.errors import BackendError
from test_fused_kernel import CSRC, _cuda_include, _nvcc


def _nvcc_or_skip() -> str:
    nvcc = _nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found (PATH, $CUDA_HOME/bin): the mock's CUDA launcher was not compiled")
    return nvcc


def _compile(nvcc: str, out: Path, *flags: str) -> None:
    run = subprocess.run([nvcc, "-std=c++17", "-O3", *flags, f"-I{CSRC}", "-c", str(CSRC / "mock_cuda.cu"),
                          "-o", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, f"nvcc failed:\n{run.stderr[-4000:]}"
    assert out.stat().st_size > 0


def test_mock_cuda_launcher_compiles(tmp_path: Path) -> None:
    """mock_cuda.cu compiles with nvcc's default target."""
    _compile(_nvcc_or_skip(), tmp_path / "mock_cuda.o")


def test_mock_cuda_launcher_compiles_for_sm80(tmp_path: Path) -> None:
    """Machine code for a real architecture (ptxas allocates registers and emits SASS, which PTX alone does not
    check), with --fmad=false as a build that matches the CPU bit for bit would use."""
    nvcc = _nvcc_or_skip()
    listed = subprocess.run([nvcc, "--list-gpu-arch"], capture_output=True, text=True)
    if listed.returncode == 0 and "compute_80" not in listed.stdout:
        pytest.skip(f"this nvcc cannot build for sm_80: {listed.stdout.split()}")
    _compile(nvcc, tmp_path / "mock_cuda_sm80.o", "-arch=sm_80", "--fmad=false")


def test_mock_cuda_header_compiles_with_host_compiler() -> None:
    """mock_cuda.h, the launcher's interface, compiles with the host C++ compiler (the operator that would call
    it is built by it, against the toolkit's headers)."""
    nvcc = _nvcc_or_skip()
    cuda_include = _cuda_include(nvcc)
    if cuda_include is None:
        pytest.skip("no CUDA toolkit headers (cuda_runtime.h) found")
    run = subprocess.run([os.environ.get("CXX", "c++"), "-fsyntax-only", "-std=c++17", "-Wall", "-Wextra",
                          f"-I{CSRC}", f"-isystem{cuda_include}", "-x", "c++", str(CSRC / "mock_cuda.h")],
                         capture_output=True, text=True)
    assert run.returncode == 0, f"mock_cuda.h failed:\n{run.stderr[-4000:]}"


def test_mock_cpu_cuda_branch_compiles_with_host_compiler(tmp_path: Path) -> None:
    """mock_cpu.cpp with -DNEURODEPLOY_WITH_CUDA (the CUDA branch of ``run``), syntax only, against torch's,
    Python's and the CUDA toolkit's headers, as cpp_extension's host compiler builds it for fast-cuda."""
    from torch.utils.cpp_extension import include_paths

    nvcc = _nvcc_or_skip()
    cuda_include = _cuda_include(nvcc)
    if cuda_include is None:
        pytest.skip("no CUDA toolkit headers (cuda_runtime.h) found")
    # include_paths(device_type="cuda") adds $CUDA_HOME/include and raises where torch finds no CUDA_HOME
    # (a CPU build of torch); the toolkit's include directory found above is the same path.
    torch_includes = include_paths()
    if not any((Path(p) / "c10" / "cuda" / "CUDAGuard.h").is_file() for p in torch_includes):
        pytest.skip("this torch build ships no c10/cuda headers")
    # A CPU build of torch ships the c10/cuda headers but not this generated one (it only sets the
    # symbol-visibility macro); supply it, as test_cuda_operator_branch_compiles does.
    stub = tmp_path / "stub" / "c10" / "cuda" / "impl"
    stub.mkdir(parents=True)
    (stub / "cuda_cmake_macros.h").write_text("#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n")
    args = [os.environ.get("CXX", "c++"), "-fsyntax-only", "-std=c++17", "-fopenmp", "-Wall", "-Wextra",
            "-DNEURODEPLOY_WITH_CUDA", "-DTORCH_EXTENSION_NAME=neurodeploy_mock_check", f"-I{CSRC}",
            f"-I{tmp_path / 'stub'}", f"-isystem{cuda_include}", *(f"-isystem{p}" for p in torch_includes),
            f"-isystem{sysconfig.get_paths()['include']}", str(CSRC / "mock_cpu.cpp")]
    run = subprocess.run(args, capture_output=True, text=True)
    assert run.returncode == 0, f"CUDA branch of mock_cpu.cpp failed:\n{run.stderr[-4000:]}"
    assert "warning" not in run.stderr, run.stderr[-4000:]


def test_fast_cuda_without_a_gpu_is_a_one_line_error_with_the_fix(monkeypatch, deployment_file) -> None:
    """The opt-in fails loudly where it cannot run (here: always), and auto stays on the CPU."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as here, on any machine
    monkeypatch.setattr(fast, "_cuda_build", {"attempted": False, "ops": None, "error": None})
    monkeypatch.setenv("NEURODEPLOY_MOCK", "fast-cuda")
    with pytest.raises(BackendError, match="NEURODEPLOY_MOCK=fast-cuda, but") as raised:
        fast.emulator_ops()
    line = raised.value.one_line()
    assert "\n" not in str(raised.value) and "NEURODEPLOY_MOCK=auto" in raised.value.fix and "GPU" in line
    with pytest.raises(BackendError, match="fast-cuda"):  # a run says the same
        MockChip("ideal").run(load_deployment(deployment_file), np.full((2, 5), 0.01))
    status = fast.emulator_status()  # what `neurodeploy doctor` shows: no exception, the reason
    assert status["path"] == "error" and status["mode"] == "fast-cuda" and "fix:" in status["reason"]
    assert not fast._cuda_build["attempted"]  # nothing was compiled for it
    monkeypatch.setenv("NEURODEPLOY_MOCK", "auto")
    assert fast.emulator_status()["path"] in ("fast-cpu", "twin")


def test_fast_cuda_plumbing_moves_everything_and_back(monkeypatch, deployment_file) -> None:
    """fast_run's fast-cuda branch with the CPU standing in for the GPU (the extension's CPU build, the device
    "cpu"): every argument goes through the moves in the right place, the setup is copied once per device,
    and the result is the fast path's. What runs on a real device is test_cuda_runs_are_the_cpu_runs_bit_for_bit."""
    if fast.emulator_status()["path"] != "fast-cpu":
        pytest.skip("fast emulator not built")
    dep = load_deployment(deployment_file)
    monkeypatch.setenv("NEURODEPLOY_MOCK", "fast")
    expected = MockChip("2", seed=4).run(dep, _times(20, 2))
    monkeypatch.setenv("NEURODEPLOY_MOCK", "fast-cuda")
    monkeypatch.setattr(fast, "_cuda_ops", lambda: fast._build["ops"])
    monkeypatch.setattr(fast, "_run_device", lambda: torch.device("cpu"))
    backend = MockChip("2", seed=4)
    got = backend.run(dep, _times(20, 2))
    assert torch.equal(expected.spikes, got.spikes) and torch.equal(expected.membrane, got.membrane)
    assert expected.counters == got.counters and np.array_equal(expected.spike_events, got.spike_events)
    setup = backend._fast_setup[1]
    assert list(setup.on_device) == ["cpu"] and setup.on_device["cpu"].on_device == {}
    backend.run(dep, _times(3, 5))
    assert list(setup.on_device) == ["cpu"]  # the copy is reused by the next batch


def _cuda_or_skip() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    if fast._cuda_missing() is not None:  # a GPU but no toolkit to build the launcher
        pytest.skip(str(fast._cuda_missing()))


def _times(batch: int, seed: int, congested: bool = False) -> np.ndarray:
    times = np.random.default_rng(seed).uniform(0, 0.03, size=(batch, 5))
    if congested:  # on a 5 ms grid: channels of a sample often arrive in one step and contest their buses
        times = np.round(times / 0.005) * 0.005
    times[::7, 2] = np.nan  # some channels silent
    return times


def _congested(monkeypatch, backend: MockChip, deployment) -> None:
    """One event per bus and step, every input route on a bus that can drop (bus contests on every step)."""
    monkeypatch.setattr(chip_module, "bus_capacity", lambda dt_s, spec: 1)
    state = backend._state(deployment)
    backend._configured = (deployment, state, backend._plan._replace(input_may_drop=True))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("chip,effects,congested", [("ideal", "", False), ("2", "", False),
                                                    ("1", "noise=off,jitter=off", True)])
@pytest.mark.parametrize("record", [Recording(), Recording(spikes=False), Recording(membrane=False),
                                    Recording(membrane_neurons=np.array([2, 17, 20]))])
def test_cuda_runs_are_the_cpu_runs_bit_for_bit(monkeypatch, deployment_file, chip, effects, congested, record):
    """fast-cuda against fast on the same chip, seed and samples: spikes, membranes (CADC on the numbered chips),
    counters and jittered spike events identical. With noise too: both draw from the same counter-based
    generator, and the GPU build has no FMA (--fmad=false), as the CPU build (-ffp-contract=off)."""
    _cuda_or_skip()
    dep = load_deployment(deployment_file)
    results = []
    for path in ("fast", "fast-cuda"):
        monkeypatch.setenv("NEURODEPLOY_MOCK", path)
        backend = MockChip(chip, MockEffects.parse(effects), seed=7)
        if congested:
            _congested(monkeypatch, backend, dep)
        # Two batches: the second continues the sample count (sample0 > 0), and 33 is not a multiple of the
        # CPU's block of 16 rows.
        results.append([backend.run(dep, _times(batch, seed, congested), record)
                        for batch, seed in ((64, 0), (33, 1))])
    assert fast.emulator_status()["path"] == "fast-cuda"
    for cpu, gpu in zip(*results):
        assert gpu.spikes.device.type == "cpu" and gpu.membrane.device.type == "cpu"
        assert torch.equal(cpu.spikes, gpu.spikes) and torch.equal(cpu.membrane, gpu.membrane)
        assert np.array_equal(cpu.recorded, gpu.recorded) and cpu.counters == gpu.counters
        if record.spikes:
            assert cpu.spikes.sum() > 0 and np.array_equal(cpu.spike_events, gpu.spike_events)
        else:
            assert cpu.spike_events is None and gpu.spike_events is None
    if congested:
        assert sum(r.counters["events_dropped"] for r in results[0]) > 0  # the contests did happen
