"""A network with two hidden LIF layers (seed 004's multi-layer case, models/yinyang_two_hidden.yaml) goes the
whole way: train, map onto BSS-2 (both hidden layers placed, each projection routed), run on the emulated chip
as it ran in software, and train in the loop."""

from __future__ import annotations

import pytest
import yaml

from neurodeploy.workflows.itl import itl
from neurodeploy.workflows.map import map_model
from neurodeploy.workflows.run import run
from neurodeploy.workflows.train import train
from tests.conftest import ROOT


@pytest.mark.slow
def test_two_hidden_layers_train_map_run_and_itl(tmp_path):
    data = yaml.safe_load((ROOT / "models" / "yinyang_two_hidden.yaml").read_text())
    for layer in data["layers"][:2]:
        layer["size"] = 24
    data["training"]["epochs"] = 3
    recipe = tmp_path / "two_hidden.yaml"
    recipe.write_text(yaml.safe_dump(data))

    metrics = train(recipe, tmp_path / "m.pt", progress=False)
    assert metrics["test_accuracy"] > 0.6, metrics  # above the 1/3 of guessing after 3 short epochs
    report = map_model(tmp_path / "m.pt", "bss2", tmp_path / "d.npz")
    assert [layer["name"] for layer in report["layers"]] == ["hidden1", "hidden2", "output"]
    software = run(tmp_path / "d.npz", "software")["accuracy"]
    chip = run(tmp_path / "d.npz", "mock:ideal")["accuracy"]
    assert abs(chip - software) < 0.05, (software, chip)  # 6-bit weights on both hidden layers cost little

    summary = itl(tmp_path / "m.pt", tmp_path / "itl.pt", backend="mock:ideal", target="bss2", epochs=1,
                  train_samples=200, progress=False)
    assert summary["validation_accuracy_after"] >= summary["validation_accuracy_before"] - 0.02
