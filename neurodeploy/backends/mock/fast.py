r"""The mock chip's fast path: one C++ loop over time per run (``csrc/mock_cpu.cpp``), the twin being
:class:`~.chip.MockChip`'s PyTorch path.

What a run on the fast path does is the twin's, in the same order (:mod:`.chip`): FPGA events on the
8 ns clock, binned to the hardware step, one step of routing latency; each bus carries at most
``capacity`` events per step (the rest dropped, lowest priority first, counted); the membrane noise
:math:`\sigma_x\,n` added to each step's synaptic input; the fused kernel's neuron update with each
neuron's own parameters (``csrc/lif_core.h``); on-chip events one step after the spike; CADC samples
every ``period`` with read noise, rounded, clipped to 8 bit and interpolated onto the step grid;
spike times on the clock grid with Gaussian jitter. On the ideal chip the spikes and membranes are
the twin's bit for bit (``tests/test_mock_fast.py``).

What differs is where the random numbers come from. The twin draws from one ``torch.Generator``
per chip in the order of the work, so its noise depends on how samples are batched. Here every draw
is a pure function of (chip key, stream, sample, step, neuron) (``csrc/mock_core.h``: a keyed
counter hash, one inverse-CDF look-up per normal): sample ``s`` of a backend sees the same noise
whether it runs in a batch of 1 or of 5000, on one thread or many. A backend counts the samples it
has run; the next run continues the count, so repeated runs differ as on a chip (trial to trial)
and a fresh backend with the same seed repeats them. Noise statistics match the twin's in
distribution (mean, variance, autocorrelation: tests).

The fast path covers runs that record spikes and/or CADC membranes, with or without noise, CADC
and bus limits, on the ideal chip and on chip numbers (dead circuits and stuck cells are part of the
configuration). The MADC, the correlation sensors and the drop/delay faults run on the twin.

``NEURODEPLOY_MOCK`` chooses the path:

- ``auto`` (default): the fast path on the CPU when the extension builds, else the twin. Never the GPU,
  even where there is one, so that a machine's results do not change with its hardware;
- ``fast``: the fast path on the CPU; a build failure is an error;
- ``fast-cuda``: the fast path's runs on the current CUDA device (``csrc/mock_cuda.cu``), opt-in. Its
  extension is a second build, with the CUDA launcher (``neurodeploy_mock_…_cuda``); it needs a CUDA
  device, a CUDA build of torch and the CUDA toolkit (``CUDA_HOME``), else every run fails with a
  :class:`~neurodeploy.errors.BackendError` saying which is missing. The draws are the CPU's (the same
  counter-based generator), so the results are meant to equal ``fast``'s bit for bit; the test of that
  (``tests/test_mock_cuda.py``) runs only where there is a GPU, and no machine of this project has one:
  this path has been compiled, never run.
  The MADC runs (:func:`fast_madc_alone`), the event binning and :func:`normals` stay on the CPU;
- ``twin``: the PyTorch twin.
"""

from __future__ import annotations

import functools
import math
import os
from typing import Any, NamedTuple, Optional, TypeVar

import numpy as np
import torch

from ...core.fused import _CFLAGS, _isa_flags, _source_digest
from ...core.lif import lif_coefficients
from ...errors import BackendError
from ...shipped import shipped_dir

_MODES = ("auto", "fast", "fast-cuda", "twin")
_SOURCES = ("mock_cpu.cpp", "output_pool.cpp")
_CUDA_SOURCE = "mock_cuda.cu"
# --fmad=false: no fused multiply-add in lif_core.h's update, which nvcc would otherwise form, so that the
# GPU's spikes and membranes are the CPU build's (-ffp-contract=off) bit for bit (csrc/mock_cuda.cu).
_CUDA_CFLAGS = ["-O3", "--fmad=false", "-DNEURODEPLOY_WITH_CUDA"]
_CUDA_FIX = ("run it on a machine with an NVIDIA GPU, a CUDA build of torch and the CUDA toolkit (CUDA_HOME), "
             "or set NEURODEPLOY_MOCK=auto (the CPU emulator)")
# Two builds, each tried once per process: the CPU one (auto, fast) and, only for fast-cuda, the one with the
# CUDA launcher, so that asking for the GPU never changes what auto and fast build or run.
_build: dict[str, Any] = {"attempted": False, "ops": None, "error": None}
_cuda_build: dict[str, Any] = {"attempted": False, "ops": None, "error": None}


