"""Target specs (``targets/NAME.yaml``) loaded into a typed, validated object."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from ..errors import FileKindError, TargetSpecError

FORMAT = "neurodeploy.target"
VERSION = 1
REQUIRED = ("geometry", "synapse", "merging", "time", "neuron", "readout", "delays")


def targets_dir() -> Path:
    """Where named targets live: ``$NEURODEPLOY_TARGETS`` or the project's ``targets/`` folder."""
    return Path(os.environ.get("NEURODEPLOY_TARGETS", Path(__file__).resolve().parents[2] / "targets"))


@dataclass(frozen=True)
class TargetSpec:
    name: str
    description: str
    raw: Mapping[str, Any]

    def __getitem__(self, section: str) -> Mapping[str, Any]:
        return self.raw[section]

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
        g = self.raw["geometry"]
        return self.total_rows * g["circuits_per_hemisphere"]

    @property
    def weight_max(self) -> int:
        return 2 ** self.raw["synapse"]["weight_bits"] - 1

    @property
    def labels_per_driver(self) -> int:
        return 2 ** self.raw["synapse"]["label_bits"]

    @property
    def speedup(self) -> float:
        return float(self.raw["time"]["speedup"])


def available_targets() -> list[str]:
    return sorted(p.stem for p in targets_dir().glob("*.yaml"))


def load_target(name_or_path: str | Path) -> TargetSpec:
    """A target by name (``bss2``) or by path to its YAML file."""
    path = Path(name_or_path)
    if not path.suffix:
        path = targets_dir() / f"{name_or_path}.yaml"
    if not path.is_file():
        raise TargetSpecError(f"unknown target '{name_or_path}'",
                              f"use one of {available_targets()} (see `neurodeploy targets`)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise TargetSpecError(f"target file {path} is not valid YAML ({exc.__class__.__name__})", "fix its syntax") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise FileKindError(f"{path} is not a neurodeploy target spec", f"it must start with 'format: {FORMAT}'")
    if data.get("version") != VERSION:
        raise FileKindError(f"{path} has target version {data.get('version')}, this neurodeploy reads {VERSION}",
                            "update the file or neurodeploy")
    missing = [key for key in REQUIRED if key not in data]
    if missing:
        raise TargetSpecError(f"target spec {path} lacks sections {missing}", "add them (see targets/bss2.yaml)")
    g = data["geometry"]
    if g["synapse_drivers_per_hemisphere"] != g["buses_per_hemisphere"] * g["drivers_per_bus"]:
        raise TargetSpecError(f"{path}: drivers per hemisphere != buses x drivers per bus",
                              "make the geometry consistent")
    return TargetSpec(name=str(data["name"]), description=str(data.get("description", "")), raw=data)
