"""Every NIR node's parameters checked before any is used: numbers, finite, of a usable shape.

A graph from another tool (or a damaged file) can hold a weight that is a string, a bias one row
short or an Input of shape ``-3``; numpy would fail deep inside the composition with a message that
names no node. Here each is one :class:`~neurodeploy.errors.InterchangeError` naming the node, the
field and what it should be.
"""

from __future__ import annotations

from typing import Any

import nir
import numpy as np

from ..errors import InterchangeError
from .nir_read import FlatGraph

# The array fields of the node types neurodeploy reads (the rest are refused by check_supported).
LINEAR_FIELDS = ("weight", "bias", "scale", "delay")
NUMERIC_FIELDS = (*LINEAR_FIELDS, "tau", "tau_mem", "tau_syn", "r", "w_in", "v_leak",
                  "v_threshold", "v_reset")


def _numbers(name: str, node: Any, field: str) -> np.ndarray:
    where = f"node '{name}' ({type(node).__name__}) {field}"
    try:
        values = np.asarray(getattr(node, field), dtype=np.float64)
    except (TypeError, ValueError):
        raise InterchangeError(f"{where} is not an array of numbers", f"give {field} as numbers") from None
    if field in LINEAR_FIELDS and (values.size == 0 or not np.all(np.isfinite(values))):
        raise InterchangeError(f"{where} is empty or not finite", f"give {field} finite numbers")
    return values  # a neuron's values are checked, per neuron, where they are converted (nir_neurons)


def _io_shape(name: str, node: Any, field: str, key: str) -> None:
    """An Input's ``input_type['input']`` or an Output's ``output_type['output']``: positive whole numbers."""
    types = getattr(node, field, None)
    shape = types.get(key) if isinstance(types, dict) else None
    if shape is None and field == "output_type":  # an Output may leave its shape to what feeds it
        return
    try:
        dims = np.asarray(shape, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        dims = np.array([np.nan])
    if dims.size == 0 or not np.all(np.isfinite(dims)) or np.any(dims < 1) or np.any(dims != np.round(dims)):
        raise InterchangeError(f"{type(node).__name__} '{name}' has shape {shape!r}, not positive whole numbers",
                               f"give the {type(node).__name__} a shape such as [16]")


def check_parameters(flat: FlatGraph) -> None:
    """Refuse the first node whose parameters are not finite numbers of a usable shape (module docstring)."""
    for name, node in flat.nodes.items():
        if name == flat.input:
            _io_shape(name, node, "input_type", "input")
        if name == flat.output:
            _io_shape(name, node, "output_type", "output")
        arrays = {field: _numbers(name, node, field) for field in NUMERIC_FIELDS
                  if getattr(node, field, None) is not None}
        if isinstance(node, (nir.Affine, nir.Linear)) and arrays["weight"].ndim != 2:
            raise InterchangeError(f"node '{name}' ({type(node).__name__}) has a weight of shape "
                                   f"{arrays['weight'].shape}", "give a [out, in] weight matrix")
        bias = arrays.get("bias")
        if isinstance(node, nir.Affine) and bias is not None and bias.size not in (1, arrays["weight"].shape[0]):
            raise InterchangeError(f"node '{name}' (Affine) has {bias.size} biases for {arrays['weight'].shape[0]} "
                                   "outputs", "give one bias per output row of the weight")
