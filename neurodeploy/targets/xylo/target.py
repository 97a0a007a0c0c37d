"""Target ``xylo``: SynSense Xylo Audio 2 behind the target interface (mapping and its emulator)."""

from __future__ import annotations

from typing import Any, Optional

from ...backends.base import Backend
from ...deployment import Deployment
from ...modelfile import ModelFile
from ..base import DEFAULT_OPTIONS, CheckResult, MapOptions, MapResult, PlacementPanel, Target
from ..spec import TargetSpec
from .mapper import lower_and_check, map_to_xylo
from .placement_grid import placement_panels
from . import validate
from .spec import XyloSpec


class XyloTarget(Target):
    """Xylo: digital, bit-exact integer neurons; nothing to calibrate, no delays, no analog noise."""

    name = "xylo"
    options = frozenset({"clip_quantile", "weight_scale"})

    def __init__(self, spec: TargetSpec) -> None:
        super().__init__(spec)
        self.spec: XyloSpec = XyloSpec.from_spec(spec)

    def limits(self) -> dict[str, Any]:
        g, s = self.spec["geometry"], self.spec["spikes_per_step"]
        return {"input channels": g["input_channels"], "hidden neurons": g["hidden_neurons"],
                "output neurons": g["output_neurons"], "weight bits": self.spec["weights"]["bits"],
                "state bits": self.spec["state"]["bits"], "decay shifts": f"0..{self.spec.dash_max}",
                "synapses per hidden neuron": g["synapses_per_hidden_neuron"],
                "spikes per step (input/hidden/output)": f"{s['input']}/{s['hidden']}/{s['output']}",
                "reset": "subtract threshold", "on-chip delays": False, "delay strategies": [],
                "analog (needs calibration)": False}

    def check(self, model: ModelFile, options: MapOptions = DEFAULT_OPTIONS) -> CheckResult:
        self.check_options(options)
        _, violations, warnings = lower_and_check(model, self.spec)
        return CheckResult(violations, warnings)

    def map(self, model: ModelFile, options: MapOptions = DEFAULT_OPTIONS) -> MapResult:
        self.check_options(options)
        return MapResult(*map_to_xylo(model, self.spec, clip_quantile=options.clip_quantile,
                                      weight_scale=options.weight_scale, probe_inputs=options.probe_inputs))

    def validate_deployment(self, deployment: Deployment) -> None:
        validate.validate_deployment(self, deployment)

    def placement(self, deployment: Deployment) -> list[PlacementPanel]:
        return placement_panels(deployment, self.spec)

    def weight_code_range(self) -> Optional[tuple[int, int]]:
        return -self.spec.weight_max, self.spec.weight_max

    def backend(self, name: str) -> Optional[Backend]:
        if name == "xylo-sim":
            from .backend import XyloSimBackend
            return XyloSimBackend()
        return None

    def backend_names(self) -> list[str]:
        return ["xylo-sim"]
