"""The Xylo spec (``targets/xylo.yaml``): its sections, checked, and the numbers the mapper reads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...errors import TargetSpecError
from ..spec import TargetSpec, load_spec, spec_path

SECTIONS = ("geometry", "weights", "state", "spikes_per_step", "time", "quantisation")


@dataclass(frozen=True)
class XyloSpec(TargetSpec):
    """Xylo's limits: neuron counts, weight and state bits, decay shifts, spikes per step."""

    @classmethod
    def from_spec(cls, spec: TargetSpec) -> XyloSpec:
        spec.require(SECTIONS)
        if spec["state"]["reset"] != "subtract":
            raise TargetSpecError(f"{spec.path}: state.reset must be 'subtract' (the only reset Xylo has)",
                                  "set state.reset: subtract")
        return cls(name=spec.name, description=spec.description, raw=spec.raw, path=spec.path)

    @property
    def weight_max(self) -> int:
        """The largest stored weight magnitude (symmetric, so that rounding treats both signs alike)."""
        return 2 ** (self.raw["weights"]["bits"] - 1) - 1

    @property
    def state_max(self) -> int:
        return 2 ** (self.raw["state"]["bits"] - 1) - 1

    @property
    def dash_max(self) -> int:
        return int(self.raw["state"]["dash_max"])


def load_xylo_spec(name_or_path: str | Path = "xylo") -> XyloSpec:
    """The Xylo spec by name or path, validated."""
    return XyloSpec.from_spec(load_spec(spec_path(name_or_path)))
