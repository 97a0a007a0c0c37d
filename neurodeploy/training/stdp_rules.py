r"""Local learning rules of the unsupervised STDP network (seed ``003_7854d67f35f77eb1.txt``): spike traces,
the postsynaptic event-based rule, pair STDP, weight normalisation and 6-bit weight quantisation.

Pure numpy functions of (weights, traces, spikes); :mod:`neurodeploy.training.stdp` steps them in time.
Shapes: weights ``w [I, N]`` (input i → excitatory neuron j), presynaptic traces ``x_pre [B, I]``,
postsynaptic traces ``x_post [B, N]``, spikes ``[B, ·]`` as 0/1 floats; updates are summed over the batch B.

**Traces** (one step of length :math:`\Delta t`; the update of a step reads the traces *before* that
step's spikes are added, so a pre and a post spike of the same step form no pair):

.. math::
    x \leftarrow x\, e^{-\Delta t/\tau}, \qquad
    x \leftarrow \begin{cases} 1 & \text{nearest-spike trace, on a spike} \\
                               x + 1 & \text{all-to-all trace, on a spike} \end{cases}

**Postsynaptic event-based rule** (the seed's slide "Postsynaptic event based STDP": on a post spike all
incoming weights of that neuron change; the target :math:`x_{tar}` is its built-in weight decay, which
empties weights from blank pixels). On a spike of neuron j, for every input i (Diehl & Cook 2015's form):

.. math::
    \Delta w_{ij} = \eta_{post}\, (x^{pre}_i - x_{tar})\, (w_{max} - w_{ij})^{\mu}

**Pair STDP** (the seed's "time window" rule): causal pairs potentiate on the post spike, acausal pairs
depress on the pre spike,

.. math::
    \Delta w_{ij} = \eta_{+}\, x^{pre}_i\, (w_{max} - w_{ij})^{\mu} \;\text{on post } j, \qquad
    \Delta w_{ij} = -\eta_{-}\, x^{post}_j\, w_{ij}^{\mu} \;\text{on pre } i,

so that with :math:`\mu = 0` a single pair at :math:`\Delta t = t_{post} - t_{pre}` gives
:math:`\eta_+ e^{-\Delta t/\tau_+}` for :math:`\Delta t > 0` and :math:`-\eta_- e^{\Delta t/\tau_-}` for
:math:`\Delta t < 0`.

**Bounds and 6 bits.** Weights are clipped to :math:`[0, w_{max}]`; quantised, they lie on the grid
:math:`w_{max} k / (2^{bits} - 1)`, :math:`k = 0 … 2^{bits}-1` (63 steps for BSS-2's 6-bit synapses,
``../shared/reference/bss2.md`` §1.7), rounded to the nearest level or stochastically
(:math:`k = \lfloor w/\delta + u\rfloor`, :math:`u \sim U[0, 1)`, unbiased: :math:`E[k\delta] = w`).
"""

from __future__ import annotations

import numpy as np

from ..errors import RecipeError

ROUNDINGS = ("nearest", "stochastic")


def decay_trace(trace: np.ndarray, dt_s: float, tau_s: float) -> np.ndarray:
    r"""One step of exponential decay, :math:`x\,e^{-\Delta t/\tau}`."""
    return trace * np.exp(-dt_s / tau_s)


def bump_trace(trace: np.ndarray, spikes: np.ndarray, nearest: bool) -> np.ndarray:
    """Add this step's spikes: set to 1 (``nearest``) or add 1 (all-to-all)."""
    return np.where(spikes > 0, 1.0, trace) if nearest else trace + spikes


def event_update(w: np.ndarray, x_pre: np.ndarray, post: np.ndarray, eta_post: float, x_tar: float,
                 w_max: float, mu: float) -> np.ndarray:
    r""":math:`\Delta w_{ij} = \eta_{post} \sum_b s^{post}_{bj} (x^{pre}_{bi} - x_{tar}) (w_{max} - w_{ij})^{\mu}`."""
    drive = x_pre.T @ post - x_tar * post.sum(axis=0, keepdims=True)
    return eta_post * drive * np.clip(w_max - w, 0.0, None) ** mu


def pair_update(w: np.ndarray, x_pre: np.ndarray, x_post: np.ndarray, pre: np.ndarray, post: np.ndarray,
                eta_plus: float, eta_minus: float, w_max: float, mu: float) -> np.ndarray:
    r""":math:`\Delta w = \eta_+ (x^{pre})^T s^{post} (w_{max}-w)^{\mu} - \eta_- (s^{pre})^T x^{post} w^{\mu}`,
    summed over the batch."""
    potentiation = eta_plus * (x_pre.T @ post) * np.clip(w_max - w, 0.0, None) ** mu
    depression = eta_minus * (pre.T @ x_post) * np.clip(w, 0.0, None) ** mu
    return potentiation - depression


def normalise_columns(w: np.ndarray, mask: np.ndarray, column_sum: np.ndarray, w_max: float) -> np.ndarray:
    r"""Scale each neuron's incoming weights to :math:`\sum_i w_{ij} = S_j` (Diehl & Cook's normalisation),
    then clip to :math:`[0, w_{max}]`; ``mask`` zeroes inputs outside a neuron's patch."""
    w = w * mask
    totals = w.sum(axis=0, keepdims=True)
    scaled = w * (column_sum[None, :] / np.where(totals > 0, totals, 1.0))
    return np.clip(scaled, 0.0, w_max)


def quantise(w: np.ndarray, w_max: float, bits: int, rounding: str, rng: np.random.Generator) -> np.ndarray:
    r"""Weights on the grid :math:`w_{max} k/(2^{bits}-1)`, :math:`k \in [0, 2^{bits}-1]` (see the module text)."""
    if rounding not in ROUNDINGS:
        raise RecipeError(f"unknown weight rounding {rounding!r}", f"use one of {list(ROUNDINGS)}")
    levels = 2 ** bits - 1
    k = np.clip(w, 0.0, w_max) / w_max * levels
    k = np.floor(k + rng.random(k.shape)) if rounding == "stochastic" else np.rint(k)
    return np.clip(k, 0, levels) * (w_max / levels)


def weight_codes(w: np.ndarray, w_max: float, bits: int = 6) -> np.ndarray:
    """The integer synapse codes ``0 … 2**bits - 1`` of weights (nearest level): what a chip's synapses hold."""
    levels = 2 ** bits - 1
    return np.rint(np.clip(w, 0.0, w_max) / w_max * levels).astype(np.int64)
