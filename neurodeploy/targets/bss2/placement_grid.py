"""A BSS-2 deployment's placement as generic grids (:class:`~neurodeploy.targets.base.PlacementPanel`).

Four panels, each cell one resource of the chip (bss2.md §1.1–1.4):

* the neuron circuits, 2 hemispheres × 256 columns, by the layer whose neuron they realise
  (``neuron_circuits``, ``neuron_layer``);
* each hemisphere's synapse array, 256 rows × 256 columns, where a synapse holds a non-zero weight on an
  enabled row (``synapse_weight``, ``row_mode``), by the layer its column's circuit belongs to;
* the synapse drivers, 2 hemispheres × 128, by the source of the events they carry (``input_routes``,
  ``neuron_routes``): the input, a layer, or several of them (labels multiplex sources on one driver).
"""

from __future__ import annotations

import numpy as np

from ...deployment import Deployment
from ..base import PlacementPanel
from .spec import BSS2Spec


def placement_panels(deployment: Deployment, spec: BSS2Spec) -> list[PlacementPanel]:
    g = spec["geometry"]
    hemispheres, columns = int(g["hemispheres"]), int(g["circuits_per_hemisphere"])
    drivers = int(g["synapse_drivers_per_hemisphere"])
    layers = tuple(deployment.meta["layers"])
    arrays = deployment.arrays

    circuit_layer = np.full(hemispheres * columns, -1, np.int64)
    for circuits, layer in zip(np.asarray(arrays["neuron_circuits"]), np.asarray(arrays["neuron_layer"])):
        circuit_layer[circuits[circuits >= 0]] = int(layer)
    circuit_grid = circuit_layer.reshape(hemispheres, columns)
    panels = [PlacementPanel("neuron circuits, by layer", circuit_grid, layers, "hemisphere", "column")]

    weight, row_mode = np.asarray(arrays["synapse_weight"]), np.asarray(arrays["row_mode"])
    for h in range(min(hemispheres, weight.shape[0])):
        used = (weight[h] > 0) & (row_mode[h] > 0)[:, None] & (circuit_grid[h] >= 0)[None, :]
        owner = np.where(used, circuit_grid[h][None, :], -1)
        side = {0: "top", 1: "bottom"}.get(h, str(h))
        panels.append(PlacementPanel(f"synapse array, {side} hemisphere: synapses with a non-zero weight, by the "
                                     "layer they feed", owner, layers, "synapse row", "column (neuron circuit)"))

    several = len(layers) + 1
    driver_owner = np.full((hemispheres, drivers), -1, np.int64)

    def mark(h: int, driver: int, source: int) -> None:
        if 0 <= h < hemispheres and 0 <= driver < drivers:
            current = driver_owner[h, driver]
            driver_owner[h, driver] = source if current in (-1, source) else several

    for _, h, driver, _ in np.asarray(arrays["input_routes"]).reshape(-1, 4):
        mark(int(h), int(driver), len(layers))
    neuron_layer = np.asarray(arrays["neuron_layer"])
    for neuron, h, driver, _ in np.asarray(arrays["neuron_routes"]).reshape(-1, 4):
        if 0 <= neuron < len(neuron_layer):
            mark(int(h), int(driver), int(neuron_layer[neuron]))
    panels.append(PlacementPanel("synapse drivers, by the source of their events", driver_owner,
                                 (*layers, "input", "several sources"), "hemisphere", "synapse driver"))
    return panels
