"""The calibration file (``calibration/CHIP.yaml``): what a chip needs to behave as its targets say.

YAML with a format name and version: the chip's identity, the targets, the codes found per
circuit, the measured weight scale (gain line per circuit), residuals, success mask, spreads
before and after, software version, creation time and a SHA-256 checksum over everything else.
Written atomically; a file of another kind, version or with a wrong checksum is rejected.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import yaml

from ... import __version__
from ...atomic import atomic_path
from ...errors import CalibrationError, FileKindError
from ...fileformat import Envelope, read_envelope
from ...safe_yaml import load_yaml
from ...shipped import resolve
from .analog import ChipCodes

FORMAT = "neurodeploy.calibration"
VERSION = 1
ENVELOPE = Envelope("calibration", FORMAT, (VERSION,),
                    "calibrate the chip: `neurodeploy calibrate --backend mock:N --target bss2 -o FILE`")


@dataclass
class Calibration:
    chip: str  # the chip's unique identity as its backend reports it
    backend: str
    target: str
    targets: dict  # hardware units
    codes: ChipCodes
    gain_slope: np.ndarray  # CADC per weight LSB per i_synin_gm code
    gain_offset_code: np.ndarray
    residuals: dict  # parameter → measured − target per circuit
    success: np.ndarray
    spread: dict  # parameter → {"before", "after"}
    madc: dict  # {"gain", "offset"}: MADC against CADC
    seconds: float
    measurement_rounds: int
    created: str = ""
    software_version: str = __version__
    checksum: str = ""

    def body(self) -> dict:
        """Plain data (lists and numbers), as written, without the checksum."""
        return {
            "format": FORMAT, "version": VERSION, "chip": self.chip, "backend": self.backend, "target": self.target,
            "created": self.created, "software_version": self.software_version, "targets": self.targets,
            "codes": {k: np.asarray(v).astype(int).tolist() if k != "threshold_enabled" else np.asarray(v).tolist()
                      for k, v in self.codes._asdict().items()},
            "gain_line": {"slope": _floats(self.gain_slope), "offset_code": _floats(self.gain_offset_code)},
            "residuals": {k: _floats(v) for k, v in self.residuals.items()},
            "success": np.asarray(self.success).astype(bool).tolist(),
            "spread": self.spread, "madc": self.madc, "seconds": self.seconds,
            "measurement_rounds": self.measurement_rounds,
        }

    def gain_codes(self, gain_cadc_per_lsb: np.ndarray) -> np.ndarray:
        """i_synin_gm codes (unclipped, float) that give each circuit the requested synaptic gain."""
        slope = np.where(self.gain_slope > 0, self.gain_slope, np.nan)
        return self.gain_offset_code + gain_cadc_per_lsb / slope


def _floats(values: np.ndarray) -> list:
    return [float(f"{v:.6g}") for v in np.asarray(values, float)]


def checksum(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def save_calibration(calibration: Calibration, path: str | Path) -> Calibration:
    """Write atomically; returns the calibration with its creation time and checksum set."""
    calibration.created = calibration.created or datetime.now(timezone.utc).isoformat(timespec="seconds")
    body = calibration.body()
    calibration.checksum = checksum(json.loads(json.dumps(body)))
    with atomic_path(path) as tmp:
        Path(tmp).write_text(yaml.safe_dump({**body, "checksum": calibration.checksum}, sort_keys=False,
                                            default_flow_style=None, width=120))
    return calibration


def load_calibration(path: str | Path) -> Calibration:
    """Read a calibration file; a bare name (``mock-0``) that is no file is a shipped example
    (``calibration/NAME.yaml`` in a checkout, the package's copy when installed)."""
    path = resolve("calibration", path)
    data = read_envelope(path, ENVELOPE, load_yaml)
    stored = data.pop("checksum", None)
    if stored != checksum(data):
        raise CalibrationError(f"calibration {path} fails its checksum: it was changed or damaged after writing",
                               "calibrate the chip again")
    try:
        codes = ChipCodes(**{k: np.asarray(v, bool if k == "threshold_enabled" else np.int32)
                             for k, v in data["codes"].items()})
        return Calibration(
            chip=data["chip"], backend=data["backend"], target=data["target"], targets=data["targets"], codes=codes,
            gain_slope=np.asarray(data["gain_line"]["slope"], float),
            gain_offset_code=np.asarray(data["gain_line"]["offset_code"], float),
            residuals={k: np.asarray(v, float) for k, v in data["residuals"].items()},
            success=np.asarray(data["success"], bool), spread=data["spread"], madc=data["madc"],
            seconds=data["seconds"], measurement_rounds=data["measurement_rounds"], created=data["created"],
            software_version=data["software_version"], checksum=stored)
    except (KeyError, TypeError, ValueError) as exc:
        raise FileKindError(f"calibration {path} lacks or mangles a field ({exc})",
                            "calibrate the chip again") from None
