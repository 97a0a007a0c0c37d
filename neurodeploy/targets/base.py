"""The target interface: what a substrate (BSS-2, Xylo, ...) gives the verbs.

A target is its limits as data (``targets/NAME.yaml``), its design rules, its mapping (lower,
quantise, place, route) into its own deployment schema, the delay strategies it realises, the
backends that execute its deployments, and optional hooks for calibration and in-the-loop
training. Verbs find targets through :mod:`neurodeploy.targets.registry` and talk to them only
through this class; nothing generic imports a target's internals.

A new target subclasses :class:`Target`, sets ``name``, implements :meth:`Target.check`,
:meth:`Target.map`, :meth:`Target.limits` and :meth:`Target.backend`, and overrides the optional
hooks it supports; the defaults of the optional hooks raise an error that says the target does
not offer them.

Every deployment, whatever its target, carries in ``meta``: ``target``, ``graph``, ``dt_s``,
``encoding``, ``dataset``, ``layers``, ``layer_kinds``, ``readout_neurons`` (first logical id,
count), ``training`` (:func:`training_meta`: loss, reset detach, the surrogate gradient), ``report`` and
``chip`` (None unless bound to one chip); and the
float weights as ``float_weight:PROJECTION`` arrays, so that the ``software`` backend runs any
target's deployment as the ideal reference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple, Optional
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from ..backends.base import Backend
from ..core.surrogate import surrogate_of
from ..deployment import Deployment
from ..errors import DesignRuleViolation, NeurodeployError
from ..modelfile import ModelFile
from .spec import TargetSpec, load_spec, spec_path


def training_meta(model: ModelFile) -> dict[str, Any]:
    """A deployment's ``meta.training``: the model's loss, reset detach and surrogate gradient (``surrogate``,
    every parameter; ``surrogate_steepness`` as the model file has it, None for a kind other than SuperSpike)."""
    return {**{k: model.training.get(k) for k in ("surrogate_steepness", "detach_reset", "loss")},
            "surrogate": surrogate_of(model.training).to_dict()}


class MapOptions(NamedTuple):
    """How to map; a target names the options it honours in ``Target.options``."""

    clip_quantile: float = 1.0  # quantile of |w| that maps to the largest integer weight (1.0: no clipping)
    weight_scale: str = "per-neuron"  # one quantisation scale per target neuron, or "per-projection"
    calibration: Optional[str | Path] = None  # a calibration file of the chip to deploy on
    delays: Optional[str] = None  # how trained delays are realised (one of Target.delay_strategies)
    weight_copies: Optional[int] = None  # synapses that share one weight (None: as the model was trained)
    probe_inputs: Optional[torch.Tensor] = None  # encoded training samples [T, B, C] for the rate diagnostics


DEFAULT_OPTIONS = MapOptions()


class CheckResult(NamedTuple):
    """Every design rule a model breaks on a target, and the warnings (fidelity, ranges)."""

    violations: list[DesignRuleViolation]
    warnings: list[str]


class MapResult(NamedTuple):
    """A deployment (None when rules are broken), its report, and every violation."""

    deployment: Optional[Deployment]
    report: dict
    violations: list[DesignRuleViolation]


class PlacementPanel(NamedTuple):
    """One grid of a target's resources for the placement figure (:mod:`neurodeploy.deployment_plots`): each
    cell is one resource (a neuron circuit, a synapse, a driver, ...) and holds the index into ``legend`` of what
    uses it, -1 where nothing does. Targets put the deployment's layers first in ``legend``, in the order of
    ``meta.layers``, so that a layer has one colour in every panel."""

    title: str
    owner: np.ndarray  # [rows, columns] int
    legend: tuple[str, ...]
    row_label: str
    column_label: str


class ItlSession:
    """What in-the-loop training needs from a target for one model on one chip.

    The deployment is made once; afterwards only weights change: :meth:`chip_weights` gives the
    weights as the chip holds them (forward) with identity gradient (backward), :meth:`clamp`
    keeps the float shadow weights where quantisation still sees them, :meth:`reconfigured`
    writes new weights into the deployment and says how many synapses changed, and
    :meth:`mapping_record` is what the output model keeps so that ``map`` reproduces the scales.
    """

    deployment: Deployment

    def chip_weights(self, weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def clamp(self, weights: Mapping[str, torch.Tensor]) -> None:
        raise NotImplementedError

    def reconfigured(self, deployment: Deployment, weights: Mapping[str, torch.Tensor]) -> tuple[Deployment, int]:
        raise NotImplementedError

    def mapping_record(self, deployment: Deployment) -> dict:
        raise NotImplementedError

    def with_threshold_offsets(self, deployment: Deployment, offsets: Mapping[str, np.ndarray]) -> Deployment:
        """The deployment with each named layer's thresholds moved by ``offsets`` (model units, one per neuron) from
        where the mapping put them: what a plasticity program's homeostasis writes."""
        raise NeurodeployError("this target's chips cannot have their thresholds rewritten by a plasticity program",
                               "use a program without homeostasis (theta_gain: 0), or learn on BSS-2")

    def projection_input(self, name: str, source_spikes: torch.Tensor,
                         weights: Mapping[str, torch.Tensor]) -> Optional[torch.Tensor]:
        """The input ``[T, B, post]`` that projection ``name`` delivers from its source's spikes ``[T, B, pre]``
        with the chip's weights (:meth:`chip_weights`), where the target realises it in its own way (learned
        delays on BSS-2); None: the plain product one step late, :math:`W z_{k-1}`."""
        return None


