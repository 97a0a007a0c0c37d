"""Target ``bss2``: BrainScaleS-2 behind the target interface (mapping, backends, calibration, itl)."""

from __future__ import annotations

import re
from pathlib import Path
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import numpy as np
import torch

from ...backends.base import Backend
from ...deployment import Deployment
from ...errors import BackendError, CalibrationError, DoesNotFitError, NeurodeployError
from ...modelfile import ModelFile
from ..base import DEFAULT_OPTIONS, CheckResult, ItlSession, MapOptions, MapResult, PlacementPanel, Target
from ..spec import TargetSpec
from .calibrated import apply_calibration
from .calibration_file import Calibration, load_calibration
from .delays import STRATEGIES
from .itl_layout import Layout, chip_weights, clamp_to_range, delayed_input, fixed_layout, reconfigured
from .mapper import check, map_to_bss2
from .placement_grid import placement_panels
from . import validate
from .spec import BSS2Spec
from .thresholds import with_threshold_offsets

CHIP_RANGE = re.compile(r"mock:(?P<first>\d{1,10})-(?P<last>\d{1,10})(?P<rest>:.*)?")
MAX_CHIPS_IN_RANGE = 64  # one run per chip: a longer range is more likely a typo than a plan


def _calibration_summary(path: Path) -> dict:
    cal = load_calibration(path)
    return {"kind": "calibration", "chip": cal.chip, "backend": cal.backend, "target": cal.target,
            "created": cal.created, "software_version": cal.software_version, "targets": cal.targets,
            "calibrated": int(cal.success.sum()), "neurons": int(len(cal.success)),
            "spread": cal.spread, "seconds": cal.seconds, "measurement_rounds": cal.measurement_rounds}


def _as_calibration(calibration: str | Path | Calibration) -> Calibration:
    """A calibration given as its file or as the object ``calibrate`` made."""
    return calibration if isinstance(calibration, Calibration) else load_calibration(calibration)


