"""Map a network onto K BSS-2 chips, and run the K chips as one network by composing single-chip backends.

**Mapping** (:func:`map_chips`): :func:`~.partition.plan_partition` assigns blocks (whole layers, or slices of
a layer) to chips; each chip's network (:func:`~.partition.sub_model`) is mapped by the single-chip mapper with
every rule of one chip; then the link rules (:func:`~.partition.check_links`) run on the spikes that cross
chips. Each chip's rate and readout probes see what that chip will receive: the quantised spikes of the chips
before it on the same training samples, shifted by the link latency.

**Running** (:class:`ChipPipeline`). The chips run one after another, each on an unchanged single-chip backend
(``engine.run(chip_deployment, input_times_s, Recording(...))``). Chip k's recorded output events
``(t, sample, neuron)`` (hardware s, on the 8 ns clock) become the next chips' input events at
:math:`t \\cdot 1000 + \\lambda_{model}` (model s), :math:`\\lambda` the link latency. Running the chips in
sequence gives what K chips running at once would give, exactly, because the partition is a feed-forward chain:
a chip's inputs are the outputs of chips earlier in the chain only (recurrent layers are never split), so all
of them are known before it runs, and within one run nothing a chip does depends on when its inputs were
computed, only on their times. (A concurrent version on ``torch.distributed`` would exchange the same events
per time slice; it would be needed only for feedback between chips, which the partition never creates.) What a
sequential pipeline does not model is the links' own congestion, which BSS2-LINK-BANDWIDTH bounds at mapping.

With latency 0 the result equals the one-chip run of the same network (where one exists): on one chip, a spike
at step s is routed to the next layer at step s+1; across chips, the event is recorded at time :math:`s\\,dt`,
re-enters the FPGA at that time, is binned to step s and, like every FPGA input, reaches the synapses at step
s+1. With latency :math:`\\lambda`, every spike crossing a boundary arrives :math:`\\lambda/dt` steps later.

**Several spikes per source.** The backend input contract is one spike per input channel and sample
(``input_times_s`` ``[B, channels]``), but a hidden neuron may spike several times. A source that spikes up to
M times in a batch is given M input channels, ``c + m N`` for its m-th spike, routed exactly as the source's
own channel ``c`` (the same synapse drivers and labels: on the chip they are the same event address, the FPGA
just sends it M times). :func:`spike_train_deployment` makes that chip deployment (``input_routes`` repeated
M times, ``meta.input_channels`` = M N), in memory, per M; the mock needed no change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import numpy as np
import torch

from ...backends.base import Backend, Observations, Recording
from ...deployment import Deployment
from ...errors import DesignRuleViolation, NeurodeployError
from ...modelfile import ModelFile
from ...multichip import MultiChipDeployment
from .calibration_file import Calibration
from .lower import lower
from .mapper import map_to_bss2
from .partition import (Block, Link, check_links, chip_sources, delayed, input_name, plan_partition,
                        quantised_spikes, spec_link, sub_model)
from .spec import BSS2Spec


def _routes_between(plan: list[list[Block]], graph_input: str, sources: list[list[dict]]) -> list[dict]:
    """Every (source block, destination chip) pair whose spikes cross chips: the FPGA routes."""
    routes = []
    for to_chip, segments in enumerate(sources):
        for segment in segments:
            if segment["population"] == graph_input:
                continue
            for from_chip, blocks in enumerate(plan):
                for block in blocks:
                    a, b = max(block.start, segment["start"]), min(block.stop, segment["stop"])
                    if block.layer == segment["population"] and from_chip != to_chip and a < b:
                        routes.append({"layer": block.layer, "neurons": [a, b], "from_chip": from_chip,
                                       "to_chip": to_chip})
    return routes


def _merged(spikes: dict[str, torch.Tensor], plan_chip: list[Block], layer_spikes: dict) -> None:
    """Put a chip's block spikes into their layers' full ``[T, B, N]`` tensors."""
    for block in plan_chip:
        if block.name in spikes:
            layer_spikes[block.layer][..., block.start:block.stop] = spikes[block.name]


def map_chips(model: ModelFile, spec: BSS2Spec, chips: int, *, clip_quantile: float = 1.0,
              weight_scale: str = "per-neuron", calibration: Optional[Calibration] = None,
              weight_copies: Optional[int] = None, probe_inputs: Optional[torch.Tensor] = None,
              link: Optional[Link] = None, capacity: Optional[int] = None
              ) -> tuple[Optional[MultiChipDeployment], dict, list[DesignRuleViolation]]:
    """Return ``(multi-chip deployment or None, report, violations)``: every rule broken, on any chip or link.

    A partition that cannot be made (``--chips 0``, too few chips, a network that is not a chain) is a
    ``NeurodeployError``. ``calibration`` is one chip's: it is refused for more than one chip. ``capacity``: the
    neuron circuits the partition may use per chip (None: all of a chip's; tests split small networks with less).
    ``link``: the links between chips (None: the target file's, :func:`~.partition.spec_link`).
    """
    link = link or spec_link(spec)
    if calibration is not None and chips > 1:
        raise NeurodeployError("a calibration is one chip's, a multi-chip deployment runs on several",
                               "map without --calibration; calibrate each chip and run with it (not yet supported)")
    layers = lower(model.graph, spec)
    plan = plan_partition(model, layers, chips, spec.total_circuits if capacity is None else capacity)
    graph = model.graph
    sizes = {p.name: p.size for p in graph.populations}
    sources = [chip_sources(model, blocks) for blocks in plan]
    dt_hw = model.dt_s / spec.speedup
    latency_steps = int(round(link.latency_s / dt_hw))
    probe = probe_inputs
    layer_spikes: dict[str, torch.Tensor] = {}
    if probe is not None:
        layer_spikes = {p.name: torch.zeros(probe.shape[0], probe.shape[1], p.size) for p in graph.populations[1:]
                        if p.kind == "lif"}
    deployments: list[Deployment] = []
    violations: list[DesignRuleViolation] = []
    warnings: list[str] = []
    reports = []
    for k, blocks in enumerate(plan):
        sub, first_inputs = sub_model(model, blocks)
        chip_probe = None
        if probe is not None:  # what the chip receives: its sources' spikes, those of other chips a latency later
            chip_probe = torch.cat([probe if seg["population"] == graph.input.name else
                                    delayed(layer_spikes[seg["population"]][..., seg["start"]:seg["stop"]],
                                            latency_steps) for seg in sources[k]], dim=-1)
        deployment, report, broken = map_to_bss2(sub, spec, clip_quantile=clip_quantile, weight_scale=weight_scale,
                                                 weight_copies=weight_copies, probe_inputs=chip_probe,
                                                 calibration=calibration, first_inputs=first_inputs)
        violations += [DesignRuleViolation(v.rule_id, f"chip {k}: {v.layer}", v.what, v.needed, v.available, v.fix)
                       for v in broken]
        warnings += [f"chip {k}: {w}" for w in report.get("warnings", [])]
        if deployment is None:
            continue
        deployments.append(deployment)
        reports.append(report)
        if chip_probe is not None:
            _merged(quantised_spikes(sub, deployment.arrays, chip_probe), blocks, layer_spikes)
    routes = _routes_between(plan, graph.input.name, sources)
    last_input = None
    if probe is not None and bool(probe.any()):
        last_input = int(torch.nonzero(probe.sum(dim=(1, 2))).max())
    steps = probe.shape[0] if probe is not None else 0
    # Each layer whose spikes cross chips adds one latency to the paths through it (a chain: at most once each).
    boundaries = len({route["layer"] for route in routes})
    link_violations, link_warnings = check_links(routes, layer_spikes, last_input, steps, boundaries, dt_hw, link)
    violations += link_violations
    warnings += link_warnings
    if violations:
        return None, {"warnings": warnings}, violations
    readout = graph.readout.name
    meta = {
        "target": spec.name, "graph": graph.to_dict(), "dt_s": model.dt_s, "encoding": model.encoding,
        "dataset": model.dataset, "layers": [p.name for p in graph.populations[1:]],
        "layer_kinds": [p.kind for p in graph.populations[1:]],
        "readout_neurons": [sum(p.size for p in graph.populations[1:-1]), sizes[readout]],
        "training": deployments[-1].meta["training"], "chip": None,
        "partition": {"chips": [{"index": k, "input": input_name(sources[k]), "sources": sources[k],
                                 "blocks": [b.to_dict() for b in blocks]} for k, blocks in enumerate(plan)],
                      "routes": routes, "link": link.to_dict(), "latency_steps": latency_steps},
    }
    meta["report"] = _report(plan, reports, routes, link, latency_steps, warnings, spec)
    arrays = {f"float_weight:{k}": v.numpy() for k, v in model.weights.items()}
    return MultiChipDeployment(meta=meta, chips=deployments, arrays=arrays), meta["report"], []


def _report(plan: list[list[Block]], reports: list[dict], routes: list[dict], link: Link, latency_steps: int,
            warnings: list[str], spec: BSS2Spec) -> dict:
    """The mapping report: usage summed over chips, one row per block (with its chip), and the partition."""
    rows = []
    for k, (blocks, report) in enumerate(zip(plan, reports)):
        for block, row in zip(blocks, report["layers"]):
            rows.append({**row, "chip": k, "layer": block.layer, "neurons_of_layer": [block.start, block.stop],
                         "detail": f"chip {k}; {row.get('detail', '')}"})
    return {
        "target": spec.name, "chips_used": len(plan), "chips_available": len(plan),
        "circuits_used": sum(r["circuits_used"] for r in reports),
        "circuits_available": sum(r["circuits_available"] for r in reports),
        "synapses_used": sum(r["synapses_used"] for r in reports),
        "synapses_available": sum(r["synapses_available"] for r in reports),
        "link_latency_us": link.latency_s * 1e6, "link_latency_steps": latency_steps,
        "link_events_per_s": link.events_per_s,
        "routes": routes, "per_chip": reports, "layers": rows, "warnings": warnings,
    }


def spike_train_deployment(deployment: Deployment, copies: int) -> Deployment:
    """``deployment`` with each input channel c also on channels ``c + m N`` (m < ``copies``), routed as c
    (module docstring): one input channel per spike of a source that spikes ``copies`` times."""
    meta, arrays = deployment.meta, deployment.arrays
    channels = int(meta.get("input_channels", meta["graph"]["populations"][0]["size"]))
    routes = arrays["input_routes"]
    expanded = np.concatenate([routes + np.array([m * channels, 0, 0, 0], routes.dtype) for m in range(copies)])
    return Deployment(meta={**meta, "input_channels": channels * copies}, arrays={**arrays, "input_routes": expanded})


def spike_train_times(events: np.ndarray, batch: int, sources: int) -> np.ndarray:
    """Events ``[n, 3]`` ``(time_model_s, sample, source)`` → ``[B, M N]`` one spike per channel (NaN: none), the
    m-th spike of source j (in time) on channel ``j + m N``; M the most spikes of one source in one sample."""
    if len(events) == 0:
        return np.full((batch, sources), np.nan)
    order = np.lexsort((events[:, 0], events[:, 2], events[:, 1]))
    ev = events[order]
    key = ev[:, 1].astype(np.int64) * sources + ev[:, 2].astype(np.int64)
    start = np.r_[0, np.flatnonzero(np.diff(key)) + 1]
    rank = np.arange(len(ev)) - np.repeat(start, np.diff(np.r_[start, len(ev)]))
    copies = int(rank.max()) + 1
    times = np.full((batch, sources * copies), np.nan)
    times[ev[:, 1].astype(np.int64), ev[:, 2].astype(np.int64) + rank * sources] = ev[:, 0]
    return times


class ChipPipeline:
    """K emulated (or real) chips as one network (module docstring): ``engines[k]`` runs chip k's deployment."""

    def __init__(self, multi: MultiChipDeployment, engines: Sequence[Backend]) -> None:
        if len(engines) != len(multi.chips):
            raise NeurodeployError(f"{len(engines)} backends for {len(multi.chips)} chips",
                                   f"give one backend for all chips or {len(multi.chips)}, comma-separated")
        self.multi, self.engines = multi, engines
        self._expanded: dict[tuple[int, int], Deployment] = {}
        graph = multi.meta["graph"]
        self.sizes = {p["name"]: int(p["size"]) for p in graph["populations"]}
        self.input_name = graph["populations"][0]["name"]

    def _deployment(self, k: int, copies: int) -> Deployment:
        # Built once per (chip, spikes per source): the backend reconfigures only when its deployment changes.
        if (k, copies) not in self._expanded:
            self._expanded[(k, copies)] = spike_train_deployment(self.multi.chips[k], copies)
        return self._expanded[(k, copies)]

    def run(self, input_times_s: np.ndarray, record: Optional[Recording] = None) -> tuple[Observations, dict]:
        """One batch through every chip; the readout chip's observations and the counters of all chips
        (``events_between_chips``: the events the FPGAs carried from chip to chip)."""
        partition = self.multi.partition
        latency_model_s = float(partition["link"]["latency_s"]) * float(self.multi.chips[0].meta["speedup"])
        batch = input_times_s.shape[0]
        events: dict[str, list[np.ndarray]] = {}  # layer → [n, 3] (model s, sample, neuron of the layer)
        counters: dict[str, int] = {"events_between_chips": 0}
        last = len(self.multi.chips) - 1
        obs: Optional[Observations] = None
        for k, (part, chip, engine) in enumerate(zip(partition["chips"], self.multi.chips, self.engines)):
            if part["input"] == self.input_name:
                deployment, times = chip, input_times_s
            else:
                arriving, width = self._arriving(part["sources"], input_times_s, events, latency_model_s)
                counters["events_between_chips"] += self._crossing(part["sources"], events)
                times = spike_train_times(arriving, batch, width)
                deployment = self._deployment(k, times.shape[1] // width)
            wanted = Recording(spikes=True, membrane=k == last) if record is None or k != last else \
                record._replace(spikes=True)
            obs = engine.run(deployment, times, wanted)
            for key, value in obs.counters.items():
                counters[key] = counters.get(key, 0) + int(value)
            self._collect(chip, part, obs, events)
        if obs is None:  # a multi-chip deployment has at least one chip; stated for the type checker
            raise NeurodeployError("a multi-chip deployment without chips", "map it again")
        return obs, counters

    def _segment_events(self, segment: dict, input_times_s: np.ndarray, events: dict) -> np.ndarray:
        """``[n, 3]`` (model s, sample, index within the segment) of one segment of a chip's input population."""
        a, b = segment["start"], segment["stop"]
        if segment["population"] == self.input_name:
            sample, channel = np.nonzero(np.isfinite(input_times_s[:, a:b]))
            return np.stack([input_times_s[sample, channel + a], sample, channel], axis=1).astype(np.float64)
        ev = np.concatenate(events.get(segment["population"], []) or [np.zeros((0, 3))])
        ev = ev[(ev[:, 2] >= a) & (ev[:, 2] < b)]
        return np.stack([ev[:, 0], ev[:, 1], ev[:, 2] - a], axis=1)

    def _crossing(self, segments: list[dict], events: dict) -> int:
        """Events that reach the chip from other chips."""
        return sum(len(self._segment_events(s, np.zeros((0, 0)), events)) for s in segments
                   if s["population"] != self.input_name)

    def _arriving(self, segments: list[dict], input_times_s: np.ndarray, events: dict,
                  latency_model_s: float) -> tuple[np.ndarray, int]:
        """The events of a chip's input population (its segments side by side), those from other chips
        ``latency_model_s`` later; and its width."""
        parts, offset = [], 0
        for segment in segments:
            ev = self._segment_events(segment, input_times_s, events)
            if segment["population"] != self.input_name:
                ev[:, 0] += latency_model_s
            ev[:, 2] += offset
            parts.append(ev)
            offset += segment["stop"] - segment["start"]
        return np.concatenate(parts), offset

    def _collect(self, chip: Deployment, part: dict, obs: Observations, events: dict) -> None:
        """The chip's output events, per layer of the whole network, in model seconds."""
        if obs.spike_events is None or len(obs.spike_events) == 0:
            return
        speedup = float(chip.meta["speedup"])
        first = 0
        for block in part["blocks"]:
            size = block["stop"] - block["start"]
            ev = obs.spike_events
            mine = ev[(ev[:, 2] >= first) & (ev[:, 2] < first + size)]
            if len(mine):
                out = np.stack([mine[:, 0] * speedup, mine[:, 1], mine[:, 2] - first + block["start"]], axis=1)
                events.setdefault(block["layer"], []).append(out)
            first += size


def latency_of(multi: MultiChipDeployment) -> float:
    """The inter-chip latency along the chain (hardware s): boundaries x the link's latency."""
    inputs = {part["input"] for part in multi.partition["chips"]}
    boundaries = len(inputs - {multi.meta["graph"]["populations"][0]["name"]})
    return boundaries * float(multi.partition["link"]["latency_s"])
