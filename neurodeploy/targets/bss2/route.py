"""Routing: sources → (hemisphere, synapse driver, label); synapse weights, labels and row modes.

Each synapse driver feeds two rows: the top one excitatory, the bottom one inhibitory. A source
(an input channel or a neuron) is sent to a driver with a 6-bit label; a synapse responds to an
event only if its label matches (bss2.md §1.3). A target circuit must receive each of its inputs
on a different driver, so a layer's inputs are split into one chunk per merged circuit and input
``p`` of a chunk goes to driver ``p``. Layers share drivers by using different labels, which is how
one driver carries up to 64 sources. A layer with weight copies :math:`K` (lower.py) repeats its
chunk on drivers ``p + j * chunk``, ``j < K``, and spreads each integer weight over them in parts
that differ by at most one LSB.
"""

from __future__ import annotations

import math
from functools import partial
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ...errors import DesignRuleViolation
from .spec import BSS2Spec
from .lower import LoweredLayer
from .place import Placement
from .quantise import QuantisedLayer

ROW_DISABLED, ROW_EXCITATORY, ROW_INHIBITORY = 0, 1, 2
SHARED = -1  # the source index standing for all sources of a shared projection (lower.py)


@dataclass
class Routing:
    synapse_weight: np.ndarray  # [hemispheres, rows, columns] uint8 magnitudes
    synapse_label: np.ndarray  # [hemispheres, rows, columns] uint8
    row_mode: np.ndarray  # [hemispheres, rows] uint8 (0 disabled, 1 excitatory, 2 inhibitory)
    input_routes: np.ndarray  # [n, 4] (input channel, hemisphere, driver, label)
    neuron_routes: np.ndarray  # [n, 4] (logical neuron, hemisphere, driver, label)
    synapses_used: int = 0
    labels_per_driver: dict = field(default_factory=dict)  # (hemisphere, driver) → labels in use
    # Each weight written, [n, 7]: (hemisphere, excitatory row, column, layer index, neuron, slot, copy) — so that
    # new weights of the same layers can be written without routing again (itl_layout.py).
    written: np.ndarray = field(default_factory=lambda: np.zeros((0, 7), np.int32))

    @property
    def rows_used(self) -> int:
        return int((self.row_mode != ROW_DISABLED).sum())


def split_weight(w: int, copies: int) -> list[int]:
    """``w`` as ``copies`` integer parts of one sign that differ by at most one (each within 6 bits)."""
    base, extra = divmod(abs(w), copies)
    sign = 1 if w >= 0 else -1
    return [sign * (base + (j < extra)) for j in range(copies)]


def convolution_slots(layer: LoweredLayer, q: QuantisedLayer) -> tuple[list[list], np.ndarray]:
    """Per neuron, the source on each input slot (None: unused) and its integer weight, for a layer fed by one
    convolution whose pixels share slots (lower.py, ``LoweredLayer.slots``)."""
    (pre, _), = layer.inputs
    weights = q.weights[f"{pre}->{layer.name}"].numpy()
    slots, joined = layer.slots, layer.connected
    if slots is None or joined is None:  # lower() sets both for such a layer; stated for the type checker
        raise ValueError(f"layer '{layer.name}' has no input slots")
    keys: list[list] = [[None] * layer.fan_in for _ in range(layer.size)]
    matrix = np.zeros((layer.size, layer.fan_in), weights.dtype)
    for n, i in zip(*np.nonzero(joined)):
        keys[n][slots[i]] = (pre, int(i))
        matrix[n, slots[i]] = weights[n, i]
    return keys, matrix


def layer_matrix(layer: LoweredLayer, q: QuantisedLayer) -> np.ndarray:
    """``[size, slots]`` integer weights of a layer without input slots, over its inputs in order, a shared
    projection as one column (its columns are identical, lower.py)."""
    return np.concatenate([q.weights[f"{pre}->{layer.name}"].numpy()[:, :1 if pre in layer.shared else None]
                           for pre, _ in layer.inputs], axis=1)


def _joined_source(sources: list, joined: Optional[np.ndarray], n: int, p: int) -> Optional[tuple[str, int]]:
    """Source ``p`` of neuron ``n``, or None for a pair outside a convolution's structure (no synapse)."""
    return sources[p] if joined is None or joined[n, p] else None


