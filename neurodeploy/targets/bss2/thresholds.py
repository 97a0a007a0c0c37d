r"""Threshold offsets: a layer's thresholds moved from where the mapping put them, as a plasticity program's
homeostasis writes them (the PPU rewrites the threshold's CapMem cell; bss2.md §1.5, §1.7).

An offset :math:`\theta_j` in model units moves neuron :math:`j`'s requested threshold by :math:`\theta_j g_l`
CADC (:math:`g_l` the layer's CADC per model unit, from the mapping report) and its threshold code by

.. math::
    \Delta c_j = \mathrm{round}\big(\theta_j \, g_l / s\big)

with :math:`s` the nominal CADC per CapMem code (``capmem.potential_cadc.per_code``), on top of the mapped
(calibrated or nominal) code: a program knows the nominal slope, not each circuit's, so a circuit's own slope
error scales its offset (a few per cent). The deployment keeps the offsets (``meta.threshold_offsets``), so that
a calibration applied later (:func:`~.calibrated.apply_calibration`) moves its codes alike.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ...deployment import Deployment
from .spec import BSS2Spec


def _per_circuit(deployment: Deployment, offsets: Mapping[str, np.ndarray]) -> np.ndarray:
    """Each circuit's offset in CADC ``[circuits]`` (0 where no layer moved)."""
    meta = deployment.meta
    per_unit = {row["name"]: float(row["cadc_per_model_unit"]) for row in meta["report"]["layers"]}
    circuits, layer_of = deployment["neuron_circuits"], deployment["neuron_layer"]
    shift = np.zeros(len(deployment["circuit_v_th_cadc"]))
    for name, theta in offsets.items():
        neurons = np.flatnonzero(layer_of == meta["layers"].index(name))
        cadc = np.asarray(theta, np.float64) * per_unit[name]
        for column in range(circuits.shape[1]):
            placed = circuits[neurons, column] >= 0
            shift[circuits[neurons[placed], column]] = cadc[placed]
    return shift


def threshold_codes(base: np.ndarray, deployment: Deployment, offsets: Mapping[str, np.ndarray],
                    spec: BSS2Spec) -> np.ndarray:
    """The ``code:v_threshold`` array [circuits]: ``base`` moved by each layer's offsets (model units, [neurons])."""
    step = np.rint(_per_circuit(deployment, offsets) / float(spec["capmem"]["potential_cadc"]["per_code"]))
    codes = np.clip(np.asarray(base, np.float64) + step, 0, int(spec["capmem"]["code_max"]))
    return codes.astype(np.asarray(base).dtype)


def with_threshold_offsets(deployment: Deployment, mapped: Deployment, offsets: Mapping[str, np.ndarray],
                           spec: BSS2Spec) -> Deployment:
    """``deployment`` with the thresholds of ``mapped`` (the same network as mapped, before any offset) moved by
    ``offsets``: requested settings, codes and ``meta.threshold_offsets``."""
    arrays = {**deployment.arrays,
              "circuit_v_th_cadc": mapped["circuit_v_th_cadc"] + _per_circuit(mapped, offsets),
              "code:v_threshold": threshold_codes(mapped["code:v_threshold"], mapped, offsets, spec)}
    meta = {**deployment.meta, "threshold_offsets": {k: [float(v) for v in np.asarray(theta)]
                                                     for k, theta in offsets.items()}}
    return Deployment(meta=meta, arrays=arrays)


def unmoved_thresholds(deployment: Deployment) -> np.ndarray:
    """The requested thresholds [circuits] before ``meta.threshold_offsets`` moved them."""
    moved = {k: np.asarray(v, np.float64) for k, v in deployment.meta.get("threshold_offsets", {}).items()}
    return deployment["circuit_v_th_cadc"] - _per_circuit(deployment, moved)