class Target:
    """Base class of targets; see the module docstring for the contract."""

    name: str = ""
    options: frozenset[str] = frozenset()  # MapOptions fields honoured beyond their defaults
    delay_strategies: tuple[str, ...] = ()  # realisations of learned delays; () means none
    file_formats: dict[str, Callable[[Path], dict]] = {}  # YAML formats it owns → summary for `inspect`
    spec_file: Optional[Path] = None  # its spec file; None: targets/NAME.yaml (a plug-in ships its own)

    def __init__(self, spec: TargetSpec) -> None:
        self.spec = spec

    @classmethod
    def load(cls, path: Optional[str | Path] = None) -> Target:
        """The target with its spec file (default :attr:`spec_file`, else ``targets/NAME.yaml``)."""
        return cls(load_spec(spec_path(path if path is not None else cls.spec_file or cls.name)))

    @property
    def description(self) -> str:
        return self.spec.description

    # -- required -----------------------------------------------------------------------------
    def limits(self) -> dict[str, Any]:
        """The limits a user compares a model against, as ``{name: value}`` (for ``neurodeploy targets``)."""
        raise NotImplementedError

    def check(self, model: ModelFile, options: MapOptions = DEFAULT_OPTIONS) -> CheckResult:
        """Run every design rule (nothing is written)."""
        raise NotImplementedError

    def map(self, model: ModelFile, options: MapOptions = DEFAULT_OPTIONS) -> MapResult:
        """Lower, check, quantise, place and route ``model``."""
        raise NotImplementedError

    def backend(self, name: str) -> Optional[Backend]:
        """The backend called ``name`` if this target provides it, else None."""
        raise NotImplementedError

    def backend_names(self) -> list[str]:
        """The backend names this target provides, as a user types them (for help texts)."""
        return []

    def expand_backend(self, name: str) -> list[str]:
        """The backends a name stands for: several where it names a range of chips (BSS-2: ``mock:0-4``), else
        ``[name]``."""
        return [name]

    # -- optional hooks -----------------------------------------------------------------------
    def engine_status(self) -> dict[str, Any]:
        """Which implementation this target's emulators run on and why (``doctor``); default: nothing to say."""
        return {}

    def placement(self, deployment: Deployment) -> list[PlacementPanel]:
        """Where ``deployment`` sits on the chip, as grids of resources (:class:`PlacementPanel`), for the
        deployment report's placement figure; default: none (the report says the target draws no placement)."""
        return []

    def weight_code_range(self) -> Optional[tuple[int, int]]:
        """The smallest and largest integer weight a ``quantised_weight:*`` array may hold on this target (for the
        report's quantisation histograms); default None: unknown, the histograms show the codes used."""
        return None

    def model_unit_weights(self, deployment: Deployment) -> dict[str, np.ndarray]:
        """The weights the chip holds, dequantised to model units (``[post, pre]`` per projection), for simulators
        that run the model's equations (``export --format pynn``, ``pynn:*`` backends); default: refused, as for
        a target whose neurons are not the model's LIF in model units."""
        raise NeurodeployError(f"target '{self.name}' deployments hold no weights in model units (its neurons are "
                               "not the model's LIF)", "export or run the model file, or map it with --target bss2")

    def validate_deployment(self, deployment: Deployment) -> None:
        """Check what only this target understands in a loaded ``deployment`` (its arrays and meta keys), after
        the checks every deployment passes (:mod:`neurodeploy.validation.deployment`); raise
        :class:`neurodeploy.validation.rules.Invalid` naming the field. A target overrides this (default:
        nothing more to check); the built-in targets' checks are ``neurodeploy/targets/NAME/validate.py``."""

    def for_backend(self, deployment: Deployment, engine: Backend,
                    calibration: Optional[str | Path] = None) -> Deployment:
        """The deployment as ``engine``'s chip needs it (default: unchanged; a calibration is refused)."""
        if calibration is not None:
            raise NeurodeployError(f"target '{self.name}' takes no calibration file",
                                   "run without --calibration")
        return deployment

    def calibrate(self, engine: Backend, sets: dict[str, float], *, output: Optional[str | Path] = None,
                  seed: int = 0, plot_dir: Optional[str | Path] = None, progress: bool = True) -> dict:
        """Calibrate the chip behind ``engine`` and write ``output``; returns the summary."""
        raise NeurodeployError(f"target '{self.name}' has no calibration (nothing on it is analog)",
                               "run its deployments without calibrating")

    def itl_session(self, model: ModelFile, engine: Backend, calibration: Optional[str | Path],
                    weight_copies: int, probe_inputs: Optional[torch.Tensor] = None,
                    delays: Optional[str] = None) -> ItlSession:
        """The deployment and weight handling of in-the-loop training (see :class:`ItlSession`); ``delays``: the
        realisation of learned delays, where the target has several."""
        raise NeurodeployError(f"target '{self.name}' does not support in-the-loop training",
                               "use a target that does (see `neurodeploy targets`)")

    def map_chips(self, model: ModelFile, chips: int, options: MapOptions = DEFAULT_OPTIONS) -> tuple[Any, dict, list]:
        """Map ``model`` over ``chips`` chips: ``(MultiChipDeployment or None, report, violations)``
        (:mod:`neurodeploy.multichip`)."""
        raise NeurodeployError(f"target '{self.name}' maps onto one chip only", "leave out --chips")

    def chip_pipeline(self, multi: Any, engines: Sequence[Backend]) -> Any:
        """A runner of a multi-chip deployment on one backend per chip: ``run(input_times_s, record)`` →
        ``(the readout chip's Observations, counters of all chips)``."""
        raise NeurodeployError(f"target '{self.name}' runs no multi-chip deployments", "map onto one chip")

    def calibration_identity(self, calibration: str | Path) -> dict:
        """``{"chip", "checksum", "created"}`` of a calibration file of this target (for itl's fingerprint)."""
        raise NeurodeployError(f"target '{self.name}' takes no calibration file", "run without --calibration")

    def check_options(self, options: MapOptions) -> None:
        """Refuse options this target does not honour, naming them."""
        for field in MapOptions._fields:
            if field == "probe_inputs":
                continue
            if getattr(options, field) != getattr(DEFAULT_OPTIONS, field) and field not in self.options:
                flag = "--" + field.replace("_", "-")
                raise NeurodeployError(f"target '{self.name}' does not support {flag}",
                                       f"leave {flag} out for target '{self.name}'")
