"""`run --repeat N` and chip ranges (`--backend mock:0-4`): accuracy as mean ± std with the 95 % interval of the
mean (neurodeploy/statistics.py), per chip and over all runs (issue 20.4)."""

from __future__ import annotations

import math

import pytest
from click.testing import CliRunner

from neurodeploy.backends.registry import expand_backends
from neurodeploy.cli import main
from neurodeploy.errors import BackendError, NeurodeployError
from neurodeploy.statistics import spread
from neurodeploy.workflows.run import run


def test_spread_is_mean_sample_std_and_the_t_interval():
    s = spread([0.95, 0.96, 0.97])
    assert s.mean == pytest.approx(0.96) and s.std == pytest.approx(0.01) and s.n == 3
    half = 4.302652729911275 * 0.01 / math.sqrt(3)  # t(0.975, 2 degrees of freedom)
    assert s.interval == pytest.approx((0.96 - half, 0.96 + half))
    assert "96.0 ± 1.0 %" in s.text() and "3 runs" in s.text()
    one = spread([0.9])
    assert one.std == 0.0 and one.interval is None and one.text() == "90.0 % (1 run)"
    with pytest.raises(ValueError):
        spread([])


def test_chip_ranges_expand_and_bad_ranges_are_refused():
    assert expand_backends("mock:0-2:noise=off") == ["mock:0:noise=off", "mock:1:noise=off", "mock:2:noise=off"]
    assert expand_backends("mock:3") == ["mock:3"] and expand_backends("software") == ["software"]
    for bad in ("mock:4-2", "mock:0-64"):
        with pytest.raises(BackendError, match="chip range"):
            expand_backends(bad)


def test_repeats_on_a_chip_range_report_each_chip_and_the_whole(deployment_file):
    result = run(deployment_file, "mock:0-1", repeat=2)
    assert result["n_runs"] == 4 and len(result["runs"]) == 4 and set(result["per_backend"]) == {"mock:0", "mock:1"}
    accuracies = [r["accuracy"] for r in result["runs"]]
    assert result["accuracy"] == pytest.approx(sum(accuracies) / 4)
    low, high = result["accuracy_interval95"]
    assert low <= result["accuracy"] <= high
    assert all(r["backend"] in ("mock:0", "mock:1") for r in result["runs"])
    means = [chip["mean"] for chip in result["per_backend"].values()]
    chips = result["across_chips"]  # the chips are the samples: n = 2, not 4
    assert chips["n_chips"] == 2 and chips["mean"] == pytest.approx(sum(means) / 2)
    assert chips["std"] == pytest.approx(abs(means[0] - means[1]) / 2 ** 0.5)
    assert "across_chips" not in run(deployment_file, "mock:0", repeat=2)
    single = run(deployment_file, "mock:0")
    assert "per_backend" not in single and single["accuracy"] == result["runs"][0]["accuracy"]


def test_one_calibration_file_for_several_chips_is_refused_a_pattern_names_each_chips(deployment_file, tmp_path):
    from neurodeploy.backends.registry import get_backend
    from neurodeploy.workflows.run import calibration_of

    with pytest.raises(NeurodeployError, match="one chip's calibration"):
        run(deployment_file, "mock:0-1", calibration=tmp_path / "c.yaml")
    chip = get_backend("mock:3").chip_id
    assert calibration_of("calibration/mock-{chip}.yaml", chip, True) == "calibration/mock-3.yaml"
    with pytest.raises(NeurodeployError, match="does not exist|no such|not found"):
        run(deployment_file, "mock:0-1", calibration=str(tmp_path / "mock-{chip}.yaml"))


def test_the_command_line_prints_mean_std_and_interval(deployment_file):
    out = CliRunner().invoke(main, ["run", str(deployment_file), "--backend", "mock:0-1", "--repeat", "2"])
    assert out.exit_code == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert "accuracy" in lines[0] and "95 % interval of the mean" in lines[0] and "4 runs" in lines[0]
    assert [line.split(":")[0].strip() for line in lines[1:3]] == ["mock", "mock"] and len(lines) == 4
    assert lines[3].startswith("across chips (chip means):") and "2 chips" in lines[3]
    bad = CliRunner().invoke(main, ["run", str(deployment_file), "--repeat", "0"])
    assert bad.exit_code == 2 and len(bad.stderr.strip().splitlines()) == 1
