"""hxtorch spiking/morphology.py (fake): ``SingleCompartmentNeuron``."""

from __future__ import annotations

import numpy as np

from dlens_vx_v3 import halco


class SingleCompartmentNeuron:
    """``SingleCompartmentNeuron(size, expand_horizontally=False)``: one compartment of ``size`` circuits; without
    horizontal expansion the columns are filled first (top, bottom, next column, ...)."""

    def __init__(self, size: int, expand_horizontally: bool = False) -> None:
        if expand_horizontally:
            members = [halco.AtomicNeuronOnLogicalNeuron(halco.Enum(i)) for i in range(size)]
        else:
            every = np.array(list(halco.iter_all(halco.AtomicNeuronOnLogicalNeuron)), dtype=object)
            members = list(every.reshape(2, -1).ravel("F")[:size])
        self._compartments = halco.LogicalNeuronCompartments([members])
        self.size = size

    @property
    def compartments(self) -> halco.LogicalNeuronCompartments:
        return self._compartments
