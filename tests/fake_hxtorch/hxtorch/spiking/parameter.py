"""hxtorch spiking/parameter.py (fake): a neuron parameter's hardware value (for calix) and model value (numerics)."""

from __future__ import annotations

from typing import Union

import torch

Value = Union[torch.Tensor, float, int]


class HXBaseParameter(torch.nn.Module):
    """``HXBaseParameter(hardware_value, model_value)``."""

    def __init__(self, hardware_value, model_value):
        super().__init__()
        self._hardware_value = hardware_value
        self._model_value = model_value

    @property
    def hardware_value(self):
        return self._hardware_value

    @hardware_value.setter
    def hardware_value(self, value):
        self._hardware_value = value

    @property
    def model_value(self):
        return self._model_value

    def is_trainable(self) -> bool:
        return isinstance(self._model_value, torch.nn.Parameter)


class HXParameter(HXBaseParameter):
    """``HXParameter(value)``: the same value for calibration and numerics (model_value reads hardware_value)."""

    def __init__(self, value: Value):
        super().__init__(value, value)

    @property
    def model_value(self):
        return self._hardware_value


class MixedHXModelParameter(HXBaseParameter):
    """``MixedHXModelParameter(model_value, hardware_value)`` — note the argument order."""

    def __init__(self, model_value: Value, hardware_value: Value):
        super().__init__(hardware_value, model_value)


class HXTransformedModelParameter(HXBaseParameter):
    """``HXTransformedModelParameter(model_value, transform_func)``: hardware = f(model)."""

    def __init__(self, model_value: Value, transform_func):
        super().__init__(None, model_value)
        self._func = transform_func

    @property
    def hardware_value(self):
        return self._func(self.model_value)
