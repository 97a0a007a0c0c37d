"""Bit-exact numpy emulator of the SynSense Xylo Audio 2 (SYNS61201) SNN core.

Written from the equations below, which were learnt by reading the vendor simulator xylosim 0.1.3
(``XyloIAFNeuron`` and ``XyloLayer`` of its ``v2`` module) and checked against it bit for bit by
``tests/test_xylo_emulator.py``; no vendor code is used or imported. Chip sizes follow the Rockpool
docs "Xylo in numbers" (docs/devices/quick-xylo/deploy_to_xylo.ipynb, synsense/rockpool commit
42cee1c): 16 inputs, 1000 hidden and 8 output neurons, at most 15 input spikes, 31 hidden spikes
and 1 output spike per channel and step, 8-bit weights, 16-bit states and thresholds, 4-bit
dashes (decay shifts), 2 synapses per hidden neuron and 1 per output neuron.

Notation: ``sat(x) = clip(x, -32768, 32767)``; ``x >> d`` is an arithmetic shift (floor);
``decay(x, d) = x >> d``, or ``sign(x)`` when that is 0 (a non-zero state moves at least 1 toward 0).
All states start at 0 for every batch entry. Step ``t`` runs, in this order:

1. input spikes of step t: for input c = 0, 1, ... in turn, ``n = min(count[t, c], 15)`` events,
   each ``i_s[post] = sat(i_s[post] + int16(w_in[c, post, s] << weight_shift_in))``;
2. hidden spikes of step t-1 (at most 31 each), pre-neuron p = 0, 1, ... in turn, to the hidden
   neurons through ``w_rec`` (``weight_shift_rec``), same rule, continuing from the state of 1.;
3. the same hidden spikes to the output neurons through ``w_out`` (``weight_shift_out``);
4. hidden neurons: ``i_s -= decay(i_s, dash_syn[s])`` for s = 0, 1;
   ``dv = int16(-decay(v, dash_mem))`` (so -(-32768) wraps to -32768);
   ``dv = sat(dv + i_0 + i_1)``; ``dv = sat(dv + bias)``; ``v = sat(v + dv)``;
   spikes ``n = min(31, v // threshold)`` for ``v >= 0`` (0 below), ``v -= n * threshold``;
   a threshold of 0 gives ``n = 31`` whenever ``v >= 0`` and leaves v unchanged;
5. output neurons: the same with one synaptic current, ``*_out`` parameters and at most 1 spike.

The bias is enabled on the chip when any bias is non-zero; adding all-zero biases changes nothing,
so the emulator always adds them. The int16 truncation in 1.-3. only bites for shifts >= 9.
Saturation makes the order of events matter; see ``_deliver`` for how that is kept exact and fast.
Not emulated: alias targets (``alias_target``, a hidden neuron copying its spikes to another) and
the hibernation flag, which changes no state.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from neurodeploy.errors import BackendError

MAX_INPUTS, MAX_HIDDEN, MAX_OUTPUTS = 16, 1000, 8
MAX_INPUT_SPIKES, MAX_HIDDEN_SPIKES, MAX_OUTPUT_SPIKES = 15, 31, 1
LO, HI = -(2**15), 2**15 - 1
_CHUNK = 2**22  # terms of one [batch rows, pre, post * syn] block of the saturation check


class XyloConfig(NamedTuple):
    """Integer configuration of the SNN core (all numpy arrays)."""

    weights_in: np.ndarray  # int8 [n_in, n_hidden, 2]   (pre, post, synapse)
    weights_rec: np.ndarray  # int8 [n_hidden, n_hidden, 2]
    weights_out: np.ndarray  # int8 [n_hidden, n_out]
    dash_mem: np.ndarray  # [n_hidden] 0..15
    dash_syn: np.ndarray  # [n_hidden, 2] 0..15
    threshold: np.ndarray  # [n_hidden] 0..32767
    bias: np.ndarray  # [n_hidden] int16
    dash_mem_out: np.ndarray  # [n_out]
    dash_syn_out: np.ndarray  # [n_out]
    threshold_out: np.ndarray  # [n_out]
    bias_out: np.ndarray  # [n_out]
    weight_shift_in: int = 0  # 0..15 (left shift of the stored weight)
    weight_shift_rec: int = 0
    weight_shift_out: int = 0


class XyloRecord(NamedTuple):
    """States after each step (after the neuron update); T steps, B batch entries."""

    spikes: np.ndarray  # uint8 [T, B, n_hidden] spike counts per step
    i_syn: np.ndarray  # int16 [T, B, n_hidden]
    i_syn2: np.ndarray  # int16 [T, B, n_hidden]
    v_mem: np.ndarray  # int16 [T, B, n_hidden]
    out_spikes: np.ndarray  # uint8 [T, B, n_out]
    i_syn_out: np.ndarray  # int16 [T, B, n_out]
    v_mem_out: np.ndarray  # int16 [T, B, n_out]


_RANGES = {"weights": (-128, 127), "dash": (0, 15), "threshold": (0, HI), "bias": (LO, HI)}


def _bad(name: str, problem: str, fix: str) -> BackendError:
    return BackendError(f"Xylo config field '{name}' {problem}", fix)


def check_config(config: XyloConfig) -> None:
    """Raise ``BackendError`` naming the first field of ``config`` with a bad shape, dtype or value.

    The chip's sizes (``MAX_INPUTS``, ``MAX_HIDDEN``, ``MAX_OUTPUTS``) are not enforced here, so
    larger networks can be emulated; design rules belong to the mapper.
    """
    w_in, w_out = np.asarray(config.weights_in), np.asarray(config.weights_out)
    if w_in.ndim != 3 or w_in.shape[2] != 2 or 0 in w_in.shape:
        raise _bad("weights_in", f"has shape {w_in.shape}, not (n_in, n_hidden, 2) with n_in, n_hidden >= 1",
                   "give input weights as [pre, post, synapse]")
    n_in, n_hid = w_in.shape[:2]
    n_out = w_out.shape[1] if w_out.ndim == 2 else -1  # 0 outputs: a readout on hidden neurons
    shapes = {"weights_in": (n_in, n_hid, 2), "weights_rec": (n_hid, n_hid, 2), "weights_out": (n_hid, n_out),
              "dash_mem": (n_hid,), "dash_syn": (n_hid, 2), "threshold": (n_hid,), "bias": (n_hid,),
              "dash_mem_out": (n_out,), "dash_syn_out": (n_out,), "threshold_out": (n_out,), "bias_out": (n_out,)}
    for name, shape in shapes.items():
        arr = np.asarray(getattr(config, name))
        if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
            raise _bad(name, f"has dtype {arr.dtype}, not an integer dtype", "quantise the network to integers")
        if arr.shape != shape:
            want = str(shape).replace("-1", "n_out >= 0")
            raise _bad(name, f"has shape {arr.shape}, expected {want}", "make the config's shapes consistent")
        lo, hi = next(r for key, r in _RANGES.items() if name.startswith(key))
        if arr.size and (arr.min() < lo or arr.max() > hi):
            raise _bad(name, f"has values in [{arr.min()}, {arr.max()}], outside [{lo}, {hi}]",
                       f"quantise {name} to {lo}..{hi}")
    for name in ("weight_shift_in", "weight_shift_rec", "weight_shift_out"):
        shift = getattr(config, name)
        if isinstance(shift, (bool, np.bool_)) or not isinstance(shift, (int, np.integer)) or not 0 <= shift <= 15:
            raise _bad(name, f"is {shift!r}, not an integer in 0..15", "choose a weight shift of 0..15")


class _Matrix(NamedTuple):
    """A weight matrix as delivery uses it: only its pre-neurons (rows) and targets (columns) with a non-zero
    weight, since a zero weight changes no state (not even under saturation)."""

    rows: np.ndarray  # pre-neuron ids, ascending (the order events are delivered in)
    cols: np.ndarray  # flattened (post, synapse) ids
    w: np.ndarray  # int32 [rows, cols]: int16(w << shift)
    sides: np.ndarray  # float64 [rows, 2 cols]: its positive and negative parts side by side


def _shifted(weights: np.ndarray, shift: int) -> _Matrix:
    """``int16(w << shift)`` as [pre, post * syn], restricted to its non-zero rows and columns."""
    w: np.ndarray = np.asarray(weights).astype(np.int64)
    w = (w << int(shift)).astype(np.int16).astype(np.int32).reshape(w.shape[0], -1)
    rows, cols = np.flatnonzero(w.any(axis=1)), np.flatnonzero(w.any(axis=0))
    w = w[np.ix_(rows, cols)]
    return _Matrix(rows, cols, w, np.concatenate([np.maximum(w, 0), np.minimum(w, 0)], axis=1).astype(np.float64))


def _deliver(state: np.ndarray, counts: np.ndarray, matrix: _Matrix) -> np.ndarray:
    """Deliver ``counts`` [B, pre] events through ``weights`` to ``state`` [B, post, syn], saturating.

    Exact semantics: pre-neurons in ascending order, each event ``i = sat(i + w)``. Fast path: the
    plain sum ``i + sum_p n_p w_p`` (a float64 matmul of integers below 2**53, hence exact), valid
    whenever no running sum ``i + sum_{p <= k} n_p w_p`` leaves the int16 range. Within one
    pre-neuron all ``n_p`` events share a sign, so the running sum is monotonic between pre-neuron
    boundaries and checking it there suffices. Entries whose bound ``i + sum of positive (negative)
    terms`` stays in range cannot saturate; the others get the running sums computed, and those that
    do leave the range take the slow path: ``i = sat(i + n_p w_p)`` pre-neuron by pre-neuron, exact
    because ``n`` same-sign saturating adds equal one saturating add of their sum.
    """
    counts = counts[:, matrix.rows]
    if not counts.any():
        return state
    w_int, w_sides = matrix.w, matrix.sides
    batch, pre = counts.shape
    whole = state.reshape(batch, -1)
    flat = whole[:, matrix.cols]
    pos, neg = np.split((counts.astype(np.float64) @ w_sides).astype(np.int64), 2, axis=1)
    out, top, bottom = flat + pos + neg, flat + pos, flat + neg
    maybe = (top > HI) | (bottom < LO)
    rows, cols = np.flatnonzero(maybe.any(axis=1)), np.flatnonzero(maybe.any(axis=0))
    w_cols = w_int[:, cols]
    step = max(1, _CHUNK // (pre * max(cols.size, 1)))
    for k in range(0, rows.size, step):  # blocks [batch rows, pre, columns] of at most _CHUNK terms
        r = rows[k:k + step]
        terms = counts[r].astype(np.int32)[:, :, None] * w_cols[None]  # n * w fits in int32
        start = flat[r][:, cols]
        running = start[:, None] + np.cumsum(terms, axis=1)
        b, j = np.nonzero((running.max(axis=1) > HI) | (running.min(axis=1) < LO))
        if b.size:  # slow path, only for the entries that saturate
            terms, x = terms.transpose(1, 0, 2)[:, b, j], start[b, j]  # [pre, K]
            for p in np.flatnonzero(terms.any(axis=1)):
                np.clip(np.add(x, terms[p], out=x), LO, HI, out=x)
            out[r[b], cols[j]] = x
    whole = whole.copy()
    whole[:, matrix.cols] = out
    return whole.reshape(state.shape)


def _decay(x: np.ndarray, dash: np.ndarray) -> np.ndarray:
    """``x >> dash``, or ``sign(x)`` where that is 0."""
    d = x >> dash
    return np.where(d == 0, np.sign(x), d)


def _neurons(i_syn: np.ndarray, v: np.ndarray, dash_syn: np.ndarray, dash_mem: np.ndarray, bias: np.ndarray,
             threshold: np.ndarray, max_spikes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One neuron update (step 4/5 of the module docstring); returns new i_syn, v and spike counts."""
    i_syn = i_syn - _decay(i_syn, dash_syn)
    dv = -_decay(v, dash_mem)
    dv[dv == 2**15] = LO  # the int16 wrap of -(-32768)
    dv = np.clip(dv + i_syn.sum(axis=-1), LO, HI)
    v = np.clip(v + np.clip(dv + bias, LO, HI), LO, HI)
    n = np.where(threshold > 0, np.clip(v // np.maximum(threshold, 1), 0, max_spikes),
                 np.where(v >= 0, max_spikes, 0))
    return i_syn, v - n * threshold, n


def evolve(config: XyloConfig, input_counts: np.ndarray) -> XyloRecord:
    """Run ``input_counts`` [T, B, n_in] (non-negative ints) through the core, each batch entry from zero state."""
    check_config(config)
    x = np.asarray(input_counts)
    n_in, n_hid = np.shape(config.weights_in)[:2]
    n_out = np.shape(config.weights_out)[1]
    if x.ndim != 3 or x.shape[2] != n_in:
        raise BackendError(f"Xylo input counts have shape {x.shape}, expected (T, B, {n_in})",
                           "give input spike counts as [time, batch, input channel]")
    if not (x.dtype == np.bool_ or np.issubdtype(x.dtype, np.integer)) or (x.size and x.min() < 0):
        raise BackendError("Xylo input counts must be non-negative integers", "give spike counts, not rates")
    steps, batch = x.shape[:2]
    counts = np.minimum(x.astype(np.int64), MAX_INPUT_SPIKES)
    w_in = _shifted(config.weights_in, config.weight_shift_in)
    w_rec = _shifted(config.weights_rec, config.weight_shift_rec)
    w_out = _shifted(config.weights_out, config.weight_shift_out)
    p = {k: np.asarray(v).astype(np.int64) for k, v in config._asdict().items() if not k.startswith("weight")}
    i_hid, v_hid = np.zeros((batch, n_hid, 2), np.int64), np.zeros((batch, n_hid), np.int64)
    i_out, v_out = np.zeros((batch, n_out, 1), np.int64), np.zeros((batch, n_out), np.int64)
    s_hid = np.zeros((batch, n_hid), np.int64)
    rec = XyloRecord(*(np.zeros((steps, batch, n), dt) for n, dt in (
        (n_hid, np.uint8), (n_hid, np.int16), (n_hid, np.int16), (n_hid, np.int16),
        (n_out, np.uint8), (n_out, np.int16), (n_out, np.int16))))
    for t in range(steps):
        i_hid = _deliver(i_hid, counts[t], w_in)
        i_hid = _deliver(i_hid, s_hid, w_rec)  # s_hid <= 31 already
        i_out = _deliver(i_out, s_hid, w_out)
        i_hid, v_hid, s_hid = _neurons(i_hid, v_hid, p["dash_syn"], p["dash_mem"], p["bias"], p["threshold"],
                                       MAX_HIDDEN_SPIKES)
        i_out, v_out, s_out = _neurons(i_out, v_out, p["dash_syn_out"][:, None], p["dash_mem_out"], p["bias_out"],
                                       p["threshold_out"], MAX_OUTPUT_SPIKES)
        rec.spikes[t], rec.i_syn[t], rec.i_syn2[t], rec.v_mem[t] = s_hid, i_hid[..., 0], i_hid[..., 1], v_hid
        rec.out_spikes[t], rec.i_syn_out[t], rec.v_mem_out[t] = s_out, i_out[..., 0], v_out
    return rec
