"""The BSS-2 emulator behind ``--backend mock:ideal`` and ``--backend mock:CHIP``.

It consumes exactly the configuration a chip gets (integer weights, labels, row modes, routes,
analog settings) and nothing else: connectivity is re-derived from the synapse arrays
(:mod:`.connectivity`), never read from the model. Time runs 1000× faster (hardware seconds);
input events are placed on the 8 ns FPGA clock grid and binned to the hardware step; every
projection adds one step of routing latency; potentials are CADC LSB.

- ``mock:ideal`` realises the deployment's *requested* physical settings (``circuit_*``) exactly,
  samples every membrane every step and drops nothing: the quantised network, spike for spike.
- ``mock:CHIP`` (an integer) realises the deployment's CapMem *codes* (``code:*``) through chip
  ``CHIP``'s own transfer curves (:mod:`.variation`), adds membrane noise, reads out through an
  8-bit CADC every ~2 µs, a 10-bit MADC and jittered spike times, and drops events a bus cannot
  carry. ``mock:CHIP:noise=off,cadc=off`` switches effects off.
- ``mock:CHIP:faults=dead:0.02+drop:0.001`` adds faults: dead circuits, stuck CapMem cells, lost or
  late events, runs that disconnect (:mod:`.faults`, which gives the syntax and the counters).

The neuron dynamics are the fused LIF kernel with each neuron's own parameters.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple, Optional

import numpy as np
import torch

from ...core.dispatch import lif_sequence
from ...core.lif import LIFParameters
from ...data.encoding import grid_events, n_steps
from ...deployment import Deployment
from ...errors import BackendError
from ...graph import Graph
from ...models.network import delay_one_step
from ...targets.bss2.analog import ChipCodes
from ...targets.bss2.spec import BSS2Spec, load_bss2_spec
from ..base import Observations, Recording
from .connectivity import membership, route_currents, route_matrix, source_matrix
from .delay_lines import fpga_delayed_times, input_route_currents
from .events import bus_capacity, bus_of_routes, deliver
from .fast import (Clock, EventLists, FastSetup, Madc, Readout, chip_key, emulator_ops, event_lists, fast_madc_alone,
                   fast_run, fast_setup)
from .faults import (NO_STUCK_CELLS, ChipDisconnected, StuckCells, disconnects, draw_faults, event_fate,
                     faulty_transport, neurons_hit, route_pairs, run_generator)
from .correlation import SensorSettings, pairings, readings, sensor_gains
from .plan import RunPlan, Workspace, make_plan
from .readout import cadc_samples, input_noise_std, madc_codes, spike_events
from .variation import ChipVariation, MockEffects, draw_variation, realise


class Routes(NamedTuple):
    """One kind of event source (FPGA inputs or on-chip neurons) and where its events go."""

    source: np.ndarray  # [R] source id of each route
    bus: np.ndarray  # [R] global bus index
    per_route: torch.Tensor  # [R, neurons] current one event on the route causes
    per_source: torch.Tensor  # [sources, neurons] all routes of a source together


class ChipState(NamedTuple):
    """A configured chip: per-neuron physical parameters and effective connectivity."""

    params: LIFParameters  # per logical neuron, hardware seconds and CADC
    input_routes: Routes
    neuron_routes: Routes
    dt_s: float  # hardware step
    steps: int
    baseline: torch.Tensor  # [neurons] the rest potential the deployment asked for (what a user knows)

    @property
    def input_matrix(self) -> torch.Tensor:
        return self.input_routes.per_source

    @property
    def recurrent_matrix(self) -> torch.Tensor:
        return self.neuron_routes.per_source


class Chip(NamedTuple):
    """A non-ideal chip: its fixed pattern, switches and injected faults."""

    variation: ChipVariation
    effects: MockEffects
    spec: BSS2Spec
    dead: np.ndarray  # circuits that do not work (fault injection: tests, and the dead fault)
    stuck: StuckCells = NO_STUCK_CELLS  # CapMem cells that ignore what is written (the stuck fault)


def input_channels(meta: dict) -> int:
    return int(meta["input_channels"]) if "input_channels" in meta else int(meta["graph"]["populations"][0]["size"])


def run_steps(meta: dict) -> int:
    return int(meta["steps"]) if "steps" in meta else n_steps(meta["encoding"], meta["dt_s"])


def _routes(routes: np.ndarray, n_sources: int, weight: np.ndarray, a: dict, gain: np.ndarray,
            member: np.ndarray, spec: BSS2Spec, meta: Optional[dict] = None) -> Routes:
    # FPGA routes (meta given) may carry a delay strategy's strength bits in their labels.
    currents = (route_currents(routes, weight, a["synapse_label"], a["row_mode"]) if meta is None
                else input_route_currents(routes, weight, a, meta))
    per_route = route_matrix(currents, gain, member)
    tensor = lambda m: torch.as_tensor(m, dtype=torch.float32)  # noqa: E731
    return Routes(source=routes[:, 0].astype(np.int64), bus=bus_of_routes(routes, spec), per_route=tensor(per_route),
                  per_source=tensor(source_matrix(routes, n_sources, per_route)))


def configure(deployment: Deployment, chip: Optional[Chip] = None) -> ChipState:
    """Load a deployment into the emulated chip (``chip`` None: the ideal one)."""
    a, meta = deployment.arrays, deployment.meta
    spec = chip.spec if chip is not None else load_bss2_spec()
    neuron_circuits = a["neuron_circuits"]
    enabled = a["circuit_enabled"]
    member = membership(neuron_circuits, len(enabled))
    first = neuron_circuits[:, 0]  # a merged neuron's first circuit holds its leak and threshold (bss2.md §1.2)
    if chip is None:
        weight = a["synapse_weight"].astype(np.float64)
        gain = a["circuit_synaptic_gain_cadc_per_lsb"] * enabled
        physical = {name: a[f"circuit_{name}"] for name in ("tau_mem_s", "tau_syn_s", "t_ref_s")}
        physical.update(v_leak=a["circuit_v_leak_cadc"], v_th=a["circuit_v_th_cadc"], v_reset=a["circuit_v_reset_cadc"])
    else:
        phys = realise(ChipCodes.from_arrays(a), chip.variation, chip.spec, chip.dead, chip.stuck)
        weight = a["synapse_weight"] * (1.0 + chip.variation.synapse)
        gain = phys.gain_cadc_per_lsb * enabled
        physical = phys._asdict()
    value = lambda name: torch.as_tensor(np.asarray(physical[name])[first], dtype=torch.float32)  # noqa: E731
    params = LIFParameters(tau_mem_s=value("tau_mem_s"), tau_syn_s=value("tau_syn_s"), v_leak=value("v_leak"),
                           v_th=value("v_th"), v_reset=value("v_reset"), t_ref_s=value("t_ref_s"))
    sources = (input_channels(meta), len(neuron_circuits))
    inputs = _routes(a["input_routes"], sources[0], weight, a, gain, member, spec, meta)
    neurons = _routes(a["neuron_routes"], sources[1], weight, a, gain, member, spec)
    dt_hw = meta["dt_s"] / meta["speedup"]
    baseline = torch.as_tensor(a["circuit_v_leak_cadc"][first], dtype=torch.float32)
    return ChipState(params, inputs, neurons, dt_hw, run_steps(meta), baseline)


def clock_events(times_model_s: np.ndarray, speedup: float, clock_s: float, dt_hw_s: float,
                 steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model-time spike times ``[B, channels]`` or spike trains ``[B, channels, K]`` → FPGA clock cycles (8 ns) →
    ``(step, batch, channel)`` of each event (a channel's events on one step merge: ``grid_events``)."""
    cycles = np.round(np.asarray(times_model_s, np.float64) / speedup / clock_s)
    return grid_events(np.round(cycles * clock_s / dt_hw_s), steps)


