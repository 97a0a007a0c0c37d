"""`train --nproc 2`: data-parallel training with torch.distributed (gloo) — every rank holds the same weights
after every step, and they are the weights one process would train."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from conftest import tiny_recipe
from neurodeploy.cli import main
from neurodeploy.modelfile import load_model
from neurodeploy.workflows.parallel_train import train_parallel
from neurodeploy.workflows.train import train


def test_two_ranks_hold_the_same_weights_after_every_step_and_match_one_process(tmp_path):
    recipe = tiny_recipe(tmp_path, **{"training.epochs": 1, "training.batch_size": 75})  # odd shards: 38 + 37
    trace = tmp_path / "trace"
    trace.mkdir()
    parallel = train_parallel(recipe, tmp_path / "two.pt", 2, trace_dir=trace)
    steps = [json.loads((trace / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert len(steps[0]) > 10 and steps[0] == steps[1]  # identical after every optimiser step
    single = train(recipe, tmp_path / "one.pt", progress=False)
    two, one = load_model(tmp_path / "two.pt"), load_model(tmp_path / "one.pt")
    for name in one.weights:  # the same steps, up to the order of floating-point sums
        assert torch.allclose(two.weights[name], one.weights[name], atol=1e-4), name
    assert parallel["processes"] == 2 and abs(parallel["test_accuracy"] - single["test_accuracy"]) <= 0.01
    assert two.provenance["processes"] == 2


@pytest.mark.parametrize("args, message", [(["--nproc", "0"], "--nproc"), (["--nproc", "100"], "--nproc")])
def test_bad_process_counts_are_one_line_errors(tmp_path, args, message):
    result = CliRunner().invoke(main, ["train", str(tiny_recipe(tmp_path)), "-o", str(tmp_path / "m.pt"), *args])
    assert result.exit_code == 2 and message in result.stderr and not (tmp_path / "m.pt").exists()