def emulator_mode() -> str:
    """``$NEURODEPLOY_MOCK``: ``auto``, ``fast``, ``fast-cuda`` or ``twin``."""
    mode = (os.environ.get("NEURODEPLOY_MOCK") or "auto").strip().lower()
    if mode not in _MODES:
        raise BackendError(f"NEURODEPLOY_MOCK={mode!r} is not a mock path", f"use one of {', '.join(_MODES)}")
    return mode


def _compile(cuda: bool = False) -> Any:
    from torch.utils import cpp_extension

    src = shipped_dir("csrc")
    isa = _isa_flags()
    # The name keys the build cache, as the fused kernel's does (core/fused.py); the CUDA build is another
    # module (its own name), so both can be loaded in one process.
    name = "neurodeploy_mock" + ("_avx2" if isa else "") + "_" + _source_digest(src)
    sources, cflags = [str(src / s) for s in _SOURCES], _CFLAGS + isa
    cuda_args: dict[str, Any] = {}
    if cuda:
        name += "_cuda"
        sources.append(str(src / _CUDA_SOURCE))
        cflags = cflags + ["-DNEURODEPLOY_WITH_CUDA"]
        cuda_args = {"extra_cuda_cflags": _CUDA_CFLAGS, "with_cuda": True}
    return cpp_extension.load(name=name, sources=sources, extra_cflags=cflags, extra_ldflags=["-fopenmp"],
                              extra_include_paths=[str(src)], verbose=False, **cuda_args)


def _cuda_missing() -> Optional[str]:
    """What the CUDA emulator lacks on this machine (one phrase), or ``None``."""
    from torch.utils import cpp_extension

    if torch.version.cuda is None:
        return f"this torch ({torch.__version__}) is built without CUDA"
    if not torch.cuda.is_available():
        return "torch finds no CUDA device"
    if cpp_extension.CUDA_HOME is None:
        return "no CUDA toolkit (nvcc, CUDA_HOME) to build the emulator's CUDA launcher"
    return None


def _cuda_ops() -> Any:
    """The extension with the CUDA launcher (``NEURODEPLOY_MOCK=fast-cuda``); raises when it cannot run here."""
    missing = _cuda_missing()
    if missing is not None:
        raise BackendError(f"NEURODEPLOY_MOCK=fast-cuda, but {missing}", _CUDA_FIX)
    if not _cuda_build["attempted"]:
        _cuda_build["attempted"] = True
        try:
            _cuda_build["ops"] = _compile(cuda=True)
        except Exception as exc:  # reported below: fast-cuda was asked for, so no fallback
            _cuda_build["error"] = f"{type(exc).__name__}: {exc}".strip()[:2000]
    if _cuda_build["ops"] is None:
        raise BackendError("NEURODEPLOY_MOCK=fast-cuda, but the CUDA emulator failed to build: "
                           + " ".join(str(_cuda_build["error"]).split()),
                           "see `neurodeploy doctor` (nvcc must suit torch's CUDA, torch.version.cuda), "
                           "or set NEURODEPLOY_MOCK=auto (the CPU emulator)")
    return _cuda_build["ops"]


def emulator_ops() -> Any:
    """The built extension, or ``None`` when the twin runs (forced, or the build failed)."""
    mode = emulator_mode()
    if mode == "twin":
        return None
    if mode == "fast-cuda":
        return _cuda_ops()
    if not _build["attempted"]:
        _build["attempted"] = True
        try:
            _build["ops"] = _compile()
        except Exception as exc:  # any build or load failure means: use the twin
            _build["error"] = f"{type(exc).__name__}: {exc}".strip()[:2000]
    if _build["ops"] is None and mode == "fast":
        raise BackendError(f"NEURODEPLOY_MOCK=fast, but the fast emulator failed to build: {_build['error']}",
                           "see `neurodeploy doctor`, or set NEURODEPLOY_MOCK=auto (falls back to the twin)")
    return _build["ops"]