def bin_on_clock(times_model_s: np.ndarray, speedup: float, clock_s: float, dt_hw_s: float, steps: int) -> torch.Tensor:
    """Input events as a dense ``[T, B, channels]`` tensor on the hardware step."""
    step, b, c = clock_events(times_model_s, speedup, clock_s, dt_hw_s, steps)
    spikes = torch.zeros(steps, *np.shape(times_model_s)[:2])
    spikes[torch.as_tensor(step), torch.as_tensor(b), torch.as_tensor(c)] = 1.0
    return spikes


MAX_CHIP = 2**32 - 1


def parse_chip(name: str) -> tuple[str, Optional[int], MockEffects]:
    """``mock:ideal`` / ``mock:3`` / ``mock:3:noise=off`` → (chip text, chip number or None, effects)."""
    _, _, rest = name.partition(":")
    chip, _, effects = (rest or "ideal").partition(":")
    number = None if chip == "ideal" else int(chip)
    if number is not None and not 0 <= number <= MAX_CHIP:  # it seeds the chip's fixed pattern (numpy: < 2^32)
        raise ValueError(f"chip number {number} is outside 0..{MAX_CHIP}")
    return chip, number, MockEffects.parse(effects)


class MockChip:
    """One emulated chip. ``chip``: ``"ideal"`` or an integer id that seeds its fixed pattern."""

    target: Optional[str] = "bss2"
    capabilities = frozenset({"madc"})

    def __init__(self, chip: str | int = "ideal", effects: Optional[MockEffects] = None, seed: int = 0,
                 dead_circuits: tuple[int, ...] = ()) -> None:
        self.chip = str(chip)
        self.effects = effects or MockEffects()
        self.faults = self.effects.faults
        if self.faults and self.chip == "ideal":
            raise BackendError(f"mock:ideal has no faults (faults={self.faults.text()})",
                               f"give faults to a chip number, e.g. mock:0:faults={self.faults.text()}")
        off = [f"{k}=off" for k in MockEffects.SWITCHES if not getattr(self.effects, k)]
        settings = off + ([f"faults={self.faults.text()}"] if self.faults else [])
        self.name = f"mock:{self.chip}" + (":" + ",".join(settings) if settings and self.chip != "ideal" else "")
        self.chip_id: Optional[str] = f"mock-chip-{self.chip}"  # what a real chip reports as its unique identifier
        self.uses_codes = self.chip != "ideal"  # the ideal chip realises the requested settings, not codes
        self._chip: Optional[Chip] = None
        if self.chip != "ideal":
            spec = load_bss2_spec()
            broken = draw_faults(int(self.chip), spec.total_circuits, spec["capmem"]["code_max"], self.faults)
            dead = np.union1d(np.asarray(dead_circuits, np.int64), broken.dead).astype(np.int64)
            self._chip = Chip(draw_variation(int(self.chip), spec, self.effects), self.effects, spec, dead,
                              broken.stuck)
        self._noise = torch.Generator().manual_seed(seed * 1_000_003 + (0 if self._chip is None else int(self.chip)))
        self._configured: tuple[Deployment, ChipState, RunPlan] | None = None
        self._workspace = Workspace()  # scratch tensors kept from batch to batch
        self._seed = seed
        self._runs = 0  # runs asked for, failed ones included: seeds the per-run fault draws
        self._samples = 0  # samples run on the fast path: the counter of its noise (fast.py)
        self._fast_setup: Optional[tuple[Deployment, FastSetup]] = None  # the fast path's view of the configuration
        self._health: dict[str, int] = {}  # fault counters of the configuration, until a run reports them
        self._fault_draws: Optional[torch.Generator] = None  # this run's drop/delay draws

    def _state(self, deployment: Deployment) -> ChipState:
        # Reconfiguring costs the same as on a chip: only when the deployment changes.
        # The deployment itself is kept (not its id, which Python may reuse for a new object).
        if self._configured is None or self._configured[0] is not deployment:
            state = configure(deployment, self._chip)
            plan = make_plan(state, self._chip.spec if self._chip else None, self._on("event_drops"),
                             self._input_noise_std(state))
            self._configured = (deployment, state, plan)
            self._health = self._configuration_health(deployment)
        return self._configured[1]

    def _configuration_health(self, deployment: Deployment) -> dict[str, int]:
        """The deployment's logical neurons on dead circuits / with stuck cells (when those faults are on)."""
        health: dict[str, int] = {}
        if self._chip is None:
            return health
        circuits = deployment["neuron_circuits"]
        if self.faults.dead > 0:
            health["dead_neurons"] = neurons_hit(circuits, self._chip.dead)
        if self.faults.stuck > 0:
            health["stuck_neurons"] = neurons_hit(circuits, np.unique(self._chip.stuck.circuit))
        return health

    def _transport_faults(self) -> bool:
        """Whether events may be lost or late beyond congestion (the drop and delay faults)."""
        return self._chip is not None and (self.faults.drop > 0 or self.faults.delay > 0)

    def _draws(self, shape: tuple[int, ...]) -> torch.Tensor:
        """Uniforms of this run for the drop and delay faults."""
        if self._fault_draws is None:  # run() sets it whenever _transport_faults(); for the type checker
            raise BackendError(f"backend {self.name} drew faults outside a run", "call run()")
        return torch.rand(shape, generator=self._fault_draws)

    @property
    def _configuration(self) -> tuple[Deployment, ChipState, RunPlan]:
        """The configured deployment, its state and run plan (call :meth:`_state` first)."""
        if self._configured is None:  # _state() always comes first; stated for the type checker
            raise BackendError(f"backend {self.name} has no deployment configured", "run a deployment first")
        return self._configured

    @property
    def _plan(self) -> RunPlan:
        """The run plan of the configured deployment (call :meth:`_state` first)."""
        return self._configuration[2]

    @property
    def _spec(self) -> BSS2Spec:
        """The spec of the emulated chip; only effects of a non-ideal chip (:meth:`_on`) need it."""
        if self._chip is None:  # every caller checks _on(...) first, which implies a chip; for the type checker
            raise BackendError(f"backend {self.name} emulates no particular chip", "use a mock chip number")
        return self._chip.spec

    def _on(self, effect: str) -> bool:
        return self._chip is not None and getattr(self.effects, effect)

    def _input_current(self, state: ChipState, events: torch.Tensor, counters: dict,
                       neuron: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Synaptic input from FPGA events after bus congestion, plus membrane noise.

        ``[T, B, neurons]``, or ``[T, B]`` of one neuron per run when ``neuron`` (``[B]``) is given.
        """
        routes = state.input_routes
        congested = False
        if self._transport_faults() and len(routes.source):
            # Events on each route, through the buses, then through the faults: the general path.
            delivered = events[..., torch.as_tensor(routes.source)]
            if self._on("event_drops") and self._plan.input_may_drop:
                priority = lambda: torch.rand(delivered.shape, generator=self._noise)  # noqa: E731
                delivered, dropped = deliver(delivered, routes.bus, bus_capacity(state.dt_s, self._spec), priority)
                counters["events_dropped"] += dropped
            delivered = faulty_transport(delivered, lambda t, b, r: self._draws((len(t),)), self.faults, counters)
            matrix = routes.per_route
            congested = True
        elif not self._on("event_drops") or len(routes.source) == 0:
            delivered, matrix = events, routes.per_source
        elif not self._plan.input_may_drop:  # what deliver() returns when no bus can overflow
            delivered, matrix = events[..., self._plan.input_source], routes.per_route
        elif neuron is None and _fits_buses(events, routes, bus_capacity(state.dt_s, self._spec)):
            # deliver() would return the route events unchanged and draw no priority: the same
            # product, built from the channel events without the wide [T, B, routes] copy.
            return self._add_noise(_routed_rows_matmul(delay_one_step(events), routes), neuron)
        else:
            route_events = events[..., torch.as_tensor(routes.source)]
            priority = lambda: torch.rand(route_events.shape, generator=self._noise)  # noqa: E731
            delivered, dropped = deliver(route_events, routes.bus, bus_capacity(state.dt_s, self._spec), priority)
            counters["events_dropped"] += dropped
            matrix = routes.per_route
            congested = True
        delivered = delay_one_step(delivered)
        if congested and neuron is None:
            x = _sparse_rows_matmul(delivered, matrix)
        elif neuron is None:  # x never leaves a run: a kept buffer (a fresh one is mostly page faults)
            buffer = self._workspace.buffer("input", (*delivered.shape[:-1], matrix.shape[1]))
            x = torch.matmul(delivered, matrix, out=buffer)
        else:
            x = torch.einsum("tbr,rb->tb", delivered, matrix[:, neuron])
        return self._add_noise(x, neuron)

    def _add_noise(self, x: torch.Tensor, neuron: Optional[torch.Tensor]) -> torch.Tensor:
        """``x + sigma_x * N(0, 1)``, in place (``x`` is a fresh tensor); the same values as out of place."""
        sigma = self._plan.noise_std
        if sigma is None:
            return x
        noise = torch.randn(x.shape, generator=self._noise, out=self._workspace.buffer("noise", x.shape))
        return x.add_(noise.mul_(sigma if neuron is None else sigma[neuron]))

    def _input_one_neuron_per_run(self, state: ChipState, times: np.ndarray, neuron: torch.Tensor,
                                  counters: dict) -> torch.Tensor:
        """``[T, B]`` synaptic input of run b's neuron ``neuron[b]``, built from the events directly.

        Falls back to the dense path when a bus could overflow (more routes than it carries per step).
        With the drop or delay fault, each event travels each of its routes on its own.
        """
        routes, meta = state.input_routes, self._configuration[0].meta
        capacity = bus_capacity(state.dt_s, self._chip.spec) if self._chip is not None else 0
        if self._on("event_drops") and len(routes.bus) and np.bincount(routes.bus).max() > capacity:
            events = bin_on_clock(times, meta["speedup"], meta["clock_period_s"], state.dt_s, state.steps)
            return self._input_current(state, events, counters, neuron)
        step, batch, channel = clock_events(times, meta["speedup"], meta["clock_period_s"], state.dt_s, state.steps)
        x = torch.zeros(state.steps, len(neuron))
        if self._transport_faults():
            event, route = route_pairs(channel, routes.source, times.shape[1])
            dropped, late = event_fate(self._draws((len(event),)), self.faults)
            counters["events_dropped_fault"] += int(dropped.sum())
            counters["events_delayed"] += int((late > 0).sum())
            arrive = torch.as_tensor(step[event]) + late + 1  # one step of routing latency
            on_chip = ~dropped & (arrive < state.steps)
            run = torch.as_tensor(batch[event])[on_chip]
            x.index_put_((arrive[on_chip], run), routes.per_route[torch.as_tensor(route)[on_chip], neuron[run]],
                         accumulate=True)
            return self._add_noise(x, neuron)
        arrival = step + 1  # one step of routing latency
        keep = arrival < state.steps
        arrive, b, c = (torch.as_tensor(a[keep]) for a in (arrival, batch, channel))
        x.index_put_((arrive, b), routes.per_source[c, neuron[b]], accumulate=True)
        return self._add_noise(x, neuron)

    def _input_noise_std(self, state: ChipState) -> Optional[torch.Tensor]:
        if not self._on("noise") or self.effects.membrane_noise_cadc <= 0:
            return None
        p = state.params
        # A chip state's parameters are tensors (per neuron); as_tensor returns them as they are
        return input_noise_std(self.effects.membrane_noise_cadc, torch.exp(torch.as_tensor(-state.dt_s / p.tau_syn_s)),
                               torch.exp(torch.as_tensor(-state.dt_s / p.tau_mem_s)))

    def _simulate(self, state: ChipState, x: torch.Tensor, counters: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole chip over time; internal events that overflow a bus are dropped as on the chip, and the
        drop and delay faults act on them.

        Losses are rare, so the fused path with on-chip feedback runs first. If an event was lost
        or late, the run is repeated with the delivered internal events fed in from outside, until
        they no longer change (exact for feed-forward networks after one pass per layer).
        """
        neurons = state.neuron_routes
        spikes, v = lif_sequence(x, state.params, state.dt_s, lateral=neurons.per_source.t())
        congestion = self._on("event_drops") and self._plan.neuron_may_drop
        faulty = self._transport_faults()
        if len(neurons.source) == 0 or not (congestion or faulty):
            return spikes, v  # deliver() would drop nothing: no bus has more routes than it carries
        capacity = bus_capacity(state.dt_s, self._spec) if congestion else 0
        shape = (*spikes.shape[:2], len(neurons.source))
        drawn: dict[str, torch.Tensor] = {}

        def once(name: str, draw) -> torch.Tensor:
            # Drawn once per run, so that every pass treats the same events alike.
            if name not in drawn:
                drawn[name] = draw()
            return drawn[name]

        priority = lambda: once("priority", lambda: torch.rand(*shape, generator=self._noise))  # noqa: E731
        lost: Optional[dict[str, int]] = None
        for _ in range(len(neurons.source) + 1):
            route_events = spikes[..., torch.as_tensor(neurons.source)]
            counts = {"events_dropped": 0, "events_dropped_fault": 0, "events_delayed": 0}
            delivered = route_events
            if congestion:
                delivered, counts["events_dropped"] = deliver(delivered, neurons.bus, capacity, priority)
            if faulty:
                delivered = faulty_transport(delivered, partial(_at, once("faults", lambda: self._draws(shape))),
                                             self.faults, counts)
            if lost is None and not any(counts.values()):
                return spikes, v  # every event arrived in time: the fused run is exact
            lost = counts
            new_spikes, v = lif_sequence(x + delay_one_step(delivered) @ neurons.per_route, state.params, state.dt_s)
            if torch.equal(new_spikes, spikes):
                break
            spikes = new_spikes
        for key, value in (lost or {}).items():
            if key in counters:
                counters[key] += value
        return spikes, v

    def _madc(self, state: ChipState, x_runs: torch.Tensor, v_runs: torch.Tensor,
              record: Recording) -> torch.Tensor:
        """``[T, B]`` MADC samples of each run's neuron: its membrane ``v_runs`` or its synaptic input line."""
        neuron = torch.as_tensor(np.asarray(record.madc_neuron), dtype=torch.long)
        if record.madc_source == "synaptic_input":
            # A chip state's parameters are tensors (per neuron); as_tensor returns them as they are
            alpha = torch.exp(torch.as_tensor(-state.dt_s / state.params.tau_syn_s))[neuron]
            current, samples = torch.zeros(len(neuron)), []
            for x_k in x_runs.unbind(0):
                current = alpha * current + x_k
                samples.append(current)
            # the line rests at the leak potential
            trace = torch.stack(samples) + torch.as_tensor(state.params.v_leak)[neuron]
        else:
            trace = v_runs
        chip = self._chip
        gain, offset = (chip.variation.madc_gain, chip.variation.madc_offset) if chip else (4.0, 0.0)
        return madc_codes(trace, gain, offset, quantise=self._on("madc"))

    def _madc_alone(self, state: ChipState, x_runs: torch.Tensor, neuron: torch.Tensor,
                    record: Recording) -> torch.Tensor:
        """MADC of independent neurons: run b's recorded neuron simulated as the b-th neuron of one run."""
        gathered = LIFParameters(*(torch.as_tensor(value)[neuron] for value in state.params))
        _, v = lif_sequence(x_runs.unsqueeze(1), gathered, state.dt_s)
        return self._madc(state, x_runs, v.squeeze(1), record)

    def run(self, deployment: Deployment, input_times_s: np.ndarray,
            record: Optional[Recording] = None) -> Observations:
        record = record or Recording()
        run_index, self._runs = self._runs, self._runs + 1
        if self._chip is not None and disconnects(int(self.chip), run_index, self.faults.disconnect):
            self._configured = None  # a reconnected chip is configured again
            raise ChipDisconnected(f"run {run_index + 1} on {self.name} lost the connection to the chip and returned "
                                   "nothing (injected fault)",
                                   "run it again (itl, run and calibrate retry such runs themselves)")
        input_times_s = fpga_delayed_times(deployment, input_times_s)  # delayed copies leave the FPGA
        state = self._state(deployment)
        meta = deployment.meta
        counters = {"events_in": int(np.isfinite(input_times_s).sum()), "events_internal": 0, "events_dropped": 0}
        if self._transport_faults():
            counters.update(events_dropped_fault=0, events_delayed=0)
            self._fault_draws = run_generator(int(self.chip), self._seed, run_index, "transport")
        counters.update(self._health)
        self._health = dict.fromkeys(self._health, 0)  # reported once per configuration
        events: Optional[torch.Tensor] = None  # the input on the step grid, when the whole network runs
        if self._fast_path(record):
            return self._run_fast(state, input_times_s, record, counters)
        with torch.no_grad():
            n = len(state.baseline)
            only_madc = not record.spikes and not record.membrane and record.madc_neuron is not None
            if only_madc and float(state.recurrent_matrix.abs().sum()) == 0:
                # Neurons are independent here: simulating each run's recorded neuron alone is exact.
                neuron = torch.as_tensor(np.asarray(record.madc_neuron), dtype=torch.long)
                if self._fast_madc_path():
                    madc = self._madc_alone_fast(state, input_times_s, neuron, record, counters)
                else:
                    x_runs = self._input_one_neuron_per_run(state, input_times_s, neuron, counters)
                    madc = self._madc_alone(state, x_runs, neuron, record)
                spikes, v = torch.zeros(*madc.shape, 0), None
                x = spikes
            else:
                events = bin_on_clock(input_times_s, meta["speedup"], meta["clock_period_s"], state.dt_s, state.steps)
                counters["events_in"] = int(events.sum())
                x = self._input_current(state, events, counters)
                spikes, v = self._simulate(state, x, counters)
                madc = None
                if record.madc_neuron is not None:
                    neuron, runs = torch.as_tensor(np.asarray(record.madc_neuron)), torch.arange(x.shape[1])
                    madc = self._madc(state, x[:, runs, neuron], v[:, runs, neuron], record)
        if spikes.shape[-1]:
            counters["events_internal"] = int((spikes.sum(dim=(0, 1)) * self._plan.routes_per_neuron).sum())
        membrane, recorded = torch.zeros(*x.shape[:2], 0), np.arange(0)
        if record.membrane and v is not None:
            recorded = _recorded_neurons(record, n)
            membrane = v if record.membrane_neurons is None else v[..., torch.as_tensor(recorded)]
            if self._on("cadc"):
                spec = self._spec
                read_noise = self.effects.cadc_read_noise_cadc if self._on("noise") else 0.0
                membrane = cadc_samples(membrane, state.dt_s, spec["readout"]["cadc"]["period_s"], read_noise,
                                        self._noise, self._workspace)
                low, high = spec["readout"]["cadc"]["reliable_range"]
                flags = lambda name: self._workspace.buffer(name, membrane.shape, torch.bool)  # noqa: E731
                outside = torch.lt(membrane, low, out=flags("below"))
                outside.logical_or_(torch.gt(membrane, high, out=flags("above")))
                counters["cadc_outside_reliable_range"] = int(torch.count_nonzero(outside))  # sum() would copy to int64
        correlation = (self._correlation(deployment, events, spikes, state.dt_s, record.correlation)
                       if record.correlation else None)
        events_out = None
        if record.spikes and spikes.shape[-1]:
            jitter = self.effects.jitter_s if self._on("jitter") else 0.0
            events_out = spike_events(spikes, state.dt_s, meta["clock_period_s"], jitter, self._noise)
        else:
            spikes = torch.zeros(*x.shape[:2], 0) if not record.spikes else spikes
        return Observations(spikes=spikes, membrane=membrane, recorded=recorded, baseline=state.baseline[recorded],
                            time_step_s=state.dt_s, counters=counters, madc=madc, spike_events=events_out,
                            correlation=correlation)

    def _fast_path(self, record: Recording) -> bool:
        """Whether this run goes to the fast emulator (:mod:`.fast`): not for the MADC, the correlation sensors
        or the drop and delay faults, which only the twin emulates."""
        return (record.madc_neuron is None and not record.correlation and not self._transport_faults()
                and emulator_ops() is not None)

    def _fast_madc_path(self) -> bool:
        """Whether MADC runs of independent neurons go to the fast emulator (inputs that no bus can drop, no
        transport faults)."""
        return (not self._transport_faults() and not (self._on("event_drops") and self._plan.input_may_drop)
                and emulator_ops() is not None)

    def _madc_alone_fast(self, state: ChipState, input_times_s: np.ndarray, neuron: torch.Tensor,
                         record: Recording, counters: dict) -> torch.Tensor:
        """:meth:`_madc_alone` on the fast emulator (its noise: :mod:`.fast`)."""
        deployment = self._configuration[0]
        events = self._event_lists(state, input_times_s, counters)
        chip = self._chip
        gain, offset = (chip.variation.madc_gain, chip.variation.madc_offset) if chip else (4.0, 0.0)
        key = chip_key(None if chip is None else int(self.chip), self._seed)
        sample0, self._samples = self._samples, self._samples + len(input_times_s)
        return fast_madc_alone(self._fast_view(deployment, state), events, state.steps, neuron,
                               Madc(record.madc_source, gain, offset, self._on("madc")), key, sample0)

    def _event_lists(self, state: ChipState, input_times_s: np.ndarray, counters: dict) -> EventLists:
        """The input events of each run on the clock and step grid (the fast path's form); counts them."""
        meta = self._configuration[0].meta
        events = event_lists(input_times_s, meta["speedup"], meta["clock_period_s"], state.dt_s, state.steps)
        counters["events_in"] = events.binned
        return events

    def _fast_view(self, deployment: Deployment, state: ChipState) -> FastSetup:
        """The fast emulator's view of the configured deployment, built once per configuration."""
        if self._fast_setup is None or self._fast_setup[0] is not deployment:
            self._fast_setup = (deployment, fast_setup(state, self._plan))
        return self._fast_setup[1]

    def _run_fast(self, state: ChipState, input_times_s: np.ndarray, record: Recording,
                  counters: dict) -> Observations:
        """The run on the fast emulator: the same observations as the twin's (:mod:`.fast` says what differs)."""
        deployment, _, plan = self._configuration
        meta = deployment.meta
        setup = self._fast_view(deployment, state)
        events = self._event_lists(state, input_times_s, counters)
        drops = self._on("event_drops") and (plan.input_may_drop or plan.neuron_may_drop)
        capacity = bus_capacity(state.dt_s, self._spec) if drops else 0
        every, read_noise, reliable = 0, 0.0, (0.0, 255.0)
        if self._on("cadc"):
            cadc = self._spec["readout"]["cadc"]
            every = max(1, int(round(cadc["period_s"] / state.dt_s)))
            read_noise = self.effects.cadc_read_noise_cadc if self._on("noise") else 0.0
            reliable = (float(cadc["reliable_range"][0]), float(cadc["reliable_range"][1]))
        key = chip_key(None if self._chip is None else int(self.chip), self._seed)
        sample0, self._samples = self._samples, self._samples + len(input_times_s)
        clock = Clock(state.dt_s, meta["clock_period_s"], self.effects.jitter_s if self._on("jitter") else 0.0)
        recorded = _recorded_neurons(record, len(state.baseline))
        out = fast_run(setup, events, state.steps, capacity, Readout(every, read_noise, reliable), clock, key,
                       sample0, spikes=record.spikes, recorded=recorded)
        for name, value in out.counters.items():
            counters[name] = counters.get(name, 0) + value
        return Observations(spikes=out.spikes, membrane=out.membrane, recorded=recorded,
                            baseline=state.baseline[recorded], time_step_s=state.dt_s, counters=counters,
                            spike_events=out.spike_events if record.spikes and out.spikes.shape[-1] else None)

    def _correlation(self, deployment: Deployment, events: Optional[torch.Tensor], spikes: torch.Tensor,
                     dt_s: float, which: bool | tuple[str, ...]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Readings of the correlation sensors of every projection onto a spiking layer (:mod:`.correlation`), or of
        those ``which`` names: presynaptic spikes are the input events, or a layer's spikes one step later (the
        routing latency)."""
        if events is None or "delays" in deployment.meta or "graph" not in deployment.meta:
            raise BackendError("correlation sensors are emulated for runs of model deployments without delay "
                               "realisations, with spikes recorded", "record spikes too, and map without delays")
        graph = Graph.from_dict(deployment.meta["graph"])
        layers = deployment.meta["layers"]
        sizes = [graph.population(name).size for name in layers]
        first = dict(zip(layers, np.cumsum([0] + sizes[:-1]).tolist()))

        def own(name: str) -> torch.Tensor:
            return spikes[..., first[name]:first[name] + graph.population(name).size]

        def presynaptic(name: str) -> torch.Tensor:
            return events[..., :graph.input.size] if name == graph.input.name else delay_one_step(own(name))

        settings = SensorSettings()
        noise = self._noise if self._on("noise") else None
        chip = None if self._chip is None else int(self.chip)
        out = {}
        for index, projection in enumerate(graph.projections):
            if graph.population(projection.post).kind != "lif":
                continue  # a readout never spikes: its sensors never pair
            if isinstance(which, tuple) and projection.name not in which:
                continue
            causal, acausal = pairings(presynaptic(projection.pre), own(projection.post), dt_s, settings)
            gains = sensor_gains(chip, index, (causal.shape[1], causal.shape[2]), settings)
            out[projection.name] = (readings(causal, gains, settings, noise), readings(acausal, gains, settings, noise))
        return out


def _recorded_neurons(record: Recording, neurons: int) -> np.ndarray:
    """The neurons whose membranes a run reads out: ``record.membrane_neurons`` (all when None), none without
    ``record.membrane``."""
    if not record.membrane:
        return np.arange(0)
    if record.membrane_neurons is None:
        return np.arange(neurons)
    chosen = np.asarray(record.membrane_neurons, dtype=np.int64)
    if chosen.ndim != 1 or (len(chosen) and (chosen.min() < 0 or chosen.max() >= neurons)):
        raise BackendError(f"Recording.membrane_neurons must be neuron ids in 0..{neurons - 1}",
                           "record the deployment's logical neurons")
    return chosen


def _at(draws: torch.Tensor, t: torch.Tensor, b: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """The fixed draws of the events at ``(t, b, r)``."""
    return draws[t, b, r]


def _fits_buses(events: torch.Tensor, routes: Routes, capacity: int) -> bool:
    """Whether no bus gets more than ``capacity`` of the channel events ``[T, B, C]`` in any step."""
    buses, which = np.unique(routes.bus, return_inverse=True)
    per_channel = np.zeros((events.shape[-1], len(buses)), np.float32)  # routes of each channel on each bus
    np.add.at(per_channel, (routes.source, which), 1.0)
    return float((events.reshape(-1, events.shape[-1]) @ torch.as_tensor(per_channel)).max()) <= capacity


def _routed_rows_matmul(events: torch.Tensor, routes: Routes) -> torch.Tensor:
    """:func:`_sparse_rows_matmul` of the route events ``events[..., routes.source]`` and ``routes.per_route``,
    gathering only the rows that carry an event (the same rows and values, so the same result)."""
    flat = events.reshape(-1, events.shape[-1])
    source = torch.as_tensor(routes.source)
    active = flat[:, torch.unique(source)].any(1).nonzero().squeeze(1)
    out = torch.zeros(flat.shape[0], routes.per_route.shape[1], dtype=routes.per_route.dtype)
    out[active] = flat[active][:, source].to(routes.per_route.dtype) @ routes.per_route
    return out.reshape(*events.shape[:-1], routes.per_route.shape[1])


def _sparse_rows_matmul(events: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """``events @ matrix`` computed only for the (step, run) rows that carry an event.

    Many routes per bus (calibration's experiments fan one input out over 64 drivers) make the
    route axis wide while events stay rare in time; the dense product was most of a calibration.
    """
    flat = events.reshape(-1, events.shape[-1])
    active = flat.any(1).nonzero().squeeze(1)
    out = torch.zeros(flat.shape[0], matrix.shape[1], dtype=matrix.dtype)
    out[active] = flat[active].to(matrix.dtype) @ matrix
    return out.reshape(*events.shape[:-1], matrix.shape[1])
