r"""The seed's delay experiments (001_f48c37937a5de656.txt), on the functional core.

A layer of LIF neurons (τ_mem = 10 ms, τ_syn = 5 ms, Δt = 1 ms, threshold 1) receives input spikes
through delayed synapses (:mod:`neurodeploy.core.delays`) plus the usual one step of routing latency.

* (a) :func:`coincidence`: 3 inputs → 2 outputs, delays 10, 100, 300 to output 1 and 120, 50, 10 to
  output 2. The inputs are timed so that output 2's delays bring them together: it fires; output 1's
  spread them out: it stays silent, even with its last weight doubled.
* (b) :func:`learn_spike_times`: delays start at 2 and are learned until the outputs' first spikes
  reach the targets 38 and 55.
* (c) :func:`learn_long_delay`: one synapse, input at step 100, target spike at step 900: the delay
  travels across most of a 1000-tap kernel.

Weights are given in units of the peak membrane rise one input event causes (:func:`unit_peak`),
so "0.41" means one event lifts the membrane to 41 % of the threshold. Training minimises
:math:`\sum_o (t^*_o - t^{target}_o)^2` with the differentiable spike time
:func:`~neurodeploy.core.delays.first_spike_time` of the free membrane; a neuron that does not fire
yet is pushed by :math:`\vartheta - \max_t v_o(t)` instead.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, NamedTuple
from collections.abc import Sequence

import torch

from .core.delays import delayed_input, first_spike_time, harden, sigma_at
from .core.lif import LIFParameters, li_sequence, lif_sequence
from .models.network import delay_one_step

if TYPE_CHECKING:
    from .modelfile import ModelFile

DT_S = 1e-3
NEURON = LIFParameters(tau_mem_s=10e-3, tau_syn_s=5e-3, v_leak=0.0, v_th=1.0, v_reset=0.0, t_ref_s=2e-3)


def input_spikes(times_steps: Sequence[int], steps: int) -> torch.Tensor:
    """One spike per input channel at the given steps → ``[T, 1, channels]``."""
    spikes = torch.zeros(steps, 1, len(times_steps), dtype=torch.float64)
    for channel, t in enumerate(times_steps):
        spikes[int(t), 0, channel] = 1.0
    return spikes


def impulse_response(steps: int, p: LIFParameters = NEURON) -> torch.Tensor:
    """The free membrane ``[T]`` after a unit input at step 0 (synapse, then membrane; no threshold)."""
    return _impulse_response(steps, p).clone()


@functools.lru_cache(maxsize=8)
def _impulse_response(steps: int, p: LIFParameters) -> torch.Tensor:
    # Cached: training calls it every iteration, and it is a T-step loop.
    x = torch.zeros(steps, 1, 1, dtype=torch.float64)
    x[0] = 1.0
    return li_sequence(x, p, DT_S)[:, 0, 0]


def unit_peak(p: LIFParameters = NEURON) -> float:
    """Peak membrane rise of one input event of weight 1."""
    return float(impulse_response(200, p).max())


def free_membrane(x: torch.Tensor, p: LIFParameters = NEURON) -> torch.Tensor:
    """Membrane without threshold for input ``x`` ``[T, B, N]``: the dynamics are linear, so it is
    ``x`` convolved with :func:`impulse_response` (one conv1d instead of a T-step loop)."""
    steps, batch, n = x.shape
    h = impulse_response(steps, p).to(x.dtype)
    signal = torch.nn.functional.pad(x.permute(1, 2, 0).reshape(batch * n, 1, steps), (steps - 1, 0))
    out = torch.nn.functional.conv1d(signal, h.flip(0).view(1, 1, -1))
    return out.view(batch, n, steps).permute(2, 0, 1) + p.v_leak


def synaptic_input(spikes: torch.Tensor, weight: torch.Tensor, delay_steps: torch.Tensor, sigma_steps: float,
                   max_delay_steps: int) -> torch.Tensor:
    """Input current of the layer: routing latency (one step), then the delayed synapses."""
    return delayed_input(delay_one_step(spikes), weight, delay_steps, sigma_steps, max_delay_steps)


def first_spike_steps(x: torch.Tensor, p: LIFParameters = NEURON) -> list[int | None]:
    """Each output's first spike step in a real LIF run (None: silent)."""
    spikes, _ = lif_sequence(x, p, DT_S)
    out = []
    for n in range(spikes.shape[-1]):
        fired = torch.nonzero(spikes[:, 0, n])
        out.append(int(fired[0]) if len(fired) else None)
    return out


