"""A Xylo deployment's placement as generic grids (:class:`~neurodeploy.targets.base.PlacementPanel`).

Three panels: the 16 input channels (those the graph's inputs take), the 1000 hidden neurons (drawn as
rows of 100) and the 8 output neurons, each by the layer placed there (``neuron_layer``, ``neuron_bank``:
0 hidden, 1 output; ``neuron_index`` within the bank).
"""

from __future__ import annotations

import math

import numpy as np

from ...deployment import Deployment
from ..base import PlacementPanel
from .spec import XyloSpec

HIDDEN_ROW = 100  # hidden neurons per drawn row


def placement_panels(deployment: Deployment, spec: XyloSpec) -> list[PlacementPanel]:
    g = spec["geometry"]
    layers = tuple(deployment.meta["layers"])
    legend = (*layers, "input")
    arrays = deployment.arrays
    inputs = np.full((1, int(g["input_channels"])), -1, np.int64)
    inputs[0, :min(int(np.asarray(arrays["weights_in"]).shape[0]), inputs.shape[1])] = len(layers)
    hidden = np.full(int(g["hidden_neurons"]), -1, np.int64)
    outputs = np.full((1, int(g["output_neurons"])), -1, np.int64)
    for layer, bank, index in zip(np.asarray(arrays["neuron_layer"]), np.asarray(arrays["neuron_bank"]),
                                  np.asarray(arrays["neuron_index"])):
        target = hidden if bank == 0 else outputs[0]
        if 0 <= index < len(target):
            target[index] = int(layer)
    rows = math.ceil(len(hidden) / HIDDEN_ROW)
    hidden_grid = np.full(rows * HIDDEN_ROW, -1, np.int64)
    hidden_grid[:len(hidden)] = hidden
    return [PlacementPanel("input channels", inputs, legend, "", "channel"),
            PlacementPanel(f"hidden neurons, by layer ({HIDDEN_ROW} per row)", hidden_grid.reshape(rows, HIDDEN_ROW),
                           legend, f"neuron / {HIDDEN_ROW}", f"neuron mod {HIDDEN_ROW}"),
            PlacementPanel("output neurons, by layer", outputs, legend, "", "output neuron")]
