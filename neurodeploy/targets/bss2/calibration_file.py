"""The calibration file (``calibration/CHIP.yaml``): what a chip needs to behave as its targets say.

YAML with a format name and version: the chip's identity, the targets, the codes found per
circuit, the measured weight scale (gain line per circuit), residuals, success mask, spreads
before and after, software version, creation time and a SHA-256 checksum over everything else.
Written atomically; a file of another kind, version or with a wrong checksum is rejected.

Loading checks every key before the checksum (:func:`check_calibration_dict`): the chip's identity,
the targets (within the chip's ranges, as ``calibrate`` requires), one code per circuit (and per
quadrant) within the CapMem's and refractory counter's ranges, the threshold switches and success
mask as booleans, a finite positive gain line and finite residuals on every circuit that calibrated,
the MADC's gain and offset, the cost. A refusal is a ``CalibrationError`` naming the field.
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
from ...errors import CalibrationError
from ...fileformat import Envelope, read_envelope
from ...safe_yaml import load_yaml
from ...shipped import resolve
from ...validation.rules import Anything, Array, Fields, Invalid, MapOf, Number, Text, refusal, within
from .analog import NEURON_CODES, QUADRANT_CODES, ChipCodes
from .spec import BSS2Spec, load_bss2_spec

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


TARGET_KEYS = ("v_leak_cadc", "v_reset_cadc", "v_threshold_cadc", "tau_mem_s", "tau_syn_s", "t_ref_s",
               "synaptic_gain_cadc_per_lsb")
LAYOUT = Fields(required={
    "format": Anything(), "version": Anything(), "chip": Text(), "backend": Text(), "target": Text(),
    "created": Text(empty=True), "software_version": Text(),
    "targets": Fields(required={key: Number() for key in TARGET_KEYS}),
    "codes": Fields(required={name: Anything() for name in (*NEURON_CODES, "refractory_counter", "threshold_enabled",
                                                            *QUADRANT_CODES)}),
    "gain_line": Fields(required={"slope": Anything(), "offset_code": Anything()}),
    "residuals": MapOf(Anything(), keys=TARGET_KEYS), "success": Anything(),
    "spread": MapOf(Fields(strict=False)), "madc": Fields(required={"gain": Number(lo=0, lo_open=True),
                                                                    "offset": Number()}),
    "seconds": Number(lo=0), "measurement_rounds": Number(lo=0, integer=True)})


def _array(values: object, name: str) -> np.ndarray:
    """A YAML list as an array (ragged or mixed lists are refused here, typed checks follow)."""
    if isinstance(values, list):
        flags = sum(isinstance(v, bool) for v in values)
        if 0 < flags < len(values):
            raise Invalid(name, "mixes true/false with numbers")
    try:
        array = np.asarray(values)
    except (ValueError, TypeError):
        raise Invalid(name, "is not a flat list of numbers") from None
    if array.dtype.kind not in "biuf":
        raise Invalid(name, "is not a list of numbers")
    return array


def check_calibration_dict(data: dict, spec: BSS2Spec) -> None:
    """Raise :class:`Invalid` naming the first field of a calibration file (without its checksum) that ``spec``'s
    chip could not use (module docstring)."""
    LAYOUT.check(data, "")
    neuron, potentials = spec["neuron"], spec["neuron"]["potentials_cadc"]
    limits = {"tau_mem_s": neuron["tau_mem_s"]["limits"], "tau_syn_s": neuron["tau_syn_s"]["limits"],
              "t_ref_s": neuron["t_ref_s"]["limits"], "v_leak_cadc": potentials["leak"],
              "v_reset_cadc": potentials["reset"], "v_threshold_cadc": potentials["threshold"]}
    for key, interval in limits.items():
        within(data["targets"][key], interval, f"targets.{key}", "the chip's range")
    gain = "synaptic_gain_cadc_per_lsb"
    Number(lo=0, lo_open=True).check(data["targets"][gain], f"targets.{gain}")
    n, quadrants = spec.total_circuits, spec["capmem"]["quadrants"]
    code_max, refractory = spec["capmem"]["code_max"], spec["refractory"]
    codes = data["codes"]
    for name in NEURON_CODES:
        Array("int", (n,), lo=0, hi=code_max).check(_array(codes[name], f"codes.{name}"), f"codes.{name}")
    Array("int", (n,), lo=0, hi=refractory["counter_max"]).check(
        _array(codes["refractory_counter"], "codes.refractory_counter"), "codes.refractory_counter")
    Array("bool", (n,)).check(_array(codes["threshold_enabled"], "codes.threshold_enabled"), "codes.threshold_enabled")
    Array("int", (quadrants,), lo=0, hi=code_max).check(
        _array(codes["synapse_dac_bias"], "codes.synapse_dac_bias"), "codes.synapse_dac_bias")
    Array("int", (quadrants,), lo=0, hi=refractory["scaler_max"]).check(
        _array(codes["refractory_scaler"], "codes.refractory_scaler"), "codes.refractory_scaler")
    success = _array(data["success"], "success")
    Array("bool", (n,)).check(success, "success")
    # A circuit that failed calibration is never placed: its measurements may be anything (NaN included).
    for name, values, lo in (("gain_line.slope", data["gain_line"]["slope"], 0.0),
                             ("gain_line.offset_code", data["gain_line"]["offset_code"], None),
                             *((f"residuals.{k}", v, None) for k, v in data["residuals"].items())):
        array = _array(values, name).astype(float)
        Array("float", (n,), finite=False).check(array, name)
        Array("float", lo=lo, lo_open=lo is not None).check(array[success], f"{name} (calibrated circuits)")


def load_calibration(path: str | Path) -> Calibration:
    """Read a calibration file; a bare name (``mock-0``) that is no file is a shipped example
    (``calibration/NAME.yaml`` in a checkout, the package's copy when installed)."""
    path = resolve("calibration", path)
    data = read_envelope(path, ENVELOPE, load_yaml)
    remedy = "calibrate the chip again: `neurodeploy calibrate --backend mock:N --target bss2 -o FILE`"
    stored = data.pop("checksum", None)
    try:
        Text().check(stored, "checksum")
        check_calibration_dict(data, load_bss2_spec())
    except Invalid as invalid:
        raise refusal(CalibrationError, f"calibration {path}", invalid, remedy, prefer_remedy=True) from None
    if stored != checksum(data):
        raise CalibrationError(f"calibration {path} fails its checksum: it was edited or damaged after writing",
                               remedy)
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
