r"""Unsupervised STDP with adaptive thresholds and lateral inhibition (seed ``003_7854d67f35f77eb1.txt``, after
Diehl & Cook 2015), on images in [0, 1] such as scikit-learn's 8×8 digits.

**Input.** Each pixel :math:`p_i \in [0, 1]` is a Poisson spike train of rate :math:`r_{max} p_i` for
``duration_s``, drawn per step as :math:`s^{in}_i = [u < r_{max} p_i \Delta t]` from a seeded generator. When a
sample makes fewer than ``min_spikes`` excitatory spikes, it is presented again with the rate raised by
``boost_hz`` (at most ``max_boosts`` times; Diehl & Cook's rule).

**Excitatory neurons** (the seed's LIF with instantaneous current and reset to zero; rest = reset = 0):

.. math::
    v_j \leftarrow \max\!\big(v_{min},\; v_j e^{-\Delta t/\tau_{mem}} + \sum_i w_{ij} s^{in}_i
        - w_{inh} \textstyle\sum_{k \ne j,\, g(k) = g(j)} s_k^{(t-1)}\big), \qquad
    s_j = [v_j > v_{th} + \theta_j], \qquad v_j \leftarrow 0 \text{ if } s_j

**Adaptive threshold** (the seed's ``thr ← thr − α·thr + β·S`` as an adaptive part on top of the base
threshold :math:`v_{th}`; α = :math:`\Delta t/\tau_\theta` is the seed's leak, β = ``theta_gain`` its gain):
:math:`\theta_j \leftarrow \theta_j (1 - \Delta t/\tau_\theta) + \beta \sum_b s_{bj}`. It adapts while
learning and is frozen for label assignment and testing (as Diehl & Cook do).

**Lateral inhibition as a hollow projection.** The seed wires excitatory → inhibitory one-to-one (identity) and
inhibitory → excitatory all-but-self (hollow matrix). An inhibitory neuron driven one-to-one strongly
enough to fire on every spike of its partner is a relay, so the pair of projections equals one hollow
inhibitory lateral projection :math:`-w_{inh}(\mathbf 1 \mathbf 1^T - I)` with one step of latency (the
relay's hop). That form is used here because it needs no inhibitory circuits: 400 excitatory neurons
take 400 of BSS-2's 512 neuron circuits, where the explicit population would need 800.
``inhibit_self`` adds the diagonal (a neuron also inhibits itself one step after its reset, which acts
as a longer refractory period): the form one shared inhibitory synapse row per column realises on the chip.
:math:`v_{min}` plays the inhibitory reversal potential of Diehl & Cook's conductance synapses.
With patches, neurons compete only within their patch group :math:`g`.

**Patches** (the seed's "patching"): with ``patch_size`` p, neurons are dealt round-robin to the p×p
windows at stride ``patch_stride`` (overlapping when the stride is below p) and see only their window.

**Learning**: :mod:`neurodeploy.training.stdp_rules` (postsynaptic event-based rule, or pair STDP), online
at every step, weights clipped to :math:`[0, w_{max}]` and, with ``weight_bits``, rounded onto the
:math:`2^{bits}` levels after every update (what a plasticity processor holding 6-bit synapses would
store). After each presentation each neuron's incoming weights are normalised to sum to
``weight_sum`` × (its patch's share of the inputs).

**Labels** (after training): each neuron takes the class with the highest mean spike count over the
training samples; a neuron that never fires gets label −1 and takes no part. A sample is predicted as the
class whose labelled neurons have the highest mean spike count.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np

from ..errors import RecipeError
from .stdp_rules import (ROUNDINGS, bump_trace, decay_trace, event_update, normalise_columns, pair_update,
                         quantise)

RULES = ("event", "pair")


@dataclass(frozen=True)
class StdpSettings:
    """Network and learning settings; times in seconds, rates in Hz, potentials in model units (rest = reset = 0,
    base threshold ``v_th``). Diehl & Cook 2015's values, where they differ, are in brackets."""

    n_exc: int = 400                # excitatory neurons
    epochs: int = 3                 # passes over the training set
    batch_size: int = 1             # samples presented in parallel with shared weights (1: online learning)
    duration_s: float = 0.1         # presentation time per sample [0.35]
    dt_s: float = 1e-3              # simulation step [0.5 ms]
    max_rate_hz: float = 200.0      # Poisson rate of a pixel of intensity 1 [63.75]
    min_spikes: int = 20            # fewer excitatory spikes: present again, brighter [5]
    boost_hz: float = 100.0         # rate added per repetition [32]
    max_boosts: int = 5             # repetitions at most
    tau_mem_s: float = 0.02         # membrane time constant [0.1]
    v_th: float = 1.0               # base threshold
    v_min: float = -1.0             # lower bound of the membrane (inhibitory reversal)
    theta_gain: float = 0.05        # seed's β: threshold increment per spike [0.05 mV of a 13 mV gap]
    tau_theta_s: float = 1e4        # seed's α = dt / tau_theta_s, threshold decay [1e4 s]
    w_inh: float = 2.0              # lateral inhibition per spike
    inhibit_self: bool = False      # True: a full (not hollow) lateral matrix, one chip row per column
    rule: str = "event"             # "event" (postsynaptic event-based) or "pair" (pair STDP)
    eta_post: float = 0.05          # event rule and pair rule's potentiation rate [0.01]
    eta_pre: float = 0.0001         # pair rule's depression rate [0.0001]
    x_tar: float = 0.4              # event rule's target trace (the weight decay) [0.4]
    mu: float = 0.2                 # weight dependence exponent [0.2]
    tau_pre_s: float = 0.02         # presynaptic trace [0.02]
    tau_post_s: float = 0.02        # postsynaptic trace (pair rule) [0.02]
    nearest_trace: bool = True      # traces set to 1 on a spike (else +1)
    w_max: float = 1.0              # weights in [0, w_max]
    w_init: float = 0.3             # initial weights uniform in [0, w_init · w_max] [0.3]
    weight_sum: float = 6.4         # per-neuron sum of weights over all inputs, 0: off [78 for 784 inputs]
    weight_bits: int = 0            # 0: float weights; 6: quantised after every update (BSS-2)
    rounding: str = "stochastic"    # "nearest" or "stochastic" rounding onto the grid
    patch_size: int = 0             # 0: whole image; p: p×p windows
    patch_stride: int = 1           # window stride in pixels
    image_side: int = 8             # inputs form an image_side × image_side image

    def __post_init__(self) -> None:
        positive = {"n_exc": self.n_exc, "epochs": self.epochs, "batch_size": self.batch_size,
                    "duration_s": self.duration_s, "dt_s": self.dt_s, "max_rate_hz": self.max_rate_hz,
                    "tau_mem_s": self.tau_mem_s, "v_th": self.v_th, "tau_theta_s": self.tau_theta_s,
                    "tau_pre_s": self.tau_pre_s, "tau_post_s": self.tau_post_s, "w_max": self.w_max,
                    "image_side": self.image_side, "patch_stride": self.patch_stride}
        for name, value in positive.items():
            if not value > 0:
                raise RecipeError(f"stdp setting {name} = {value} must be > 0", f"give {name} a positive value")
        non_negative = {"min_spikes": self.min_spikes, "boost_hz": self.boost_hz, "max_boosts": self.max_boosts,
                        "theta_gain": self.theta_gain, "w_inh": self.w_inh, "eta_post": self.eta_post,
                        "eta_pre": self.eta_pre, "x_tar": self.x_tar, "mu": self.mu, "w_init": self.w_init,
                        "weight_sum": self.weight_sum, "weight_bits": self.weight_bits,
                        "patch_size": self.patch_size}
        for name, value in non_negative.items():
            if not value >= 0:
                raise RecipeError(f"stdp setting {name} = {value} must be >= 0", f"give {name} a value >= 0")
        if self.rule not in RULES:
            raise RecipeError(f"unknown stdp rule {self.rule!r}", f"use one of {list(RULES)}")
        if self.rounding not in ROUNDINGS:
            raise RecipeError(f"unknown weight rounding {self.rounding!r}", f"use one of {list(ROUNDINGS)}")
        if self.v_min > 0:
            raise RecipeError(f"stdp setting v_min = {self.v_min} is above the reset (0)", "give v_min <= 0")
        if self.patch_size > self.image_side:
            raise RecipeError(f"patch_size {self.patch_size} exceeds the image side {self.image_side}",
                              f"use a patch_size of at most {self.image_side}, or 0 for the whole image")
        if self.weight_bits > 16:
            raise RecipeError(f"weight_bits = {self.weight_bits} is more than 16", "use 6 for BSS-2, 0 for floats")

    @property
    def steps(self) -> int:
        return max(1, int(round(self.duration_s / self.dt_s)))