def emulator_status() -> dict[str, Any]:
    """Which mock path runs and why (``path``: ``"fast-cpu"``, ``"fast-cuda"``, ``"twin"``, or ``"error"`` when
    ``fast-cuda`` cannot run here: then every run raises); builds the extension if needed."""
    mode = emulator_mode()
    if mode == "twin":
        return {"mode": mode, "path": "twin", "reason": "forced by NEURODEPLOY_MOCK=twin", "build_error": None}
    if mode == "fast-cuda":
        try:
            _cuda_ops()
        except BackendError as exc:
            return {"mode": mode, "path": "error", "reason": exc.one_line(), "build_error": _cuda_build["error"]}
        return {"mode": mode, "path": "fast-cuda", "build_error": None,
                "reason": f"extension built with the CUDA launcher; runs on {torch.cuda.get_device_name()}"}
    ops = emulator_ops()
    return {"mode": mode, "path": "fast-cpu" if ops is not None else "twin", "build_error": _build["error"],
            "reason": "extension built" if ops is not None else "extension failed to build; using the twin"}


@functools.lru_cache(maxsize=1)
def normal_table() -> torch.Tensor:
    r"""The 8192 look-up values :math:`Q_i = \Phi^{-1}((i + 1/2)/8192) / \sqrt{m_2}` (``csrc/mock_core.h``):
    a normal is :math:`Q_j`, :math:`j` the top 13 bits of a 16-bit half of a draw (two normals per draw), with
    variance exactly 1."""
    size = 1 << 13
    quantiles = torch.special.ndtri((torch.arange(size, dtype=torch.float64) + 0.5) / size)
    return (quantiles / math.sqrt(float((quantiles ** 2).mean()))).float()


def chip_key(chip: Optional[int], seed: int) -> int:
    """The generator key of a mock chip (``None``: the ideal one) and a backend seed, as a signed 64-bit int."""
    key = ((seed & 0xFFFFFFFF) << 32) | (0xFFFFFFFF if chip is None else chip)
    return key - (1 << 64) if key >= 1 << 63 else key


