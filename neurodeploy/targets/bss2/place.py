"""Placement: logical neurons → neuron circuits, in the target's fill order.

Column-major order (top circuit of column 0, bottom of column 0, top of column 1, ...), as hxtorch
fills merged neurons (bss2.md §1.2). A merged neuron occupies whole columns; circuits that failed
calibration (``circuit_ok`` false) are never used, and a merged neuron never spans one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ...errors import DesignRuleViolation
from .spec import BSS2Spec
from .lower import LoweredLayer


@dataclass(frozen=True)
class Placement:
    neuron_circuits: np.ndarray  # [n_neurons, max_k] circuit ids (hemisphere * 256 + column), -1 pads
    neuron_layer: np.ndarray  # [n_neurons] index into the lowered layers
    layer_start: dict  # layer name → first logical neuron id

    def circuits_of(self, neuron: int) -> np.ndarray:
        row = self.neuron_circuits[neuron]
        return row[row >= 0]


def fill_order(spec: BSS2Spec) -> np.ndarray:
    g = spec["geometry"]
    columns, hemispheres = g["circuits_per_hemisphere"], g["hemispheres"]
    return np.array([h * columns + c for c in range(columns) for h in range(hemispheres)])


def place(layers: list[LoweredLayer], spec: BSS2Spec, circuit_ok: Optional[np.ndarray] = None
          ) -> tuple[Optional[Placement], list[DesignRuleViolation]]:
    """Assign circuits to every neuron; a layer that finds no room is a BSS2-NEURONS violation."""
    order = fill_order(spec)
    ok = np.ones(spec.total_circuits, bool) if circuit_ok is None else np.asarray(circuit_ok, bool)
    hemispheres = spec["geometry"]["hemispheres"]
    max_k = max(layer.circuits_per_neuron for layer in layers)
    rows: list[np.ndarray] = []
    owners: list[int] = []
    starts: dict[str, int] = {}
    position = 0
    for index, layer in enumerate(layers):
        starts[layer.name] = len(rows)
        k = layer.circuits_per_neuron
        for _ in range(layer.size):
            if k > 1:  # merged neurons start at a column boundary
                position += (-position) % hemispheres
            while position + k <= len(order) and not ok[order[position:position + k]].all():
                position += 1 if k == 1 else hemispheres
            if position + k > len(order):
                needed = sum(other.circuits for other in layers)
                return None, [DesignRuleViolation(
                    "BSS2-NEURONS", layer.name, "working neuron circuits (all layers)", needed,
                    int(ok.sum()), f"shrink '{layer.name}' or use a chip with more working circuits")]
            circuits = np.full(max_k, -1)
            circuits[:k] = order[position:position + k]
            rows.append(circuits)
            owners.append(index)
            position += k
    return Placement(np.array(rows), np.array(owners), starts), []
