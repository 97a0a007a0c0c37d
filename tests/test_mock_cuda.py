"""The mock chip's CUDA launcher (csrc/mock_cuda.cu) compiles with nvcc alone, no PyTorch headers.

No machine of this project has a GPU: the launcher is compiled, never run (csrc/README.md). The tests skip
only when no CUDA toolkit is found, as tests/test_fused_kernel.py's CUDA tests do.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

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