class BSS2Target(Target):
    """BrainScaleS-2: analog LIF circuits with mismatch, calibrated through the backend interface."""

    name = "bss2"
    options = frozenset({"clip_quantile", "weight_scale", "calibration", "delays", "weight_copies"})
    delay_strategies = STRATEGIES
    file_formats = {"neurodeploy.calibration": _calibration_summary}

    def __init__(self, spec: TargetSpec) -> None:
        super().__init__(spec)
        self.spec: BSS2Spec = BSS2Spec.from_spec(spec)

    def limits(self) -> dict[str, Any]:
        s = self.spec
        return {"neuron circuits": s.total_circuits, "synapse rows": s.total_rows, "synapses": s.total_synapses,
                "weight bits": s["synapse"]["weight_bits"], "signed fan-in per neuron":
                s["synapse"]["signed_inputs_per_circuit"] * s["merging"]["max_circuits_per_neuron"],
                "speed-up": s.speedup, "on-chip delays": bool(s["delays"]["on_chip"]),
                "delay strategies": list(self.delay_strategies), "analog (needs calibration)": True}

    def _calibration(self, path: Optional[str | Path | Calibration]) -> Optional[Calibration]:
        if path is None:
            return None
        cal = _as_calibration(path)
        if cal.target != self.name:
            raise NeurodeployError(f"calibration {path} is for target '{cal.target}', not '{self.name}'",
                                   f"use a calibration made with --target {self.name}")
        return cal

    def check(self, model: ModelFile, options: MapOptions = DEFAULT_OPTIONS) -> CheckResult:
        self.check_options(options)
        _, violations, warnings = check(model, self.spec, delays=options.delays, weight_copies=options.weight_copies)
        if violations:
            return CheckResult(violations, warnings)
        # The rules that need a mapping (placement, labels, synaptic gains): map, write nothing.
        _, report, violations = map_to_bss2(model, self.spec, clip_quantile=options.clip_quantile,
                                            weight_scale=options.weight_scale,
                                            calibration=self._calibration(options.calibration),
                                            delays=options.delays, weight_copies=options.weight_copies)
        return CheckResult(violations, report.get("warnings", warnings))

    def map(self, model: ModelFile, options: MapOptions = DEFAULT_OPTIONS) -> MapResult:
        self.check_options(options)
        return MapResult(*map_to_bss2(model, self.spec, clip_quantile=options.clip_quantile,
                                      weight_scale=options.weight_scale,
                                      calibration=self._calibration(options.calibration),
                                      delays=options.delays, weight_copies=options.weight_copies,
                                      probe_inputs=options.probe_inputs))

    def map_chips(self, model: ModelFile, chips: int, options: MapOptions = DEFAULT_OPTIONS) -> tuple[Any, dict, list]:
        """Partition over ``chips`` chips (multichip.py, partition.py); ``--chips 1`` is a one-chip container."""
        from .multichip import map_chips
        self.check_options(options)
        if options.delays is not None:
            raise NeurodeployError("--delays is not supported with --chips", "leave out --delays")
        return map_chips(model, self.spec, chips, clip_quantile=options.clip_quantile,
                         weight_scale=options.weight_scale, calibration=self._calibration(options.calibration),
                         weight_copies=options.weight_copies, probe_inputs=options.probe_inputs)

    def chip_pipeline(self, multi: Any, engines: Sequence[Backend]) -> Any:
        from .multichip import ChipPipeline
        return ChipPipeline(multi, engines)

    def validate_deployment(self, deployment: Deployment) -> None:
        validate.validate_deployment(self, deployment)

    def placement(self, deployment: Deployment) -> list[PlacementPanel]:
        return placement_panels(deployment, self.spec)

    def weight_code_range(self) -> Optional[tuple[int, int]]:
        return -self.spec.weight_max, self.spec.weight_max  # 6-bit magnitude, the sign is the row's

    def model_unit_weights(self, deployment: Deployment) -> dict[str, np.ndarray]:
        """Each integer weight times its neuron's scale, :math:`w = s_n q` (quantise.py); learned delays refused."""
        if deployment.meta.get("delays"):
            raise NeurodeployError("this deployment realises learned delays: its weights are per delay slot, not "
                                   "per projection", "export or run the model file instead")
        return {key.split(":", 1)[1]: deployment[key].astype(np.float64)
                * deployment[f"weight_scale:{key.split('->')[-1]}"].astype(np.float64)[:, None]
                for key in deployment.arrays if key.startswith("quantised_weight:")}

    def backend(self, name: str) -> Optional[Backend]:
        if name == "mock" or name.startswith("mock:"):
            from ...backends.mock.chip import MockChip, parse_chip
            try:
                chip, _, effects = parse_chip(name)
            except ValueError:
                raise BackendError(f"mock chip '{name}' is not a chip number",
                                   "use mock:ideal or mock:N with N an integer in 0..2^32-1, e.g. mock:0") from None
            return MockChip(chip, effects)
        if name in ("hxtorch", "hxtorch:mock"):
            from ...backends.hxtorch import HxtorchBackend
            return HxtorchBackend(name)
        return None

    def engine_status(self) -> dict[str, Any]:
        """The mock chips' path: the compiled emulator or its PyTorch twin (backends/mock/fast.py)."""
        from ...backends.mock.fast import emulator_status
        return {"mock": emulator_status()}

    def backend_names(self) -> list[str]:
        return ["mock:ideal", "mock:CHIP (e.g. mock:0, mock:0:noise=off)", "mock:FIRST-LAST (chips, e.g. mock:0-4)",
                "hxtorch", "hxtorch:mock (hxtorch's own simulation)"]

    def expand_backend(self, name: str) -> list[str]:
        """``mock:0-4`` (with any settings after it, ``mock:0-4:noise=off``) → ``mock:0`` … ``mock:4``."""
        match = CHIP_RANGE.fullmatch(name)
        if match is None:
            return [name]
        first, last, rest = int(match["first"]), int(match["last"]), match["rest"] or ""
        if not first <= last <= first + MAX_CHIPS_IN_RANGE - 1:
            raise BackendError(f"chip range '{name}' is not FIRST-LAST with FIRST <= LAST and at most "
                               f"{MAX_CHIPS_IN_RANGE} chips", "e.g. mock:0-4")
        return [f"mock:{chip}{rest}" for chip in range(first, last + 1)]

    def for_backend(self, deployment: Deployment, engine: Backend,
                    calibration: Optional[str | Path] = None) -> Deployment:
        """With ``calibration``, the codes are that chip's (its identity must be the backend's). Without,
        a deployment calibrated for one chip is refused on another: its codes would be wrong there."""
        chip = engine.chip_id
        if calibration is not None:
            cal = _as_calibration(calibration)
            if chip is not None and cal.chip != chip:
                raise CalibrationError(f"calibration {calibration} is of chip {cal.chip}, the backend is chip {chip}",
                                       f"calibrate this chip: neurodeploy calibrate --backend {engine.name} -o FILE")
            return apply_calibration(deployment, cal, self.spec, source=str(calibration))
        wanted = deployment.meta.get("chip")
        if wanted is not None and chip is not None and engine.uses_codes and wanted != chip:
            raise CalibrationError(f"the deployment was calibrated for chip {wanted}, the backend is chip {chip}",
                                   f"run it with --calibration FILE of chip {chip}, or map again with that calibration")
        return deployment

    def calibrate(self, engine: Backend, sets: dict[str, float], *, output: Optional[str | Path] = None,
                  seed: int = 0, plot_dir: Optional[str | Path] = None, progress: bool = True) -> dict:
        if engine.name.startswith("hxtorch"):
            from ...backends.hxtorch import CALIBRATION_REFUSAL, CALIBRATION_HINT
            raise BackendError(CALIBRATION_REFUSAL, CALIBRATION_HINT)
        from ...calibration.session import calibrate_chip
        return calibrate_chip(engine, self.spec, sets, output, seed, plot_dir, progress)

    def calibration_identity(self, calibration: str | Path | Calibration) -> dict:
        cal = _as_calibration(calibration)
        name = None if isinstance(calibration, Calibration) else Path(calibration).name
        return {"chip": cal.chip, "checksum": cal.checksum, "created": cal.created, "file": name}

    def itl_session(self, model: ModelFile, engine: Backend, calibration: Optional[str | Path],
                    weight_copies: int, probe_inputs: Optional[torch.Tensor] = None,
                    delays: Optional[str] = None) -> ItlSession:
        cal = self._calibration(calibration)
        if cal is not None and cal.chip != engine.chip_id:
            chip = engine.chip_id
            raise CalibrationError(f"calibration {calibration} is of chip {cal.chip}, the backend {engine.name} is "
                                   f"{'chip ' + chip if chip else 'no calibrated chip'}",
                                   f"calibrate this chip: neurodeploy calibrate --backend {engine.name} --target "
                                   f"{self.name} -o FILE")
        deployment, _, violations = map_to_bss2(model, self.spec, calibration=cal, weight_copies=weight_copies,
                                                probe_inputs=probe_inputs, delays=delays)
        if violations or deployment is None:
            raise DoesNotFitError(self.name, violations)
        layout = fixed_layout(model, self.spec, deployment, None if cal is None else cal.success)
        return BSS2ItlSession(deployment, layout, self.spec)


