"""Populations, views and assemblies: PyNN's own classes, with parameters kept as arrays until run()."""

from __future__ import annotations

from typing import Any

import numpy as np
from pyNN import common, errors
from pyNN.parameters import ParameterSpace, simplify
from pyNN.standardmodels import StandardCellType

from . import simulator
from .recording import Recorder


def _check_spike_times(parameters: dict) -> None:
    """Spike times must be sorted, as PyNN's simulators require."""
    for train in np.asarray(parameters.get("spike_times", []), dtype=object).ravel():
        times = np.asarray(getattr(train, "value", train), np.float64).ravel()
        if np.any(np.diff(times) < 0):
            raise errors.InvalidParameterValueError(f"spike times {times.tolist()} are not sorted")


class Assembly(common.Assembly):
    _simulator = simulator


class PopulationView(common.PopulationView):
    _assembly_class = Assembly
    _simulator = simulator

    def _get_parameters(self, *names: str) -> ParameterSpace:
        native = self._get_native_parameters(*self.celltype.get_native_names(*names))
        return self.celltype.reverse_translate(native)

    def _get_native_parameters(self, *names: str) -> ParameterSpace:
        values = {}
        for name in names:
            value = self.parent._parameters[name]
            values[name] = simplify(value[self.mask] if isinstance(value, np.ndarray) else value)
        return ParameterSpace(values, shape=(self.size,))

    def _set_parameters(self, parameter_space: ParameterSpace) -> None:
        for name, value in parameter_space.items():
            try:
                self.parent._parameters[name][self.mask] = value.evaluate(simplify=True)
            except ValueError:
                raise errors.InvalidParameterValueError(f"{name} should not be of type {type(value)}") from None

    def _set_initial_value_array(self, variable: str, initial_values: Any) -> None:
        pass  # the chip starts every neuron at its leak potential (module docstring of network.py)

    def _get_view(self, selector: Any, label: Any = None) -> PopulationView:
        return PopulationView(self, selector, label)


class Population(common.Population):
    __doc__ = common.Population.__doc__
    _simulator = simulator
    _recorder_class = Recorder
    _assembly_class = Assembly

    def _create_cells(self) -> None:
        ids = np.arange(simulator.state.id_counter, simulator.state.id_counter + self.size)
        self.all_cells = np.array([simulator.ID(i) for i in ids], dtype=simulator.ID)
        self._mask_local = np.ones(self.size, bool)
        if not isinstance(self.celltype, StandardCellType):
            raise errors.InvalidModelError("neurodeploy.pynn runs its own cell types only (neurodeploy.pynn.cells)")
        parameter_space = self.celltype.native_parameters
        parameter_space.shape = (self.size,)
        parameter_space.evaluate(mask=self._mask_local, simplify=False)
        self._parameters = parameter_space.as_dict()
        _check_spike_times(self._parameters)
        for cell in self.all_cells:
            cell.parent = self
        simulator.state.id_counter += self.size
        simulator.state.populations.append(self)

    def _set_initial_value_array(self, variable: str, initial_values: Any) -> None:
        pass  # the chip starts every neuron at its leak potential

    def _get_view(self, selector: Any, label: Any = None) -> PopulationView:
        return PopulationView(self, selector, label)

    def _get_parameters(self, *names: str) -> ParameterSpace:
        native = self._get_native_parameters(*self.celltype.get_native_names(*names))
        return self.celltype.reverse_translate(native)

    def _get_native_parameters(self, *names: str) -> ParameterSpace:
        return ParameterSpace({name: simplify(self._parameters[name]) for name in names}, shape=(self.size,))

    def _set_parameters(self, parameter_space: ParameterSpace) -> None:
        parameter_space.evaluate(simplify=False, mask=self._mask_local)
        for name, value in parameter_space.items():
            self._parameters[name] = value
        _check_spike_times(self._parameters)

    def values(self, name: str) -> np.ndarray:
        """Native parameter ``name`` of every cell, as an array ``[size]``."""
        value = self._parameters[name]
        return np.asarray(value) if isinstance(value, np.ndarray) else np.full(self.size, value)
