r"""Build and run a neurodeploy network in any PyNN simulator (numpy only: exported scripts embed this file).

A network description ``net`` (:func:`neurodeploy.interchange.pynn_export.network_description`) holds PyNN
units already (ms, mV, nF, nA). :func:`build` makes ``copies`` disjoint copies of the network, one population per
layer of ``copies * size`` cells (neuron ``n`` of copy ``b`` is cell ``b * size + n``), so that a software simulator
runs ``copies`` samples at once; on a chip ``copies`` is 1. :func:`run_samples` runs every sample through them, a
chunk of ``copies`` samples per ``sim.run``, with ``sim.reset()`` between chunks, and returns the spikes on the
model's step grid and the readout membrane in model units:

* a spike at time :math:`t` (ms) belongs to step :math:`k = \lceil t/\Delta t \rceil` (the model detects a
  threshold crossing at the end of the step in which it happens);
* the readout membrane of step :math:`k` is :math:`V(k \Delta t)`, in model units :math:`v = (V - V_0)/u`.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _connections(weights: np.ndarray, sign: int, copies: int, n_pre: int, n_post: int, delay_ms: float) -> list:
    """``(pre, post, weight, delay)`` of the weights of one sign, repeated for ``copies`` disjoint copies."""
    post, pre = np.nonzero(weights > 0 if sign > 0 else weights < 0)
    rows = []
    for b in range(copies):
        rows += [(int(i) + b * n_pre, int(j) + b * n_post, float(weights[j, i]), delay_ms) for i, j in zip(pre, post)]
    return rows


def _bulk_connect(sim: Any, projection: Any, rows: list, timestep_ms: float) -> None:
    """pyNN.brian2 only: all connections of ``projection`` (made with an empty connector) in three Brian2 calls.

    pyNN.brian2 0.13 sets each synapse's weight and delay by one Brian2 indexing call (about 1.5 ms each: 11 s
    per digits network); this gives the same synapses, weights (nA) and delays (rounded to the step, as PyNN
    does) at once. The neurodeploy backend uses it; exported scripts use the plain PyNN call."""
    import brian2
    table = np.asarray(rows, dtype=np.float64)
    synapses = projection._brian2_synapses[0][0]
    synapses.connect(i=table[:, 0].astype(np.int64), j=table[:, 1].astype(np.int64))
    synapses.weight[:] = table[:, 2] * brian2.nA
    synapses.delay[:] = np.round(table[:, 3] / timestep_ms) * timestep_ms * brian2.ms
    projection._n_connections = len(table)


def build(sim: Any, net: dict, copies: int, bulk: bool = False) -> dict:
    """Populations (input, each layer) and projections of ``net`` in simulator ``sim``; nothing recorded yet.
    ``bulk``: connect pyNN.brian2's synapses in bulk (:func:`_bulk_connect`)."""
    channels = int(net["input"]["size"])
    pops = {net["input"]["name"]: sim.Population(copies * channels, sim.SpikeSourceArray(spike_times=[]),
                                                 label=net["input"]["name"])}
    for layer in net["layers"]:
        cell = getattr(sim, layer["cell_type"])(**layer["parameters"])
        pops[layer["name"]] = sim.Population(copies * layer["size"], cell, label=layer["name"],
                                             initial_values={"v": layer["parameters"]["v_rest"]})
        if layer["kind"] == "lif":
            pops[layer["name"]].record("spikes")
        else:
            pops[layer["name"]].record("v", sampling_interval=net["dt_ms"])
    sizes = {net["input"]["name"]: channels, **{layer["name"]: layer["size"] for layer in net["layers"]}}
    projections = []
    for proj in net["projections"]:
        w = np.asarray(proj["weights_na"], dtype=np.float64)
        for sign, receptor in ((1, "excitatory"), (-1, "inhibitory")):
            rows = _connections(w, sign, copies, sizes[proj["pre"]], sizes[proj["post"]], proj["delay_ms"])
            if rows:
                connector = sim.FromListConnector([] if bulk else rows, column_names=["weight", "delay"])
                projections.append(sim.Projection(pops[proj["pre"]], pops[proj["post"]], connector,
                                                  sim.StaticSynapse(), receptor_type=receptor))
                if bulk:
                    _bulk_connect(sim, projections[-1], rows, float(net["timestep_ms"]))
    return {"populations": pops, "projections": projections, "copies": copies}


def _set_inputs(sim: Any, source: Any, times_ms: np.ndarray, copies: int) -> None:
    """Spike times ``[b <= copies, channels]`` (NaN: no spike) into the input population; unused copies stay silent."""
    channels = times_ms.shape[1]
    trains: list[list[float]] = [[] for _ in range(copies * channels)]
    for b in range(times_ms.shape[0]):
        for c in range(channels):
            if np.isfinite(times_ms[b, c]):
                trains[b * channels + c] = [float(times_ms[b, c])]
    source.set(spike_times=[sim.Sequence(t) for t in trains])


def run_samples(sim: Any, net: dict, handles: dict, times_ms: np.ndarray) -> tuple[dict, np.ndarray]:
    """Run samples ``[B, channels]`` (source spike times in ms, NaN: none) → ``(spikes, readout)``:
    ``spikes[layer]`` int8 ``[T, B, size]`` on the model's step grid, ``readout`` ``[T, B, classes]`` model units."""
    copies, steps, dt_ms = handles["copies"], int(net["steps"]), float(net["dt_ms"])
    pops = handles["populations"]
    total = times_ms.shape[0]
    spikes = {layer["name"]: np.zeros((steps, total, layer["size"]), np.int8)
              for layer in net["layers"] if layer["kind"] == "lif"}
    readout_layer = net["layers"][-1]
    readout = np.zeros((steps, total, readout_layer["size"]), np.float32)
    for chunk, start in enumerate(range(0, total, copies)):
        batch = times_ms[start:start + copies]
        if chunk:
            sim.reset()
        _set_inputs(sim, pops[net["input"]["name"]], batch, copies)
        sim.run(steps * dt_ms)
        for name, out in spikes.items():
            size = out.shape[2]
            trains = pops[name].get_data("spikes", clear=True).segments[-1].spiketrains
            for cell, train in enumerate(trains[:len(batch) * size]):
                t = np.asarray(train.magnitude, dtype=np.float64)
                k = np.ceil(t / dt_ms - 1e-6).astype(np.int64)
                k = k[(k >= 0) & (k < steps)]
                np.add.at(out[:, start + cell // size, cell % size], k, 1)
        signal = pops[readout_layer["name"]].get_data("v", clear=True).segments[-1].analogsignals[0]
        v_mv = np.asarray(signal.magnitude, dtype=np.float64)[:steps, :len(batch) * readout_layer["size"]]
        v = (v_mv - net["v0_mv"]) / net["mv_per_unit"]
        readout[:v.shape[0], start:start + len(batch)] = v.reshape(v.shape[0], len(batch), readout_layer["size"])
    return spikes, readout


def decode(readout: np.ndarray, how: str) -> np.ndarray:
    """Readout membrane ``[T, B, C]`` → class scores ``[B, C]``: its maximum or its mean over time."""
    return readout.max(axis=0) if how == "max_over_time" else readout.mean(axis=0)
