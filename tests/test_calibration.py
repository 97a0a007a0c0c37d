"""Calibration: it measures only through the backend, recovers injected parameters, masks dead
circuits, and its file is checked (kind, checksum, chip, targets)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from neurodeploy.backends.mock.chip import MockChip
from neurodeploy.backends.mock.variation import realise
from neurodeploy.calibration.calibrate import calibrate, calibration_targets, spread
from neurodeploy.targets.bss2.calibration_file import load_calibration
from neurodeploy.calibration.measure import Meter
from neurodeploy.errors import CalibrationError, FileKindError, NeurodeployError
from neurodeploy.targets.bss2.analog import nominal_codes
from neurodeploy.targets.bss2.spec import load_bss2_spec
from neurodeploy.modelfile import load_model
from neurodeploy.targets.bss2.mapper import map_to_bss2
from neurodeploy.calibration.session import calibration_from_result
from neurodeploy.workflows.calibrate import calibrate_chip
from neurodeploy.workflows.map import map_model
from neurodeploy.workflows.run import run

SPEC = load_bss2_spec()
DEAD = (3, 300)


class OnlyRun:
    """A backend that offers nothing but the interface: a name, a chip identity and ``run``.

    Reading the mock's hidden parameters through it is impossible (AttributeError).
    """

    def __init__(self, inner: MockChip) -> None:
        self._run, self.name, self.chip_id = inner.run, inner.name, inner.chip_id

    def run(self, deployment, input_times_s, record=None):
        return self._run(deployment, input_times_s, record)


def _default_codes():
    targets = calibration_targets(SPEC)
    full = lambda v: np.full(SPEC.total_circuits, float(v))  # noqa: E731
    return nominal_codes({"v_leak_cadc": full(targets["v_leak_cadc"]), "v_reset_cadc": full(targets["v_reset_cadc"]),
                          "v_th_cadc": full(targets["v_threshold_cadc"]), "tau_mem_s": full(targets["tau_mem_s"]),
                          "tau_syn_s": full(targets["tau_syn_s"]), "t_ref_s": full(targets["t_ref_s"]),
                          "synaptic_gain_cadc_per_lsb": full(2.0)}, SPEC)


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """Chip 2 with two dead circuits, calibrated through a backend that only offers ``run``."""
    chip = MockChip(2, dead_circuits=DEAD)
    result = calibrate(OnlyRun(chip), SPEC, calibration_targets(SPEC), progress=False)
    return chip, result


@pytest.mark.slow
def test_calibration_recovers_the_targets_on_the_chips_hidden_parameters(calibrated):
    chip, result = calibrated
    targets = calibration_targets(SPEC)
    truth = realise(result.codes, chip._chip.variation, SPEC, chip._chip.dead)  # the test may look inside
    ok = result.success
    assert abs(np.median(truth.v_leak[ok]) - targets["v_leak_cadc"]) < 1.0
    assert np.std(truth.v_th[ok]) < 1.5
    for name, target in (("tau_mem_s", targets["tau_mem_s"]), ("tau_syn_s", targets["tau_syn_s"])):
        relative = getattr(truth, name)[ok] / target - 1
        assert abs(np.median(relative)) < 0.01 and np.std(relative) < 0.03
    # The gain line measured on the chip predicts the gain the chip really gives at another code.
    code = np.full(SPEC.total_circuits, 400)
    predicted = result.gain_slope * (code - result.gain_offset_code)
    actual = realise(result.codes._replace(i_bias_synin_gm=code), chip._chip.variation, SPEC).gain_cadc_per_lsb
    assert np.median(np.abs(predicted[ok] / actual[ok] - 1)) < 0.02


@pytest.mark.slow
def test_spreads_shrink_at_least_as_calix_requires(calibrated):
    _, result = calibrated
    limits = {"v_leak_cadc": 0.30, "v_reset_cadc": 0.20, "v_threshold_cadc": 0.35, "tau_mem_s": 0.45, "tau_syn_s": 0.20}
    for name, limit in limits.items():
        before, after = spread(result.uncalibrated[name], name), spread(result.measured[name], name)
        assert after <= limit * before, name
    assert spread(result.measured["tau_mem_s"], "tau_mem_s") <= 0.03
    assert spread(result.measured["tau_syn_s"], "tau_syn_s") <= 0.03


@pytest.mark.slow
def test_dead_circuits_fail_calibration_and_map_avoids_them(calibrated, trained_model):
    chip, result = calibrated
    assert not result.success[list(DEAD)].any()
    assert result.success.sum() >= SPEC.total_circuits - 10
    calibration = calibration_from_result(result, chip, SPEC, calibration_targets(SPEC))
    deployment, _, violations = map_to_bss2(load_model(trained_model), SPEC, calibration=calibration)
    assert not violations
    used = deployment["neuron_circuits"]
    assert used.max() > DEAD[0] and not np.isin(used, DEAD).any()


def test_measurements_read_injected_parameters_through_the_readouts():
    chip = MockChip(1)
    meter = Meter(OnlyRun(chip), SPEC)
    codes = _default_codes()
    meter.cross_calibrate_madc(codes)
    truth = realise(codes, chip._chip.variation, SPEC)
    assert np.abs(meter.rest(codes) - truth.v_leak).max() < 1.5
    assert np.median(np.abs(meter.tau_syn(codes) / truth.tau_syn_s - 1)) < 0.03
    assert np.median(np.abs(meter.threshold(codes) - truth.v_th)) < 1.0


def test_the_interface_hides_the_chip():
    with pytest.raises(AttributeError):
        OnlyRun(MockChip(0))._chip  # noqa: B018 - calibration could not read it either


@pytest.fixture(scope="module")
def calibration_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cal") / "0.yaml"
    summary = calibrate_chip("mock:0", output=path, progress=False)
    return path, summary


@pytest.mark.slow
def test_calibrate_writes_a_checked_file_and_map_and_run_use_it(calibration_file, trained_model, tmp_path):
    path, summary = calibration_file
    assert summary["measurement_rounds"] > 50 and summary["calibrated"] > 500
    for row in summary["parameters"].values():
        assert row["spread_after"] < row["spread_before"]
    cal = load_calibration(path)
    assert cal.chip == "mock-chip-0" and len(cal.checksum) == 64
    deployment = tmp_path / "c0.npz"
    report = map_model(trained_model, "bss2", deployment, calibration=path)
    assert report["chip"] == "mock-chip-0"
    assert run(deployment, "mock:0", progress=False)["accuracy"] > 0.5
    with pytest.raises(CalibrationError, match="calibrated for chip mock-chip-0"):
        run(deployment, "mock:1")
    with pytest.raises(CalibrationError, match="is of chip mock-chip-0"):
        run(deployment, "mock:1", calibration=path)


@pytest.mark.slow
def test_damaged_or_foreign_calibration_files_are_refused(calibration_file, trained_model, tmp_path):
    path, _ = calibration_file
    data = yaml.safe_load(path.read_text())
    data["codes"]["v_leak"][0] += 1
    tampered = tmp_path / "tampered.yaml"
    tampered.write_text(yaml.safe_dump(data))
    with pytest.raises(CalibrationError, match="checksum"):
        load_calibration(tampered)
    other = tmp_path / "other.yaml"
    other.write_text("format: neurodeploy.recipe\nversion: 1\n")
    with pytest.raises(FileKindError, match="not a neurodeploy calibration"):
        load_calibration(other)
    truncated = tmp_path / "truncated.yaml"
    truncated.write_text(path.read_text()[:500])
    with pytest.raises(NeurodeployError):
        load_calibration(truncated)


@pytest.mark.slow
def test_a_calibration_for_other_neuron_parameters_is_refused(trained_model, tmp_path):
    path = tmp_path / "fast.yaml"
    calibrate_chip("mock:0", sets={"tau_mem_s": 6e-6}, output=path, progress=False)
    with pytest.raises(CalibrationError, match="tau_mem_s"):
        map_model(trained_model, "bss2", tmp_path / "x.npz", calibration=path)
    assert not (tmp_path / "x.npz").exists()


def test_bad_targets_are_one_line_errors():
    with pytest.raises(NeurodeployError, match="unknown calibration target"):
        calibration_targets(SPEC, {"tau_membrane": 1e-5})
    with pytest.raises(NeurodeployError, match="outside the chip's range"):
        calibration_targets(SPEC, {"tau_mem_s": 1.0})
    with pytest.raises(NeurodeployError, match="no chip to calibrate"):
        calibrate_chip("software", progress=False)


def test_plot_writes_one_histogram_per_parameter(tmp_path):
    from neurodeploy.plots import calibration_histograms

    rng = np.random.default_rng(0)
    before = {"v_leak_cadc": 60 + 7 * rng.standard_normal(512),
              "tau_mem_s": 1e-5 * (1 + 0.1 * rng.standard_normal(512))}
    after = {k: v.mean() + 0.05 * (v - v.mean()) for k, v in before.items()}
    written = calibration_histograms(before, after, {"v_leak_cadc": 60.0, "tau_mem_s": 1e-5}, tmp_path)
    assert [p.name for p in written] == ["calibration_v_leak_cadc.png", "calibration_tau_mem_s.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in written)
