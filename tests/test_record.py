"""Recordings (`run --record -o rec.npz`) and their figures (`neurodeploy plot`): the chip's spikes and
membranes beside the software model's, in model units on the model's time axis."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from neurodeploy.cli import main
from neurodeploy.backends.mock.variation import MockEffects, draw_variation
from neurodeploy.deployment import Deployment
from neurodeploy.targets.bss2.spec import load_bss2_spec
from neurodeploy.workflows.record import _madc_scale, load_recording, record


def test_a_recording_holds_chip_and_software_in_model_units(deployment_file, tmp_path):
    summary = record(deployment_file, tmp_path / "rec.npz", "mock:ideal", samples=40)
    meta, arrays = load_recording(tmp_path / "rec.npz")
    assert summary["samples"] == meta["samples"] == 40 and meta["backend"] == "mock:ideal"
    steps = arrays["spikes"].shape[0]
    assert arrays["spikes"].shape == arrays["software_spikes"].shape == (steps, 40, len(arrays["neuron_layer"]))
    assert arrays["spikes"].sum() > 0 and arrays["software_spikes"].sum() > 0
    # the readout's membrane, converted from CADC, follows the float model's (they differ by 6-bit weights)
    readout = np.flatnonzero(arrays["neuron_layer"][arrays["recorded"]] == len(meta["layers"]) - 1)
    chip, software = arrays["membrane"][..., readout], arrays["software_readout"]
    assert chip.shape == software.shape
    assert np.corrcoef(chip.ravel(), software.ravel())[0, 1] > 0.95
    assert abs(chip.max() - software.max()) < 0.2 * software.max()
    assert summary["accuracy"] == pytest.approx(float((arrays["predictions"] == arrays["labels"]).mean()))


def test_run_record_and_plot_from_the_command_line(deployment_file, tmp_path):
    rec, folder = tmp_path / "rec.npz", tmp_path / "plots"
    result = CliRunner().invoke(main, ["run", str(deployment_file), "--backend", "mock:0", "--record",
                                       "--record-samples", "5", "-o", str(rec), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["samples"] == 5
    drawn = CliRunner().invoke(main, ["plot", str(rec), "-o", str(folder), "--sample", "4"])
    assert drawn.exit_code == 0, drawn.output
    for name in ("raster.png", "readout.png"):
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args, message", [
    (["--record"], "--record and -o go together"),
    (["--record", "-o", "x.npz", "--repeat", "2"], "--record runs once"),
])
def test_bad_record_options_are_one_line(deployment_file, tmp_path, args, message):
    result = CliRunner().invoke(main, ["run", str(deployment_file), *[a.replace("x.npz", str(tmp_path / "x.npz"))
                                                                       for a in args]])
    assert result.exit_code == 2 and message in result.stderr and result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_plot_refuses_what_is_not_a_recording(deployment_file, tmp_path):
    result = CliRunner().invoke(main, ["plot", str(deployment_file), "-o", str(tmp_path / "p")])
    assert result.exit_code == 2 and "not a neurodeploy recording" in result.stderr
    record(deployment_file, tmp_path / "rec.npz", "mock:ideal", samples=2)
    result = CliRunner().invoke(main, ["plot", str(tmp_path / "rec.npz"), "-o", str(tmp_path / "p"), "--sample", "2"])
    assert result.exit_code == 2 and "the recording has 2 samples" in result.stderr


def test_membranes_of_chosen_neurons_with_the_madc_and_a_synaptic_current(deployment_file, tmp_path):
    """On the ideal chip the CADC, the MADC (its scale fitted on the same run) and the synaptic current read by the
    MADC all follow the float model's, neuron by neuron; the readout is always kept."""
    summary = record(deployment_file, tmp_path / "rec.npz", "mock:ideal", samples=10,
                     what="spikes,membrane:hidden/1-3,current:hidden/2")
    meta, arrays = load_recording(tmp_path / "rec.npz")
    first_readout = int(np.flatnonzero(arrays["neuron_layer"] == len(meta["layers"]) - 1)[0])
    assert arrays["recorded"][:3].tolist() == [1, 2, 3] and arrays["recorded"][3] == first_readout
    assert int(arrays["madc_neuron"]) == 1 and int(arrays["current_neuron"]) == 2 == summary["current_neuron"]
    assert meta["madc_scale"]["source"].startswith("fit")
    assert arrays["madc_codes"].dtype == np.float32  # the ideal chip does not round its MADC
    for chip, software in ((arrays["membrane"][..., :3], arrays["software_membrane"][..., :3]),
                           (arrays["madc"], arrays["software_membrane"][..., 0]),
                           (arrays["current"], arrays["software_current"])):
        assert chip.shape == software.shape and software.std() > 0
        assert np.corrcoef(chip.ravel(), software.ravel())[0, 1] > 0.95
        assert np.abs(chip - software).mean() < 0.15 * np.abs(software).max()


def test_the_madc_scale_is_the_calibration_s_else_a_fit_that_finds_the_chip_s(deployment_file, tmp_path):
    """Uncalibrated, the MADC's codes are put on the CADC's scale by a fit on the same run; on mock chip 0 that
    fit finds the chip's own MADC gain and offset (which calibration measures the same way, bss2.md §1.6)."""
    summary = record(deployment_file, tmp_path / "rec.npz", "mock:0", samples=20, what="membrane:hidden/0")
    variation = draw_variation(0, load_bss2_spec(), MockEffects())
    fitted = summary["madc_scale"]
    assert fitted["per_code"] == pytest.approx(1 / variation.madc_gain, rel=0.03)
    assert fitted["offset"] == pytest.approx(-variation.madc_offset / variation.madc_gain, abs=1.5)
    calibrated = Deployment(meta={"calibration": {"madc": {"gain": 4.0, "offset": 60.0}}}, arrays={})
    assert _madc_scale(calibrated, np.zeros((2, 2)), None) == {"per_code": 0.25, "offset": -15.0,
                                                               "source": "calibration"}


@pytest.mark.parametrize("what, message", [
    ("spikes,voltage", "unknown 'voltage'"), ("membrane:nothere", "no layer 'nothere'"),
    ("membrane:hidden/0-999", "outside 0-"), ("membrane:hidden/x", "is not LAYER"),
])
def test_bad_record_lists_are_one_line(deployment_file, tmp_path, what, message):
    result = CliRunner().invoke(main, ["run", str(deployment_file), "--record", what, "-o", str(tmp_path / "r.npz")])
    assert result.exit_code == 2 and message in result.stderr and result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_backend_without_madc_refuses_a_current_and_records_membranes(deployment_file, tmp_path):
    result = CliRunner().invoke(main, ["run", str(deployment_file), "--backend", "software", "--record", "current",
                                       "-o", str(tmp_path / "r.npz")])
    assert result.exit_code == 2 and "has no MADC" in result.stderr
    record(deployment_file, tmp_path / "rec.npz", "software", samples=3, what="membrane:hidden")
    meta, arrays = load_recording(tmp_path / "rec.npz")
    hidden = len(np.flatnonzero(arrays["neuron_layer"] == 0))
    assert "madc" not in arrays and np.array_equal(arrays["membrane"][..., :hidden],
                                                   arrays["software_membrane"][..., :hidden])