class StdpResult(NamedTuple):
    """A trained network: ``weights [inputs, n_exc]``, frozen thresholds ``theta [n_exc]``, patch ``mask``
    ``[inputs, n_exc]``, patch ``groups [n_exc]``, ``labels [n_exc]`` (−1: never fired) and per-epoch ``history``."""

    settings: StdpSettings
    weights: np.ndarray
    theta: np.ndarray
    mask: np.ndarray
    groups: np.ndarray
    labels: np.ndarray
    seed: int
    history: list[dict[str, Any]]


def patch_layout(settings: StdpSettings) -> tuple[np.ndarray, np.ndarray]:
    """``mask [side², n_exc]`` (1 inside a neuron's window) and ``groups [n_exc]`` (its window's index)."""
    side, n = settings.image_side, settings.n_exc
    if settings.patch_size == 0:
        return np.ones((side * side, n)), np.zeros(n, dtype=np.int64)
    p, stride = settings.patch_size, settings.patch_stride
    starts = range(0, side - p + 1, stride)
    windows = [(r, c) for r in starts for c in starts]
    if n < len(windows):
        raise RecipeError(f"{len(windows)} patches need at least as many neurons, n_exc is {n}",
                          f"raise n_exc to {len(windows)} or the patch_stride")
    groups = np.arange(n) % len(windows)
    mask = np.zeros((side, side, n))
    for j, g in enumerate(groups):
        r, c = windows[g]
        mask[r:r + p, c:c + p, j] = 1.0
    return mask.reshape(side * side, n), groups


