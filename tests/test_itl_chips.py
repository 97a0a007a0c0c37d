"""`itl --backend mock:0-1`: several chips in the loop at once, one set of weights; `--nproc 2` drives them from two
processes and trains the same weights, every rank holding them after every step."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from neurodeploy.cli import main
from test_json_schemas import documented
from neurodeploy.itl.chips import Ranks
from neurodeploy.modelfile import load_model
from neurodeploy.workflows.itl import itl

SETTINGS = {"epochs": 1, "train_samples": 120, "uncalibrated": True, "progress": False}


def test_one_process_and_two_train_the_same_weights_on_two_chips(trained_model, tmp_path):
    one = itl(trained_model, tmp_path / "one.pt", backend="mock:0-1", **SETTINGS)
    two = itl(trained_model, tmp_path / "two.pt", backend="mock:0-1", nproc=2, **SETTINGS)
    a, b, given = load_model(tmp_path / "one.pt"), load_model(tmp_path / "two.pt"), load_model(trained_model)
    for name in a.weights:  # the same steps, up to the order of floating-point sums
        assert torch.allclose(a.weights[name], b.weights[name], atol=1e-4), name
    assert any(not torch.equal(a.weights[n], given.weights[n]) for n in a.weights) or one["kept_epoch"] == 0
    assert [c["chip"] for c in one["chips"]] == ["mock-chip-0", "mock-chip-1"] and two["processes"] == 2
    assert one["test_accuracy_before"] == pytest.approx(sum(c["test_accuracy_before"] for c in one["chips"]) / 2)
    assert one["history"][0]["validation_accuracy_per_chip"] == pytest.approx(
        two["history"][0]["validation_accuracy_per_chip"], abs=0.02)
    assert a.mapping["trained_on"]["chips"] == ["mock-chip-0", "mock-chip-1"]
    assert a.mapping["trained_on"]["chip"] is None
    assert b.provenance["processes"] == 2 and not (tmp_path / "two.pt.checkpoint").exists()
    required, optional = documented()["itl"]  # what --json prints, as docs/json.md documents it
    assert required - set(one) == {"schema"} and set(one) - required - optional == set()


def test_every_rank_holds_the_same_weights_after_every_step(trained_model, tmp_path):
    from neurodeploy.itl.checkpoint import checkpoint_path
    from neurodeploy.itl.run import Checkpointing
    from neurodeploy.workflows.parallel_itl import itl_parallel

    trace = tmp_path / "trace"
    trace.mkdir()
    out = tmp_path / "p.pt"
    itl_parallel(trained_model, out, ["mock:0", "mock:1", "mock:2"], [None, None, None], 2, backend="mock:0-2",
                 target="bss2", checkpoint=Checkpointing(checkpoint_path(out), {}, False), trace_dir=trace,
                 epochs=1, train_samples=120, uncalibrated=True)
    steps = [json.loads((trace / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert len(steps[0]) >= 2 and steps[0] == steps[1]  # identical after every optimiser step (3 chips, 2 ranks)


def test_a_run_resumed_over_two_ranks_trains_what_one_process_resumed_does(trained_model, tmp_path, monkeypatch):
    """Epoch 1 in one process, interrupted before the output is written (its checkpoint stays); epoch 2 resumed
    from that checkpoint once in one process and once in two: the same weights, every rank having loaded it."""
    out = tmp_path / "out.pt"
    checkpoint = tmp_path / "out.pt.checkpoint"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("neurodeploy.workflows.itl.save_model", interrupted)
    with pytest.raises(KeyboardInterrupt):
        itl(trained_model, out, backend="mock:0-1", **SETTINGS)
    monkeypatch.undo()
    assert checkpoint.is_file() and not out.exists()
    kept = checkpoint.read_bytes()
    resumed = {}
    for nproc in (1, 2):
        checkpoint.write_bytes(kept)
        summary = itl(trained_model, out, backend="mock:0-1", nproc=nproc, resume=True, **{**SETTINGS, "epochs": 2})
        assert summary["resumed_from_epoch"] == 1 and [r["epoch"] for r in summary["history"]] == [1, 2]
        assert not checkpoint.exists()
        resumed[nproc] = load_model(out).weights
        out.unlink()
    for name in resumed[1]:
        assert torch.allclose(resumed[1][name], resumed[2][name], atol=1e-4), name


@pytest.mark.parametrize("args, message", [
    (["--backend", "mock:0-1", "--nproc", "3"], "--nproc 3"),
    (["--backend", "mock:0-1", "--calibration", "cal.yaml"], "pattern"),
    (["--backend", "mock:0-1", "--method", "asf"], "one chip"),
])
def test_bad_settings_are_one_line_and_write_nothing(trained_model, tmp_path, args, message):
    (tmp_path / "cal.yaml").write_text("")
    args = [a.replace("cal.yaml", str(tmp_path / "cal.yaml")) for a in args]
    result = CliRunner().invoke(main, ["itl", str(trained_model), "--uncalibrated", "-o", str(tmp_path / "o.pt"),
                                       "--train-samples", "50", "--epochs", "1", *args])
    assert result.exit_code == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o.pt").exists() and not (tmp_path / "o.pt.checkpoint").exists()


def test_ranks_deal_the_chips_round_robin():
    class Fake:
        rank, world = 1, 3

    ranks = Ranks(Fake())
    assert [k for k in range(7) if ranks.mine(k)] == [1, 4]


def test_one_chip_through_the_several_chip_loop_trains_what_the_one_chip_loop_does(trained_model):
    """K = 1: the shard is the whole batch and the weighting 1, so both loops take the same steps."""
    from neurodeploy.backends.registry import get_backend
    from neurodeploy.itl.chips_run import train_on_chips
    from neurodeploy.itl.run import train_in_the_loop
    from neurodeploy.targets.registry import get_target

    model, settings = load_model(trained_model), {"epochs": 1, "train_samples": 120, "progress": False,
                                                  "uncalibrated": True}
    one, summary = train_in_the_loop(model, get_backend("mock:2"), get_target("bss2"), **settings)
    loop, chips = train_on_chips(model, [get_backend("mock:2")], get_target("bss2"), [None], backend="mock:2",
                                 **settings)
    for name in one.weights:
        assert torch.allclose(one.weights[name], loop.weights[name], atol=1e-6), name
    assert chips["test_accuracy_after"] == summary["test_accuracy_after"]
    for key in ("loss", "train_accuracy_on_chip", "validation_accuracy_on_chip", "synapses_rewritten"):
        assert chips["history"][0][key] == pytest.approx(summary["history"][0][key], rel=1e-6), key
    assert summary["history"][0]["synapses_rewritten"] > 0