class CoincidenceResult(NamedTuple):
    spike_counts: list[int]  # per output
    peak_over_threshold: list[float]  # free-membrane peak / threshold, per output
    peak_over_threshold_doubled: float  # output 1 with its input-3 weight doubled
    spike_count_doubled: int


DELAYS_A = [[10.0, 100.0, 300.0], [120.0, 50.0, 10.0]]
INPUTS_A = [0, 70, 110]  # + output 2's delays = 120 for all three: they coincide there


def coincidence(weight_per_event: float = 0.41, sigma_steps: float = 0.23) -> CoincidenceResult:
    """Experiment (a); ``weight_per_event``: one event's peak as a fraction of the threshold."""
    max_delay, steps = 300, 450
    spikes = input_spikes(INPUTS_A, steps)
    delays = torch.tensor(DELAYS_A, dtype=torch.float64)
    weight = torch.full((2, 3), weight_per_event / unit_peak(), dtype=torch.float64)

    def run(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = synaptic_input(spikes, w, delays, sigma_steps, max_delay)
        spikes_out, _ = lif_sequence(x, NEURON, DT_S)
        return spikes_out[:, 0].sum(0), free_membrane(x)[:, 0].amax(0) / NEURON.v_th

    counts, peaks = run(weight)
    doubled = weight.clone()
    doubled[0, 2] *= 2
    counts_doubled, peaks_doubled = run(doubled)
    return CoincidenceResult([int(c) for c in counts], [float(v) for v in peaks], float(peaks_doubled[0]),
                             int(counts_doubled[0]))


class LearningResult(NamedTuple):
    initial_spike_steps: list  # LIF first spike per output before learning
    spike_steps: list  # after learning, with the hardened (integer) delays
    soft_spike_times: list  # differentiable spike times with the final σ
    delays: list  # learned delays (steps), per output and input
    loss_history: list


def _spike_time_loss(v_free: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    t = first_spike_time(v_free, NEURON.v_th)
    fired = t < v_free.shape[0]
    timing = torch.where(fired, (t - targets) ** 2, torch.zeros_like(t))
    silent = torch.where(fired, torch.zeros_like(t), NEURON.v_th - v_free.amax(0))
    return timing.sum() + 100.0 * silent.sum()


def learn_delays(input_steps: Sequence[int], targets: Sequence[float], initial_delays: torch.Tensor,
                 weight_per_event: float, max_delay_steps: int, steps: int, iterations: int,
                 learning_rate: float, sigma_start_steps: float, decay_fraction: float = 0.25) -> LearningResult:
    """Learn only the delays (weights fixed) so that each output's first spike reaches its target step.

    σ falls linearly from ``sigma_start_steps`` to 0.23 over ``decay_fraction`` of the iterations; Adam
    with a cosine-annealed learning rate (steps per update).
    """
    spikes = input_spikes(input_steps, steps)
    weight = torch.full(initial_delays.shape, weight_per_event / unit_peak(), dtype=torch.float64)
    delays = torch.nn.Parameter(initial_delays.clone().to(torch.float64))
    target = torch.as_tensor(targets, dtype=torch.float64)
    optimiser = torch.optim.Adam([delays], lr=learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, iterations, eta_min=learning_rate * 0.02)

    def x_for(d: torch.Tensor, sigma: float) -> torch.Tensor:
        return synaptic_input(spikes, weight, d, sigma, max_delay_steps)

    initial = first_spike_steps(x_for(harden(delays, max_delay_steps), 0.0))
    history = []
    sigma = sigma_start_steps
    for i in range(iterations):
        sigma = sigma_at(i / iterations, max_delay_steps, decay_fraction=decay_fraction,
                         sigma_start_steps=sigma_start_steps)
        loss = _spike_time_loss(free_membrane(x_for(delays, sigma))[:, 0], target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        with torch.no_grad():
            delays.clamp_(0, max_delay_steps)
        history.append(float(loss.detach()))
    with torch.no_grad():
        soft = first_spike_time(free_membrane(x_for(delays, sigma))[:, 0], NEURON.v_th)
        final = first_spike_steps(x_for(harden(delays, max_delay_steps), 0.0))
    return LearningResult(initial, final, [float(t) for t in soft], delays.detach().tolist(), history)


INPUTS_B = [0, 5, 10]
TARGETS_B = [38.0, 55.0]


def learn_spike_times(iterations: int = 300) -> LearningResult:
    """Experiment (b): delays start at 2; targets 38 and 55 for outputs 1 and 2."""
    return learn_delays(INPUTS_B, TARGETS_B, torch.full((2, 3), 2.0), weight_per_event=1.2, max_delay_steps=60,
                        steps=100, iterations=iterations, learning_rate=1.0, sigma_start_steps=sigma_at(0.0, 60))


def learn_long_delay(iterations: int = 200) -> LearningResult:
    """Experiment (c): one synapse, input at step 100, target spike at step 900, a 1000-tap kernel."""
    return learn_delays([100], [900.0], torch.zeros(1, 1), weight_per_event=1.5, max_delay_steps=1000,
                        steps=1000, iterations=iterations, learning_rate=20.0, sigma_start_steps=10.0)


def experiment_model(result: LearningResult, input_steps: Sequence[int], weight_per_event: float,
                     max_delay_steps: int, steps: int) -> ModelFile:
    """The learned layer of (b) as a model file (3 inputs → 2 LIF outputs, delays with σ = 0.23), for `map`."""
    from .graph import Graph, NeuronParameters, Population, Projection
    from .modelfile import ModelFile

    n_out, n_in = len(result.delays), len(result.delays[0])
    neuron = NeuronParameters(**NEURON._asdict())
    graph = Graph((Population("input", n_in, "input"), Population("output", n_out, "lif", neuron)),
                  (Projection("input", "output", max_delay_steps=max_delay_steps),))
    weight = torch.full((n_out, n_in), weight_per_event / unit_peak())
    encoding = {"kind": "time_to_spike", "t_early_s": 0.0, "t_late_s": steps * DT_S, "duration_s": steps * DT_S}
    return ModelFile(graph=graph, weights={"input->output": weight}, dt_s=DT_S, encoding=encoding,
                     dataset="temporal_patterns", seed=0, delays={"input->output": torch.tensor(result.delays)},
                     delay_sigma_steps={"input->output": 0.23})


def spike_times_on_chip(result: LearningResult, strategy: str, backend: str = "mock:ideal",
                        calibration: str | None = None) -> dict:
    """Experiment (b)'s learned delays mapped with ``strategy`` (and ``calibration``, for a non-ideal chip), run on
    ``backend`` and in software.

    Returns first spike steps per output (software: the model as trained, σ = 0.23; the chip: its
    configuration), the outputs' membranes on the chip (``[T, outputs]``, model units above rest: the
    deployment's CADC per model unit undone) and the mapping report's delay cost.
    """
    import numpy as np

    from .backends.registry import get_backend
    from .targets.base import MapOptions
    from .targets.registry import get_target

    model = experiment_model(result, INPUTS_B, 1.2, 60, 100)
    deployment, report, violations = get_target("bss2").map(model, MapOptions(delays=strategy,
                                                                              calibration=calibration))
    if violations or deployment is None:
        raise RuntimeError("; ".join(v.one_line() for v in violations))
    times = np.array([INPUTS_B], np.float64) * DT_S
    first = lambda spikes: [int(torch.nonzero(spikes[:, 0, n])[0]) if spikes[:, 0, n].any() else None  # noqa: E731
                            for n in range(spikes.shape[-1])]
    chip = get_backend(backend).run(deployment, times)
    software = get_backend("software").run(deployment, times)
    per_unit = report["layers"][0]["cadc_per_model_unit"]
    membrane = (chip.membrane[:, 0] - chip.baseline) / per_unit if chip.membrane.shape[-1] else None
    return {"chip": first(chip.spikes), "software": first(software.spikes), "cost": report["delays"][strategy],
            "membrane": None if membrane is None else membrane.tolist(), "time_step_s": DT_S}


def fits_on_chip(delays: Sequence[Sequence[float]], max_delay_steps: int, steps: int, strategy: str) -> list[str]:
    """The design-rule violations of a delayed layer (``delays`` per output and input) on BSS-2, as one-line texts;
    [] when it maps. Experiments (a) and (c) need longer delays than the FPGA's delay counter holds."""
    from .targets.base import MapOptions
    from .targets.registry import get_target

    fake = LearningResult([], [], [], [list(row) for row in delays], [])
    model = experiment_model(fake, [0] * len(delays[0]), 1.0, max_delay_steps, steps)
    return [v.one_line() for v in get_target("bss2").check(model, MapOptions(delays=strategy)).violations]
