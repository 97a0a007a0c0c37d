"""Target spec files (``targets/NAME.yaml``): the envelope every target shares.

A spec file carries ``format: neurodeploy.target``, a ``version``, the target's ``name`` (a
lower-case identifier) and a ``description``; everything else is the target's own limits as data,
each value with its source, and only the target that owns the file reads and validates those
sections (with :mod:`neurodeploy.validation.rules`; :func:`refuse_spec` words the error).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Mapping


from ..errors import TargetSpecError
from ..fileformat import Envelope, read_envelope
from ..safe_yaml import load_yaml
from ..shipped import shipped_dir
from ..validation.common import yaml_numbers
from ..validation.rules import Invalid, Text, refusal

FORMAT = "neurodeploy.target"
VERSION = 1
ENVELOPE = Envelope("target spec", FORMAT, (VERSION,),
                    "start from a shipped spec, e.g. targets/xylo.yaml")
ENVELOPE_KEYS = ("format", "version", "name", "description")  # what every spec has; the rest is its target's
NAME = re.compile(r"[a-z][a-z0-9_-]*\Z")


def targets_dir() -> Path:
    """Where named targets live: ``$NEURODEPLOY_TARGETS``, else the shipped ``targets/`` folder.

    That is the checkout's top-level ``targets/`` in a source tree (editable install), else the copy
    inside the installed package (:func:`neurodeploy.shipped.shipped_dir`).
    """
    return Path(os.environ.get("NEURODEPLOY_TARGETS") or shipped_dir("targets"))


@dataclass(frozen=True)
class TargetSpec:
    """A target's limits as loaded: its name, description and the raw sections of its file."""

    name: str
    description: str
    raw: Mapping[str, Any]
    path: str = ""

    def __getitem__(self, section: str) -> Any:
        return self.raw[section]

    def require(self, sections: tuple[str, ...]) -> None:
        """Raise ``TargetSpecError`` naming the sections a target needs that the file lacks."""
        missing = [key for key in sections if key not in self.raw]
        if missing:
            raise TargetSpecError(f"target spec {self.path or self.name} lacks sections {missing}",
                                  f"add them (see targets/{self.name}.yaml)")


def refuse_spec(spec: TargetSpec, invalid: Invalid) -> TargetSpecError:
    """The one-line error for a spec key that breaks its rule: file, key, rule, and a fix that points at the
    shipped spec."""
    error = refusal(TargetSpecError, f"target spec {spec.path or spec.name}", invalid, "")
    error.fix = f"{invalid.fix or 'fix it'} (see targets/{spec.name}.yaml)"
    return error


def spec_path(name_or_path: str | Path) -> Path:
    """A target name (``bss2``) → its file in :func:`targets_dir`; a path stays a path."""
    path = Path(name_or_path)
    return path if path.suffix else targets_dir() / f"{name_or_path}.yaml"


def load_spec(path: str | Path) -> TargetSpec:
    """Read a spec file and check its envelope (format, version, name); not its target's sections."""
    path = Path(path)
    if not path.is_file():
        raise TargetSpecError(f"target spec file {path} does not exist",
                              "give a target name (see `neurodeploy targets`) or the path of a spec file")
    data = read_envelope(path, ENVELOPE, lambda p: yaml_numbers(load_yaml(p)))  # 10e-3: a number (YAML 1.2)
    if not isinstance(data.get("name"), str) or not data["name"]:
        raise TargetSpecError(f"target spec {path} has no name", "add 'name: TARGET' to it")
    if not NAME.match(data["name"]):
        raise TargetSpecError(f"target spec {path}: name = {data['name']!r} is not a lower-case identifier",
                              "name the target with letters, digits, '_' and '-', e.g. name: loihi2")
    try:
        Text(empty=True).check(data.get("description", ""), "description")
    except Invalid as invalid:
        raise refusal(TargetSpecError, f"target spec {path}", invalid, "") from None
    return TargetSpec(name=data["name"], description=str(data.get("description", "")), raw=data, path=str(path))