class BSS2ItlSession(ItlSession):
    """Fixed placement and scales; weight updates rewrite only synapse weights (itl_layout.py)."""

    def __init__(self, deployment: Deployment, layout: Layout, spec: BSS2Spec) -> None:
        self.layout = layout
        self.deployment = deployment
        self.spec = spec

    def with_threshold_offsets(self, deployment: Deployment, offsets: Mapping[str, np.ndarray]) -> Deployment:
        return with_threshold_offsets(deployment, self.deployment, offsets, self.spec)

    def chip_weights(self, weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return chip_weights(weights, self.layout)

    def clamp(self, weights: Mapping[str, torch.Tensor]) -> None:
        clamp_to_range(weights, self.layout)

    def reconfigured(self, deployment: Deployment, weights: Mapping[str, torch.Tensor]) -> tuple[Deployment, int]:
        return reconfigured(deployment, weights, self.layout)

    def projection_input(self, name: str, source_spikes: torch.Tensor,
                         weights: Mapping[str, torch.Tensor]) -> Optional[torch.Tensor]:
        return delayed_input(name, source_spikes, weights, self.layout)

    def mapping_record(self, deployment: Deployment) -> dict:
        return {"weight_scale": {k: v.clone() for k, v in self.layout.scale.items()},
                "cadc_per_model_unit": {row["name"]: float(row["cadc_per_model_unit"])
                                        for row in deployment.meta["report"]["layers"]}}

