"""Projections: PyNN's connectors fill a list of connections; run() turns them into the graph's weight matrices."""

from __future__ import annotations

from itertools import repeat
from typing import Any

import numpy as np
from pyNN import common
from pyNN.core import ezip
from pyNN.space import Space

from . import simulator
from .synapses import StaticSynapse


class Connection(common.Connection):
    """One synapse: pre and post index (into the projection's pre/post), weight, delay."""

    def __init__(self, pre: int, post: int, **attributes: Any) -> None:
        self.presynaptic_index = pre
        self.postsynaptic_index = post
        for name, value in attributes.items():
            setattr(self, name, value)

    def as_tuple(self, *attribute_names: str) -> tuple:
        return tuple(getattr(self, name) for name in attribute_names)


class Projection(common.Projection):
    __doc__ = common.Projection.__doc__
    _simulator = simulator
    _static_synapse_class = StaticSynapse

    def __init__(self, presynaptic_population: Any, postsynaptic_population: Any, connector: Any,
                 synapse_type: Any = None, source: Any = None, receptor_type: Any = None, space: Any = None,
                 label: Any = None) -> None:
        common.Projection.__init__(self, presynaptic_population, postsynaptic_population, connector, synapse_type,
                                   source, receptor_type, Space() if space is None else space, label)
        self.connections: list[Connection] = []
        connector.connect(self)
        simulator.state.projections.append(self)

    def __len__(self) -> int:
        return len(self.connections)

    def __getitem__(self, i: int) -> Connection:
        return self.connections[i]

    def _set_attributes(self, parameter_space: Any) -> None:
        """``Projection.set``: each connection takes its (pre, post) entry of every attribute (PyNN's arrays)."""
        parameter_space.evaluate()
        for name, value in parameter_space.items():
            for connection in self.connections:
                setattr(connection, name, float(value[connection.presynaptic_index, connection.postsynaptic_index]))

    def _get_attributes_as_arrays(self, names: Any, multiple_synapses: str = "sum") -> list:
        # PyNN's common version strips any trailing "s" (A_plus -> A_plu); only the plural forms are meant.
        names = [{"weights": "weight", "delays": "delay"}.get(name, name) for name in names]
        operation = common.Projection.MULTI_SYNAPSE_OPERATIONS[multiple_synapses]
        arrays = []
        for name in names:
            values = np.full((self.pre.size, self.post.size), np.nan)
            for c in self.connections:
                address = (c.presynaptic_index, c.postsynaptic_index)
                value = getattr(c, name)
                values[address] = value if np.isnan(values[address]) else operation(values[address], value)
            arrays.append(values)
        return arrays

    def _convergent_connect(self, presynaptic_indices: Any, postsynaptic_index: int, location_selector: Any = None,
                            **connection_parameters: Any) -> None:
        if location_selector is not None:
            raise NotImplementedError("neurodeploy.pynn has no multi-compartment neurons")
        for name, value in connection_parameters.items():
            if np.isscalar(value):
                connection_parameters[name] = repeat(value)
        for pre, others in ezip(presynaptic_indices, *connection_parameters.values()):
            attributes = dict(zip(connection_parameters.keys(), others))
            self.connections.append(Connection(int(pre), int(postsynaptic_index), **attributes))
