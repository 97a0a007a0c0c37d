"""YAML reading with limits: every YAML file neurodeploy reads (recipes, target specs, calibrations).

``yaml.safe_load`` never runs code, but a small file can still expand without bound (an alias
bomb), nest deep enough to exhaust the stack, or be large enough to exhaust memory. Our files
need none of that: aliases are refused, nesting is limited to :data:`MAX_DEPTH`, and files to
:data:`MAX_BYTES`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 32 * 2**20  # a calibration of 512 circuits is about 0.2 MiB
MAX_DEPTH = 32


class LimitError(yaml.YAMLError):
    """A YAML document beyond the limits above."""


class _LimitedLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses aliases and deep nesting while composing the document."""

    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise LimitError("YAML aliases (*name) are not allowed in neurodeploy files")
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise LimitError(f"YAML nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def load_yaml_text(text: str) -> Any:
    """Parse one YAML document within the limits; a ``yaml.YAMLError`` (or ``LimitError``) otherwise."""
    if len(text) > MAX_BYTES:
        raise LimitError(f"YAML text larger than {MAX_BYTES // 2**20} MiB")
    loader = _LimitedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def load_yaml(path: str | Path) -> Any:
    """Read and parse a YAML file within the limits (size checked before reading)."""
    path = Path(path)
    if path.stat().st_size > MAX_BYTES:
        raise LimitError(f"{path} is larger than {MAX_BYTES // 2**20} MiB")
    return load_yaml_text(path.read_text())