def route(layers: list[LoweredLayer], placement: Placement, quantised: dict, spec: BSS2Spec,
          input_name: str, slot_inputs: Optional[dict] = None, labels_per_driver: Optional[int] = None
          ) -> tuple[Routing, list[DesignRuleViolation]]:
    """Build the synapse arrays and event routes; labels overflowing a driver are BSS2-LABELS.

    ``slot_inputs`` (layer name → ``(keys, weights)``) replaces a layer's sources by per-neuron
    ones: input slot ``p`` of neuron ``n`` listens to source ``keys[n][p]`` (None: unused) with the
    integer weight ``weights[n, p]`` (delay realisations, targets/bss2/delays.py). Sources keyed
    ``(input_name, i)`` become input routes of FPGA channel ``i``. ``labels_per_driver`` lowers the
    label space (spike-strength delays take 3 of the 6 label bits).
    """
    label_limit = spec.labels_per_driver if labels_per_driver is None else labels_per_driver
    g = spec["geometry"]
    hemispheres, columns = g["hemispheres"], g["circuits_per_hemisphere"]
    n_rows = g["synapse_drivers_per_hemisphere"] * g["rows_per_driver"]
    weight = np.zeros((hemispheres, n_rows, columns), np.uint8)
    label = np.zeros((hemispheres, n_rows, columns), np.uint8)
    row_mode = np.zeros((hemispheres, n_rows), np.uint8)
    labels: dict[tuple[int, int], dict[tuple[str, int], int]] = {}
    violations: list[DesignRuleViolation] = []
    synapses = 0
    written: list[tuple[int, ...]] = []

    for layer_index, layer in enumerate(layers):
        q: QuantisedLayer = quantised[layer.name]
        given = None if slot_inputs is None else slot_inputs.get(layer.name)
        if given is not None or layer.slots is not None:
            keys, matrices = given if given is not None else convolution_slots(layer, q)
            source_of = lambda n, p, keys=keys: keys[n][p]  # noqa: E731
            n_slots = matrices.shape[1]
            copies = layer.weight_copies  # 1 for delay realisations (a delayed slot is its own synapse)
        else:
            # A shared projection's sources are one source, (pre, SHARED), on one slot (lower.py).
            sources = [(pre, i) for pre, size in layer.inputs for i in (
                [SHARED] if pre in layer.shared else range(size))]
            matrices = layer_matrix(layer, q)
            source_of = partial(_joined_source, sources, layer.connected)
            n_slots = len(sources)
            copies = layer.weight_copies
        chunk = math.ceil(n_slots / layer.circuits_per_neuron)
        start = placement.layer_start[layer.name]
        overflow = False
        for n in range(layer.size):
            for j, circuit in enumerate(placement.circuits_of(start + n)):
                h, col = divmod(int(circuit), columns)
                for p in range(j * chunk, min((j + 1) * chunk, n_slots)):
                    source = source_of(n, p)
                    if source is None:
                        continue
                    for copy, w in enumerate(split_weight(int(matrices[n, p]), copies)):
                        driver = p - j * chunk + copy * chunk
                        table = labels.setdefault((h, driver), {})
                        if source not in table:
                            if len(table) >= label_limit:
                                overflow = True
                                continue
                            table[source] = len(table)
                        ell = table[source]
                        exc, inh = 2 * driver, 2 * driver + 1
                        row_mode[h, exc], row_mode[h, inh] = ROW_EXCITATORY, ROW_INHIBITORY
                        label[h, exc, col] = label[h, inh, col] = ell
                        weight[h, exc, col] = max(w, 0)
                        weight[h, inh, col] = max(-w, 0)
                        written.append((h, exc, col, layer_index, n, p, copy))
                        synapses += 2
        if overflow:
            violations.append(DesignRuleViolation(
                "BSS2-LABELS", layer.name, "sources on one synapse driver", f"more than {label_limit}",
                label_limit, f"reduce the sources feeding '{layer.name}' or merge fewer circuits"))

    input_routes, neuron_routes = [], []
    sizes = {pre: size for layer in layers for pre, size in layer.inputs}
    for (h, driver), table in sorted(labels.items()):
        for (pre, i), ell in table.items():
            members = range(sizes[pre]) if i == SHARED else (i,)
            for j in members:
                if pre == input_name:
                    input_routes.append((j, h, driver, ell))
                else:
                    neuron_routes.append((placement.layer_start[pre] + j, h, driver, ell))
    as_array = lambda r: np.array(r, np.int32).reshape(-1, 4)  # noqa: E731
    routing = Routing(weight, label, row_mode, as_array(input_routes), as_array(neuron_routes), synapses,
                      {key: len(table) for key, table in labels.items()},
                      np.array(written, np.int32).reshape(-1, 7))
    return routing, violations
