"""Recordings (`run --record -o rec.npz`) and their figures (`neurodeploy plot`): the chip's spikes and
membranes beside the software model's, in model units on the model's time axis."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from neurodeploy.cli import main
from neurodeploy.workflows.record import load_recording, record


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
