"""The BSS-2 spec (``targets/bss2.yaml``): its sections, their consistency, and derived sizes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...errors import TargetSpecError
from ..spec import TargetSpec, load_spec, spec_path

SECTIONS = ("geometry", "synapse", "merging", "time", "neuron", "readout", "delays", "capmem", "refractory",
            "calibration")


@dataclass(frozen=True)
class BSS2Spec(TargetSpec):
    """BSS-2's limits: geometry, synapse format, merging, time, neuron ranges, CapMem, readouts, delays."""

    @classmethod
    def from_spec(cls, spec: TargetSpec) -> BSS2Spec:
        spec.require(SECTIONS)
        g = spec["geometry"]
        if g["synapse_drivers_per_hemisphere"] != g["buses_per_hemisphere"] * g["drivers_per_bus"]:
            raise TargetSpecError(f"{spec.path}: drivers per hemisphere != buses x drivers per bus",
                                  "make the geometry consistent")
        return cls(name=spec.name, description=spec.description, raw=spec.raw, path=spec.path)

    @property
    def total_circuits(self) -> int:
        g = self.raw["geometry"]
        return g["hemispheres"] * g["circuits_per_hemisphere"]

    @property
    def total_rows(self) -> int:
        g = self.raw["geometry"]
        return g["hemispheres"] * g["synapse_drivers_per_hemisphere"] * g["rows_per_driver"]

    @property
    def total_synapses(self) -> int:
        return self.total_rows * self.raw["geometry"]["circuits_per_hemisphere"]

    @property
    def weight_max(self) -> int:
        return 2 ** self.raw["synapse"]["weight_bits"] - 1

    @property
    def labels_per_driver(self) -> int:
        return 2 ** self.raw["synapse"]["label_bits"]

    @property
    def speedup(self) -> float:
        return float(self.raw["time"]["speedup"])


def load_bss2_spec(name_or_path: str | Path = "bss2") -> BSS2Spec:
    """The BSS-2 spec by name or path, validated."""
    return BSS2Spec.from_spec(load_spec(spec_path(name_or_path)))