def normals(key: int, stream: int, sample: torch.Tensor, step: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Standard normals of the counter-based generator at ``(sample, step, index)`` of ``stream`` (float32)."""
    ops = emulator_ops()
    if ops is None:
        raise BackendError("the counter-based generator needs the fast emulator", "set NEURODEPLOY_MOCK=auto")
    as_long = lambda t: t.to(torch.int64).contiguous()  # noqa: E731
    return ops.normals(key, stream, as_long(sample), as_long(step), as_long(index), normal_table())


class EventLists(NamedTuple):
    """Input events per run, sorted by arrival step then channel: run ``b``'s are ``[offsets[b], offsets[b+1])``."""

    offsets: torch.Tensor  # [B + 1] int64
    step: torch.Tensor  # [E] int32, the arrival step (binned step + one step of routing latency)
    channel: torch.Tensor  # [E] int32
    binned: int  # events that landed on the step grid (arrived or not): the twin's events_in


def event_lists(times_s: np.ndarray, speedup: float, clock_s: float, dt_s: float, steps: int) -> EventLists:
    """Input spike times ``[B, channels]`` or trains ``[B, channels, K]`` (model s, NaN: none) → per-run lists of
    arrivals on the step grid (``csrc/mock_cpu.cpp``'s ``bin_events``; its twin: :func:`event_lists_numpy`)."""
    offsets, step, channel, binned = emulator_ops().bin_events(
        torch.from_numpy(np.ascontiguousarray(times_s, dtype=np.float64)), speedup, clock_s, dt_s, steps)
    return EventLists(offsets, step, channel, int(binned))


def event_lists_numpy(times_s: np.ndarray, speedup: float, clock_s: float, dt_s: float, steps: int) -> EventLists:
    """:func:`event_lists` in numpy, written to be read: the events binned as the twin bins them
    (:func:`~.chip.clock_events`), one step of routing latency (what arrives after the run's end is lost),
    sorted per run by arrival, then channel."""
    from .chip import clock_events

    step, batch, channel = clock_events(times_s, speedup, clock_s, dt_s, steps)
    runs = len(times_s)
    arrival = step + 1
    keep = arrival < steps
    arrival, batch, channel = arrival[keep], batch[keep], channel[keep]
    order = np.lexsort((channel, arrival, batch))
    offsets = np.zeros(runs + 1, np.int64)
    np.cumsum(np.bincount(batch, minlength=runs), out=offsets[1:])
    return EventLists(torch.from_numpy(offsets), torch.from_numpy(arrival[order].astype(np.int32)),
                      torch.from_numpy(channel[order].astype(np.int32)), len(step))


class SourceRows(NamedTuple):
    """A route set as the C++ loop reads it (``csrc/mock_core.h``, ``Sources``)."""

    matrix: torch.Tensor  # [rows, N] float32
    first: torch.Tensor  # [sources + 1] int64
    bus: torch.Tensor  # [rows] int32 compact bus ids, or empty: no bus can overflow


def source_rows(routes: Any, n_sources: int, may_drop: bool) -> SourceRows:
    """Per-source rows when no bus can overflow (the sum of a source's routes: the twin's product), else one
    row per route, grouped by source, with its bus."""
    if not may_drop:
        return SourceRows(routes.per_source.contiguous(), torch.arange(n_sources + 1, dtype=torch.int64),
                          torch.zeros(0, dtype=torch.int32))
    order = np.argsort(routes.source, kind="stable")
    _, bus = np.unique(routes.bus, return_inverse=True)
    first = np.zeros(n_sources + 1, np.int64)
    np.cumsum(np.bincount(routes.source, minlength=n_sources), out=first[1:])
    return SourceRows(routes.per_route[torch.as_tensor(order)].contiguous(), torch.from_numpy(first),
                      torch.from_numpy(bus[order].astype(np.int32)))


class FastSetup(NamedTuple):
    """Everything of a configured chip the C++ loop reads, built once per deployment."""

    inputs: SourceRows
    neurons: SourceRows
    coefficients: tuple[torch.Tensor, ...]  # alpha, beta, v_leak, v_th, v_reset, n_ref
    noise_sigma: torch.Tensor  # [N] or empty
    routes_per_neuron: torch.Tensor  # [N] int32
    # Copies of these tensors on other devices (fast-cuda), keyed by str(device): made on first use and kept
    # as long as the setup, i.e. copied once per deployment and device, not once per batch.
    on_device: dict[str, FastSetup]


def fast_setup(state: Any, plan: Any) -> FastSetup:
    """The C++ loop's view of a configured chip ``state`` (:class:`~.chip.ChipState`) and its run plan."""
    n = len(state.baseline)
    c = lif_coefficients(state.params, state.dt_s, n)
    coefficients = tuple((t.expand(n) if t.numel() == 1 else t).contiguous() for t in c)
    sigma = plan.noise_std.float().contiguous() if plan.noise_std is not None else torch.zeros(0)
    return FastSetup(source_rows(state.input_routes, int(state.input_routes.per_source.shape[0]), plan.input_may_drop),
                     source_rows(state.neuron_routes, n, plan.neuron_may_drop), coefficients, sigma,
                     plan.routes_per_neuron.to(torch.int32).contiguous(), {})


_T = TypeVar("_T", bound=tuple)


def _moved(values: _T, device: torch.device) -> _T:
    """``values`` with every tensor in it (nested tuples and named tuples too) on ``device``; other values,
    dictionaries included, as they are."""
    def move(v: Any) -> Any:
        if isinstance(v, torch.Tensor):
            return v.to(device)
        if isinstance(v, tuple):
            moved = [move(item) for item in v]
            return type(v)(*moved) if hasattr(v, "_fields") else tuple(moved)
        return v
    return move(values)


def _setup_on(setup: FastSetup, device: torch.device) -> FastSetup:
    """``setup``'s tensors on ``device``, copied once per setup and device."""
    key = str(device)
    if key not in setup.on_device:
        setup.on_device[key] = _moved(setup._replace(on_device={}), device)
    return setup.on_device[key]


@functools.cache
def _table_on(device: str) -> torch.Tensor:
    """The normal table on ``device`` (32 KB, copied once)."""
    return normal_table().to(device)


def _run_device() -> Optional[torch.device]:
    """The CUDA device the runs go to (``NEURODEPLOY_MOCK=fast-cuda``: torch's current one), else ``None``."""
    return torch.device("cuda", torch.cuda.current_device()) if emulator_mode() == "fast-cuda" else None


class Readout(NamedTuple):
    """The CADC as the fast path applies it; ``every`` 0: the membrane itself (CADC off)."""

    every: int
    read_noise: float
    reliable: tuple[float, float]


class Clock(NamedTuple):
    """The hardware step, the FPGA clock the spike times are read on, and their jitter (std), in seconds."""

    dt_s: float
    clock_s: float
    jitter_s: float


class FastRun(NamedTuple):
    spikes: torch.Tensor  # [T, B, N] or [T, B, 0]
    membrane: torch.Tensor  # [T, B, N] or [T, B, 0]
    counters: dict
    spike_events: np.ndarray  # [n, 3] (time_s, batch, neuron) as readout.spike_events gives them; [0, 3] without spikes


def fast_run(setup: FastSetup, events: EventLists, steps: int, capacity: int, readout: Readout, clock: Clock,
             key: int, sample0: int, spikes: bool, recorded: np.ndarray) -> FastRun:
    r"""One batch of runs (``len(events.offsets) - 1`` samples, the first being sample ``sample0``), reading the
    membranes of the neurons ``recorded`` (empty: none).

    Spike times on the clock grid: :math:`\max(0, \mathrm{round}((t\,\Delta t + \sigma_j n)/c))\,c`, ``n`` the
    counter-based normal of (sample, step, neuron), in ``torch.nonzero``'s order of the spikes.

    With ``NEURODEPLOY_MOCK=fast-cuda`` the run goes to the current CUDA device: the setup (copied once per
    device), the event lists, the normal table, the CADC grid and ``recorded`` are moved there, and the outputs
    come back to the CPU, so the caller sees the CPU run's result."""
    ops = emulator_ops()
    grid_args: tuple[Any, ...]
    if readout.every:
        from .readout import cadc_grid
        grid = cadc_grid(steps, readout.every)
        grid_args = (grid.lower.to(torch.int32), grid.upper.to(torch.int32), grid.low_weight, grid.frac,
                     grid.first, readout.every)
    else:
        empty = torch.zeros(0)
        grid_args = (torch.zeros(0, dtype=torch.int32), torch.zeros(0, dtype=torch.int32), empty, empty, 0, 1)
    table, recorded_t = normal_table(), torch.as_tensor(recorded, dtype=torch.int32).contiguous()
    device = _run_device()
    if device is not None:
        setup, events, grid_args, recorded_t = (_setup_on(setup, device), _moved(events, device),
                                                _moved(grid_args, device), recorded_t.to(device))
        table = _table_on(str(device))
    z, v, counts, rows = ops.run(events.offsets, events.step, events.channel, *setup.inputs, *setup.neurons,
                                 capacity, *setup.coefficients, setup.noise_sigma, table, *grid_args,
                                 readout.read_noise, *readout.reliable, setup.routes_per_neuron, steps, key, sample0,
                                 spikes, recorded_t, *clock)
    if device is not None:  # the spike events (rows) are made on the host already
        z, v, counts = z.cpu(), v.cpu(), counts.cpu()
    input_dropped, neuron_dropped, outside, internal = (int(c) for c in counts)
    counters = {"events_dropped": input_dropped + neuron_dropped, "events_internal": internal}
    if readout.every and len(recorded):
        counters["cadc_outside_reliable_range"] = outside
    return FastRun(z, v, counters, rows.numpy())


class Madc(NamedTuple):
    """The MADC as a run reads it: which line, its line :math:`m = a u + b`, and whether it quantises to 10 bit."""

    source: str  # "membrane" or "synaptic_input"
    gain: float
    offset: float
    quantise: bool


def fast_madc_alone(setup: FastSetup, events: EventLists, steps: int, neuron: torch.Tensor, madc: Madc, key: int,
                    sample0: int) -> torch.Tensor:
    """MADC traces ``[T, B]`` of independent neurons, run ``b`` recording neuron ``neuron[b]`` simulated alone
    (the twin's ``_madc_alone``); its noise is the draw the neuron gets in a whole-chip run of that sample.

    Always on the CPU, ``NEURODEPLOY_MOCK=fast-cuda`` too: the CUDA launcher covers whole-chip runs only
    (a calibration's MADC runs are one neuron each, little work per run)."""
    if setup.inputs.bus.numel():
        raise BackendError("the fast MADC path needs inputs that no bus can drop", "run it on the twin")
    source = {"membrane": 0, "synaptic_input": 1}[madc.source]
    return emulator_ops().madc_alone(neuron.to(torch.int64).contiguous(), events.offsets, events.step, events.channel,
                                     setup.inputs.matrix, *setup.coefficients, setup.noise_sigma, normal_table(), steps,
                                     key, sample0, source, madc.gain, madc.offset, madc.quantise)
