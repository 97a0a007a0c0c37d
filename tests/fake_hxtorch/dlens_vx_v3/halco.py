"""The halco coordinates hxtorch's neuron placement uses (fake; semantics of halco's ``neuron.h``/``logical_neuron.h``).

``AtomicNeuronOnDLS(NeuronColumnOnDLS(x), NeuronRowOnDLS(y))`` with ``toEnum().value() == y * 256 + x``;
``LogicalNeuronOnDLS(compartments, anchor)`` places the relative ``AtomicNeuronOnLogicalNeuron``s of its
compartments at the anchor (``get_atomic_neurons``). ``iter_all`` as halco's, over the types used here.
"""

from __future__ import annotations

from dataclasses import dataclass

COLUMNS, ROWS = 256, 2


@dataclass(frozen=True)
class Enum:
    _value: int

    def value(self) -> int:
        return self._value


@dataclass(frozen=True)
class NeuronColumnOnDLS:
    x: int

    def __post_init__(self):
        if not 0 <= self.x < COLUMNS:
            raise OverflowError(f"NeuronColumnOnDLS({self.x}) out of range")


@dataclass(frozen=True)
class NeuronRowOnDLS:
    y: int

    def __post_init__(self):
        if not 0 <= self.y < ROWS:
            raise OverflowError(f"NeuronRowOnDLS({self.y}) out of range")


class AtomicNeuronOnDLS:
    size = COLUMNS * ROWS

    def __init__(self, x, y=None):
        if isinstance(x, Enum):
            y, x = divmod(x.value(), COLUMNS)
            x, y = NeuronColumnOnDLS(x), NeuronRowOnDLS(y)
        self.x, self.y = x, y

    def toEnum(self) -> Enum:  # noqa: N802 - halco's name
        return Enum(self.y.y * COLUMNS + self.x.x)

    def __eq__(self, other):
        return isinstance(other, AtomicNeuronOnDLS) and self.toEnum() == other.toEnum()

    def __hash__(self):
        return hash(self.toEnum())

    def __repr__(self):
        return f"AtomicNeuronOnDLS({self.x.x}, {self.y.y})"


class AtomicNeuronOnLogicalNeuron:
    """A circuit relative to its logical neuron's anchor; enum ``y * 256 + x`` like halco's grid coordinates."""

    def __init__(self, x, y=None):
        if isinstance(x, Enum):
            y, x = divmod(x.value(), COLUMNS)
        self.x, self.y = int(x), int(y)

    def toEnum(self) -> Enum:  # noqa: N802
        return Enum(self.y * COLUMNS + self.x)


class CompartmentOnLogicalNeuron:
    def __init__(self, value: int = 0):
        self.value = value


class LogicalNeuronCompartments:
    def __init__(self, compartments: list[list[AtomicNeuronOnLogicalNeuron]]):
        self._compartments = compartments

    def get_compartments(self) -> dict:
        return dict(enumerate(self._compartments))


class LogicalNeuronOnDLS:
    def __init__(self, compartments: LogicalNeuronCompartments, anchor: AtomicNeuronOnDLS):
        self.compartments, self.anchor = compartments, anchor

    def get_placed_compartments(self) -> dict:
        placed = {}
        for key, members in self.compartments.get_compartments().items():
            placed[key] = [AtomicNeuronOnDLS(NeuronColumnOnDLS(self.anchor.x.x + m.x),
                                             NeuronRowOnDLS(self.anchor.y.y + m.y)) for m in members]
        return placed

    def get_atomic_neurons(self) -> list[AtomicNeuronOnDLS]:
        return [an for members in self.get_placed_compartments().values() for an in members]

    def __repr__(self):
        return f"LogicalNeuronOnDLS({self.get_atomic_neurons()})"


def iter_all(kind):
    if kind is AtomicNeuronOnLogicalNeuron:
        return (AtomicNeuronOnLogicalNeuron(Enum(i)) for i in range(COLUMNS * ROWS))
    if kind is AtomicNeuronOnDLS:
        return (AtomicNeuronOnDLS(Enum(i)) for i in range(COLUMNS * ROWS))
    raise TypeError(kind)
