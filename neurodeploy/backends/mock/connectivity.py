"""Effective connectivity from a chip configuration, derived only from what the chip receives.

For every route (source, hemisphere h, driver d, label ℓ) and both rows r of driver d, a synapse in
column c delivers :math:`\\sigma_r\\, w_{h,r,c}\\, [\\ell_{h,r,c} = \\ell]` LSB to circuit (h, c), where
:math:`\\sigma_r` is +1 for an excitatory row, −1 for an inhibitory one and 0 for a disabled one
(bss2.md §1.3). Each circuit scales its LSB by its synaptic gain (CADC per LSB); the circuits of a
merged neuron share one membrane, so their inputs add.
"""

from __future__ import annotations

import numpy as np

ROW_SIGN = np.array([0.0, 1.0, -1.0])  # row mode 0 disabled, 1 excitatory, 2 inhibitory


def route_currents(routes: np.ndarray, weight: np.ndarray, label: np.ndarray, row_mode: np.ndarray) -> np.ndarray:
    """Per route, the signed LSB each circuit receives: ``[n_routes, hemispheres * columns]``.

    ``weight`` may be float: a chip's effective weights with per-synapse variation.
    """
    hemispheres, _, columns = weight.shape
    out = np.zeros((len(routes), hemispheres * columns))
    if len(routes) == 0:
        return out
    h, d, ell = (np.asarray(routes[:, i], np.int64) for i in (1, 2, 3))
    block = h[:, None] * columns + np.arange(columns)  # each route writes its hemisphere's columns
    for r in (2 * d, 2 * d + 1):  # top row, then bottom row: the order the sums have always had
        sign = ROW_SIGN[row_mode[h, r]][:, None]
        out[np.arange(len(routes))[:, None], block] += sign * weight[h, r] * (label[h, r] == ell[:, None])
    return out


def membership(neuron_circuits: np.ndarray, n_circuits: int) -> np.ndarray:
    """``[n_circuits, n_neurons]``: 1 where a circuit belongs to a (merged) logical neuron."""
    member = np.zeros((n_circuits, len(neuron_circuits)))
    for n, circuits in enumerate(neuron_circuits):
        member[circuits[circuits >= 0], n] = 1.0
    return member


def route_matrix(currents: np.ndarray, gain: np.ndarray, member: np.ndarray) -> np.ndarray:
    """``[n_routes, n_neurons]``: membrane-input current (CADC) one event on each route causes."""
    scaled = currents * gain
    if member.shape[1] and (member.sum(0) == 1).all():  # one circuit per neuron: pick its column
        return scaled[:, member.argmax(0)]
    return scaled @ member


def source_matrix(routes: np.ndarray, n_sources: int, per_route: np.ndarray) -> np.ndarray:
    """``[n_sources, n_neurons]``: the routes of each source added up (one spike travels all its routes)."""
    per_source = np.zeros((n_sources, per_route.shape[1]))
    if len(routes) == 0:
        return per_source
    # Each source's routes added in route order, as np.add.at would (same rounding), but the j-th
    # route of every source at once: a source appears once per pass, so fancy-index += is exact.
    order = np.argsort(routes[:, 0], kind="stable")
    source = routes[order, 0]
    starts = np.flatnonzero(np.r_[True, source[1:] != source[:-1]])
    rank = np.arange(len(source)) - np.repeat(starts, np.diff(np.r_[starts, len(source)]))
    for j in range(int(rank.max()) + 1):
        pick = rank == j
        per_source[source[pick]] += per_route[order[pick]]
    return per_source
