"""Hints instead of silent surprises: an ideal chip has nothing to calibrate, an uncalibrated chip is named as
the cause of low accuracy, and itl refuses to train on an uncalibrated chip unless asked to."""

from __future__ import annotations

import json

from click.testing import CliRunner

from neurodeploy.cli import main
from neurodeploy.workflows.run import run


def test_calibrating_the_ideal_chip_says_there_is_nothing_to_do(tmp_path):
    out = tmp_path / "ideal.yaml"
    result = CliRunner().invoke(main, ["calibrate", "--backend", "mock:ideal", "-o", str(out)])
    assert result.exit_code == 0 and "nothing to calibrate" in result.output and not out.exists()


def test_an_uncalibrated_chip_is_named_as_the_cause(deployment_file):
    uncalibrated = run(deployment_file, "mock:0")["warnings"]
    assert any("runs this deployment uncalibrated" in w and "neurodeploy calibrate --backend mock:0" in w
               for w in uncalibrated)
    assert not any("uncalibrated" in w for w in run(deployment_file, "mock:ideal")["warnings"])


def test_itl_refuses_an_uncalibrated_chip_unless_asked(trained_model, tmp_path):
    out = tmp_path / "itl.pt"
    refused = CliRunner().invoke(main, ["itl", str(trained_model), "--backend", "mock:0", "-o", str(out),
                                        "--train-samples", "60", "--epochs", "1"])
    assert refused.exit_code == 2 and refused.stderr.count("\n") == 1
    assert "--uncalibrated" in refused.stderr and "neurodeploy calibrate --backend mock:0" in refused.stderr
    assert list(tmp_path.iterdir()) == []
    asked = CliRunner().invoke(main, ["itl", str(trained_model), "--backend", "mock:0", "--uncalibrated", "-o",
                                      str(out), "--train-samples", "60", "--epochs", "1", "--json"])
    assert asked.exit_code == 0, asked.output
    assert json.loads(asked.output.strip().splitlines()[-1])["backend"] == "mock:0" and out.is_file()


def test_itl_takes_the_weight_copies_the_model_was_trained_with(trained_model, tmp_path):
    from neurodeploy.modelfile import load_model
    from neurodeploy.workflows.itl import itl

    itl(trained_model, tmp_path / "first.pt", backend="mock:ideal", epochs=1, train_samples=60, weight_copies=3,
        progress=False)
    itl(tmp_path / "first.pt", tmp_path / "second.pt", backend="mock:ideal", epochs=1, train_samples=60,
        progress=False)  # no weight copies given: the model's
    assert load_model(tmp_path / "second.pt").mapping["weight_copies"] == 3
    itl(trained_model, tmp_path / "plain.pt", backend="mock:ideal", epochs=1, train_samples=60, progress=False)
    assert load_model(tmp_path / "plain.pt").mapping["weight_copies"] == 1
