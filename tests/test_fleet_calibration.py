"""`calibrate --backend mock:A-B`: several chips, one file each, in parallel worker processes."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from neurodeploy.cli import main
from neurodeploy.targets.bss2.calibration_file import load_calibration
from neurodeploy.workflows.calibrate import calibrate_chip, calibrate_chips


@pytest.mark.parametrize("args, message", [
    (["-o", "one.yaml"], "is one chip's calibration"),
    (["-o", "cal-{chip}.yaml", "--plot", "plots"], "is one chip's calibration"),
    (["-o", "cal-{chip}.yaml", "--workers", "0"], "--workers"),
])
def test_a_range_of_chips_needs_patterns_and_sane_workers(tmp_path, args, message, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["calibrate", "--backend", "mock:0-1", *args])
    assert result.exit_code == 2 and message in result.stderr and result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_two_workers_write_what_one_chip_at_a_time_writes(tmp_path):
    """Each chip's calibration is its own: the same codes whether its worker ran beside another or not."""
    summary = calibrate_chips("mock:0-1", output=str(tmp_path / "mock-{chip}.yaml"), workers=2, progress=False)
    assert [chip["chip"] for chip in summary["chips"]] == ["mock-chip-0", "mock-chip-1"] and summary["workers"] == 2
    alone = calibrate_chip("mock:1", output=tmp_path / "alone-1.yaml", progress=False)
    pooled, single = load_calibration(tmp_path / "mock-1.yaml"), load_calibration(tmp_path / "alone-1.yaml")
    assert alone["calibrated"] == summary["chips"][1]["calibrated"]
    for name in ("v_leak", "v_threshold", "i_bias_leak", "i_bias_syn_tau", "i_bias_synin_gm"):
        assert np.array_equal(getattr(pooled.codes, name), getattr(single.codes, name)), name
    assert (tmp_path / "mock-0.yaml").is_file()