def _lateral(post: np.ndarray, onehot: np.ndarray, inhibit_self: bool) -> np.ndarray:
    """Spikes of the other neurons of each neuron's group ``[B, N]`` (and its own with ``inhibit_self``)."""
    same_group = (post @ onehot) @ onehot.T
    return same_group if inhibit_self else same_group - post


def present(w: np.ndarray, theta: np.ndarray, x: np.ndarray, settings: StdpSettings, mask: np.ndarray,
            groups: np.ndarray, rng: np.random.Generator, learn: bool,
            rate_hz: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Present images ``x [B, inputs]`` once: spike counts ``[B, n_exc]`` and the (learned) weights and thresholds.
    ``learn=False`` leaves ``w`` and ``theta`` untouched."""
    s = settings
    batch, n = x.shape[0], w.shape[1]
    onehot = np.eye(int(groups.max()) + 1)[groups]
    p_in = np.clip(x * (rate_hz or s.max_rate_hz) * s.dt_s, 0.0, 1.0)
    leak = np.exp(-s.dt_s / s.tau_mem_s)
    theta_keep = 1.0 - s.dt_s / s.tau_theta_s
    v = np.zeros((batch, n))
    previous = np.zeros((batch, n))
    counts = np.zeros((batch, n))
    x_pre = np.zeros_like(x, dtype=np.float64)
    x_post = np.zeros((batch, n))
    w = w.copy() if learn else w
    theta = theta.copy() if learn else theta
    for _ in range(s.steps):
        pre = (rng.random(x.shape) < p_in).astype(np.float64)
        v = v * leak + pre @ w
        if s.w_inh > 0:
            v -= s.w_inh * _lateral(previous, onehot, s.inhibit_self)
        v = np.maximum(v, s.v_min)
        post = (v > s.v_th + theta).astype(np.float64)
        v = np.where(post > 0, 0.0, v)
        counts += post
        previous = post
        if not learn:
            continue
        x_pre = decay_trace(x_pre, s.dt_s, s.tau_pre_s)
        if s.rule == "pair":
            x_post = decay_trace(x_post, s.dt_s, s.tau_post_s)
        changed = False
        if post.any():
            if s.rule == "event":
                w = w + event_update(w, x_pre, post, s.eta_post, s.x_tar, s.w_max, s.mu) * mask
            else:
                w = w + pair_update(w, x_pre, x_post, np.zeros_like(pre), post, s.eta_post, 0.0, s.w_max,
                                    s.mu) * mask
            changed = True
        if s.rule == "pair" and pre.any() and s.eta_pre > 0:
            w = w + pair_update(w, x_pre, x_post, pre, np.zeros_like(post), 0.0, s.eta_pre, s.w_max, s.mu) * mask
            changed = True
        if changed:
            w = np.clip(w, 0.0, s.w_max)
            if s.weight_bits:
                w = quantise(w, s.w_max, s.weight_bits, s.rounding, rng)
        x_pre = bump_trace(x_pre, pre, s.nearest_trace)
        if s.rule == "pair":
            x_post = bump_trace(x_post, post, s.nearest_trace)
        theta = theta * theta_keep + s.theta_gain * post.sum(axis=0)
    return counts, w, theta


def _column_sums(settings: StdpSettings, mask: np.ndarray) -> np.ndarray:
    return settings.weight_sum * mask.sum(axis=0) / mask.shape[0]


def _normalise(w: np.ndarray, settings: StdpSettings, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if settings.weight_sum > 0:
        w = normalise_columns(w, mask, _column_sums(settings, mask), settings.w_max)
        if settings.weight_bits:
            w = quantise(w, settings.w_max, settings.weight_bits, settings.rounding, rng)
    return w


def present_boosted(w: np.ndarray, theta: np.ndarray, x: np.ndarray, settings: StdpSettings, mask: np.ndarray,
                    groups: np.ndarray, rng: np.random.Generator,
                    learn: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`present`, repeating the samples with fewer than ``min_spikes`` spikes at a rate raised by
    ``boost_hz`` each time (at most ``max_boosts`` times); the counts are those of each sample's last presentation."""
    counts, w, theta = present(w, theta, x, settings, mask, groups, rng, learn)
    rate = settings.max_rate_hz
    for _ in range(settings.max_boosts):
        quiet = counts.sum(axis=1) < settings.min_spikes
        if not quiet.any() or settings.boost_hz == 0:
            break
        rate += settings.boost_hz
        again, w, theta = present(w, theta, x[quiet], settings, mask, groups, rng, learn, rate_hz=rate)
        counts[quiet] = again
    return counts, w, theta


def responses(result: StdpResult, x: np.ndarray, seed: int = 0, chunk: int = 512) -> np.ndarray:
    """Spike counts ``[N, n_exc]`` of images ``x [N, inputs]``, learning off, thresholds frozen."""
    rng = np.random.default_rng(seed)
    parts = [present_boosted(result.weights, result.theta, x[i:i + chunk], result.settings, result.mask,
                             result.groups, rng, learn=False)[0] for i in range(0, len(x), chunk)]
    return np.concatenate(parts) if parts else np.zeros((0, result.weights.shape[1]))


def assign_labels(counts: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """Each neuron's class: the highest mean spike count over the samples of a class; −1 for a neuron that
    never fired."""
    means = np.stack([counts[y == c].mean(axis=0) if (y == c).any() else np.zeros(counts.shape[1])
                      for c in range(n_classes)])
    labels = means.argmax(axis=0)
    return np.where(counts.sum(axis=0) > 0, labels, -1)


def predict_from_counts(counts: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Per sample, the class whose labelled neurons have the highest mean spike count (a class without
    neurons scores −1)."""
    scores = np.full((counts.shape[0], n_classes), -1.0)
    for c in range(n_classes):
        members = labels == c
        if members.any():
            scores[:, c] = counts[:, members].mean(axis=1)
    return scores.argmax(axis=1)


def train_stdp(settings: StdpSettings, x_train: np.ndarray, y_train: np.ndarray, seed: int = 0,
               n_classes: int = 10, progress: bool = False) -> StdpResult:
    """Unsupervised training on ``x_train [N, side²]`` in [0, 1], then label assignment with ``y_train``."""
    x_train = np.asarray(x_train, dtype=np.float64)
    if x_train.ndim != 2 or x_train.shape[1] != settings.image_side ** 2:
        raise RecipeError(f"stdp needs images [N, {settings.image_side ** 2}], got {list(x_train.shape)}",
                          "flatten the images, or set image_side")
    rng = np.random.default_rng(seed)
    mask, groups = patch_layout(settings)
    w = rng.uniform(0.0, settings.w_init * settings.w_max, mask.shape) * mask
    w = _normalise(w, settings, mask, rng)
    theta = np.zeros(settings.n_exc)
    history: list[dict[str, Any]] = []
    for epoch in range(settings.epochs):
        start, spikes = time.perf_counter(), 0.0
        order = rng.permutation(len(x_train))
        for i in range(0, len(order), settings.batch_size):
            counts, w, theta = present_boosted(w, theta, x_train[order[i:i + settings.batch_size]], settings, mask,
                                               groups, rng, learn=True)
            w = _normalise(w, settings, mask, rng)
            spikes += float(counts.sum())
        history.append({"epoch": epoch + 1, "seconds": time.perf_counter() - start,
                        "spikes_per_sample": spikes / len(x_train), "theta_mean": float(theta.mean())})
        if progress:
            print(f"epoch {epoch + 1}: {history[-1]}", flush=True)
    result = StdpResult(settings, w, theta, mask, groups, np.full(settings.n_exc, -1), seed, history)
    counts = responses(result, x_train, seed=seed + 1)
    return result._replace(labels=assign_labels(counts, np.asarray(y_train), n_classes))


def evaluate(result: StdpResult, x: np.ndarray, y: np.ndarray, seed: int = 0) -> float:
    """Accuracy of label assignment on images ``x`` with labels ``y``."""
    counts = responses(result, np.asarray(x, dtype=np.float64), seed=seed)
    n_classes = int(max(result.labels.max(), np.asarray(y).max())) + 1
    return float((predict_from_counts(counts, result.labels, n_classes) == np.asarray(y)).mean())


def with_weight_bits(result: StdpResult, bits: int = 6) -> StdpResult:
    """The network with its weights rounded to the nearest of ``2**bits`` levels in [0, w_max] (labels kept):
    a float-trained network as a chip would hold it."""
    rng = np.random.default_rng(0)  # nearest rounding draws nothing
    return result._replace(weights=quantise(result.weights, result.settings.w_max, bits, "nearest", rng))


def receptive_fields(result: StdpResult) -> np.ndarray:
    """Each neuron's incoming weights as an image ``[n_exc, side, side]``."""
    side = result.settings.image_side
    return result.weights.T.reshape(-1, side, side).copy()


def settings_dict(settings: StdpSettings) -> dict[str, Any]:
    """The settings as a plain dict (for printing and JSON)."""
    return asdict(settings)
