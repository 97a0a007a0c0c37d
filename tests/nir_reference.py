"""An independent reference simulator of a NIR graph's equations, forward Euler at dt, in numpy.

Written from NIR's node definitions only (nothing of neurodeploy): every node's output is computed
once per step k, in an order where each node follows its inputs; the edges into a node sum.

* Input: the input vector of step k (a spike is 1 in its step); Output, Flatten: identity.
* Affine ``W x + b``, Linear ``W x``, Scale ``s * x``; Delay: the input ``round(delay/dt)`` steps ago (0 before).
* CubaLIF: ``I += dt/tau_syn * (-I + w_in * x)``; ``v += dt/tau_mem * (v_leak - v + r * I)``;
  ``z = v > v_threshold``; ``v = v_reset`` where z (``subtract``: ``v -= v_threshold - v_reset``).
* LIF: ``v += dt/tau * (v_leak - v + r * x)``; IF: ``v += dt * r * x``; CubaLI, LI, I: the same, no spike.
* Start: I = 0, v = v_leak (IF, I: 0). A loop is cut at an edge leaving a spiking neuron: what
  travels around it is that neuron's spikes of the previous step (none before step 0).
"""

from __future__ import annotations

import nir
import numpy as np

SPIKING = (nir.CubaLIF, nir.LIF, nir.IF)
NEURONS = (*SPIKING, nir.CubaLI, nir.LI, nir.I)


def flat(graph: nir.NIRGraph, prefix: str = "") -> tuple[dict, list]:
    """Inline subgraphs: children renamed 'sub.child'; a subgraph's own Input/Output become identities."""
    nodes, edges, into, out_of = {}, [], {}, {}
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            inner_nodes, inner_edges = flat(node, f"{prefix}{name}.")
            for k, v in node.nodes.items():
                if isinstance(v, nir.Input):
                    into[prefix + name] = f"{prefix}{name}.{k}"
                if isinstance(v, nir.Output):
                    out_of[prefix + name] = f"{prefix}{name}.{k}"
            nodes.update({k: ("identity" if isinstance(v, (nir.Input, nir.Output)) else v)
                          for k, v in inner_nodes.items()})
            edges += inner_edges
        else:
            nodes[prefix + name] = node
    for a, b in graph.edges:
        edges.append((out_of.get(prefix + a, prefix + a), into.get(prefix + b, prefix + b)))
    return nodes, edges


def reaches(edges: list, start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        n = todo.pop()
        if n == goal:
            return True
        if n not in seen:
            seen.add(n)
            todo += [b for a, b in edges if a == n]
    return False


def param(node, name: str, n: int, default: float = 0.0) -> np.ndarray:
    value = getattr(node, name, None)
    return np.full(n, default) if value is None else np.broadcast_to(np.asarray(value, float).reshape(-1), (n,))


def simulate(graph: nir.NIRGraph, x: np.ndarray, dt: float, tau_scale: float = 1.0, subtract: bool = False) -> dict:
    """``x`` [T, B, n_in] → {node: [T, B, N]}: spikes of spiking neurons, membranes of the others."""
    nodes, edges = flat(graph)
    cut = {(a, b) for a, b in edges if isinstance(nodes[a], SPIKING) and reaches(edges, b, a)}
    order, done = [], set()
    for _ in range(len(nodes)):
        for name in nodes:
            if name not in done and all(a in done for a, b in edges if b == name and (a, b) not in cut):
                order.append(name)
                done.add(name)
    steps, batch = x.shape[:2]
    state, history, last, record = {}, {}, {}, {}
    for k in range(steps):
        out = {}
        for name in order:
            node = nodes[name]
            ins = [i for i in ((last.get(a) if (a, b) in cut else out[a]) for a, b in edges if b == name)
                   if i is not None]  # None: a loop before step 0, or a node fed only by one
            y = sum(ins) if ins else None
            if isinstance(node, nir.Input):
                out[name] = x[k]
            elif isinstance(node, (nir.Affine, nir.Linear)):
                w = np.asarray(node.weight, float)
                y = np.zeros((batch, w.shape[1])) if y is None else y
                out[name] = y @ w.T + (np.asarray(node.bias, float) if isinstance(node, nir.Affine) else 0.0)
            elif y is None:
                out[name] = None
            elif isinstance(node, nir.Scale):
                out[name] = y * np.asarray(node.scale, float)
            elif isinstance(node, nir.Delay):
                lag = np.round(np.asarray(node.delay, float) / dt).astype(int)
                history.setdefault(name, []).append(y)
                past = history[name]
                out[name] = np.stack([past[k - d][..., i] if k - d >= 0 else np.zeros(batch)
                                      for i, d in enumerate(np.broadcast_to(lag, (y.shape[-1],)))], axis=-1)
            elif isinstance(node, NEURONS):
                out[name] = neuron(node, name, y, state, dt, tau_scale, subtract, batch)
                record.setdefault(name, []).append(out[name] if isinstance(node, SPIKING) else state[name][1].copy())
            else:  # Output, Flatten, inlined subgraph Input/Output
                out[name] = y
        last = out
    return {name: np.stack(values) for name, values in record.items()}


def neuron(node, name: str, y, state: dict, dt: float, tau_scale: float, subtract: bool, batch: int) -> np.ndarray:
    n = np.shape(y)[-1]
    if name not in state:
        leak = 0.0 if isinstance(node, (nir.IF, nir.I)) else param(node, "v_leak", n)
        state[name] = [np.zeros((batch, n)), np.zeros((batch, n)) + leak]
    i_syn, v = state[name]
    r = param(node, "r", n, 1.0)
    if isinstance(node, (nir.CubaLIF, nir.CubaLI)):
        tau_syn, tau_mem = param(node, "tau_syn", n) * tau_scale, param(node, "tau_mem", n) * tau_scale
        i_syn = i_syn + dt / tau_syn * (-i_syn + param(node, "w_in", n, 1.0) * y)
        v = v + dt / tau_mem * (param(node, "v_leak", n) - v + r * i_syn)
    elif isinstance(node, (nir.LIF, nir.LI)):
        v = v + dt / (param(node, "tau", n) * tau_scale) * (param(node, "v_leak", n) - v + r * y)
    else:
        v = v + dt * r * y
    z = np.zeros((batch, n))
    if isinstance(node, SPIKING):
        z = (v > param(node, "v_threshold", n)).astype(float)
        drop = param(node, "v_threshold", n) - param(node, "v_reset", n)
        v = np.where(z > 0, v - drop if subtract else param(node, "v_reset", n) + 0 * v, v)
    state[name] = [i_syn, v]
    return z
