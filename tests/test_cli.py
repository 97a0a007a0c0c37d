"""The command line: verbs, --json, and bad input (one line, exit 2, nothing written)."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from neurodeploy.cli import main
from conftest import tiny_recipe


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result


def test_train_json_prints_one_object(tmp_path):
    out = tmp_path / "m.pt"
    result = invoke("train", tiny_recipe(tmp_path), "-o", out, "--epochs", 1, "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["epochs"] == 1 and 0 <= payload["test_accuracy"] <= 1 and out.is_file()


def test_evaluate_map_run_inspect(trained_model, tmp_path):
    evaluation = json.loads(invoke("evaluate", trained_model, "--json").stdout)
    assert {"accuracy", "n_samples", "backend"} <= set(evaluation) and evaluation["n_samples"] == 1000
    deployment = tmp_path / "d.npz"
    mapped = json.loads(invoke("map", trained_model, "--target", "bss2", "-o", deployment, "--json").stdout)
    assert {"circuits_used", "circuits_available", "rows_used", "synapses_used", "layers"} <= set(mapped)
    ran = json.loads(invoke("run", deployment, "--backend", "mock:ideal", "--json").stdout)
    assert ran["backend"] == "mock:ideal" and ran["n_samples"] == 1000
    assert abs(ran["accuracy"] - evaluation["accuracy"]) < 0.1
    data = tmp_path / "few.npz"
    np.savez(data, x=np.random.rand(11, 4), y=np.zeros(11, int))
    few = json.loads(invoke("run", deployment, "--backend", "software", "--data", data, "--json").stdout)
    assert few["n_samples"] == 11
    for path, kind in ((trained_model, "model"), (deployment, "deployment")):
        assert json.loads(invoke("inspect", path, "--json").stdout)["kind"] == kind
    text = invoke("map", trained_model, "-o", tmp_path / "d2.npz").stdout
    assert "circuits" in text and "hidden" in text


def test_targets_and_doctor():
    assert json.loads(invoke("targets", "--json").stdout)["targets"][0]["limits"]["neuron circuits"] == 512
    assert "kernel" in json.loads(invoke("doctor", "--json").stdout)


def _one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


def test_missing_and_foreign_files(tmp_path, trained_model):
    _one_line_error(invoke("evaluate", tmp_path / "nope.pt"), "does not exist")
    _one_line_error(invoke("run", trained_model), "not a readable deployment")
    recipe_as_model = Path(__file__).parents[1] / "models" / "yinyang.yaml"
    _one_line_error(invoke("map", recipe_as_model, "-o", tmp_path / "x.npz"), "not a readable model file")
    _one_line_error(invoke("run", trained_model, "--backend", "mock:ideal"), "deployment")
    _one_line_error(invoke("inspect", tmp_path / "nope"), "does not exist")
    assert not (tmp_path / "x.npz").exists()


def test_truncated_model(tmp_path, trained_model):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(trained_model.read_bytes()[:3000])
    _one_line_error(invoke("map", broken, "-o", tmp_path / "out.npz"), "truncated")
    assert not (tmp_path / "out.npz").exists()


@pytest.mark.parametrize("change,fragment", [({"training.epohcs": 3}, "epohcs"),
                                             ({"layers.0.neuron.tau_mem_s": -0.01}, "tau_mem_s")])
def test_bad_recipe_writes_nothing(tmp_path, change, fragment):
    out = tmp_path / "m.pt"
    _one_line_error(invoke("train", tiny_recipe(tmp_path, **change), "-o", out), fragment)
    assert not out.exists() and list(tmp_path.glob(".m.pt*")) == []


def test_model_that_does_not_fit(tmp_path):
    out = tmp_path / "big.pt"
    assert invoke("train", tiny_recipe(tmp_path, **{"layers.0.size": 700}), "-o", out, "--epochs", 1).exit_code == 0
    result = invoke("map", out, "--target", "bss2", "-o", tmp_path / "big.npz")
    _one_line_error(result, "BSS2-NEURONS", "needs 718", "available 512")
    assert not (tmp_path / "big.npz").exists()
    checked = invoke("map", out, "--check", "--json")
    assert checked.exit_code == 2 and json.loads(checked.stdout)["violations"][0]["rule"] == "BSS2-NEURONS"


def test_unknown_backend_and_target(deployment_file, trained_model):
    _one_line_error(invoke("run", deployment_file, "--backend", "loihi"), "unknown backend 'loihi'")
    _one_line_error(invoke("map", trained_model, "--target", "spinnaker"), "unknown target 'spinnaker'")
    _one_line_error(invoke("run", deployment_file, "--backend", "hxtorch"), "hxtorch")


@pytest.mark.parametrize("args, message", [
    (("--backend", "software"), "no chip to calibrate"),
    (("--backend", "mock:0", "--set", "tau_mem=1e-5"), "unknown calibration target"),
    (("--backend", "mock:0", "--set", "tau_mem_s"), "is not NAME=NUMBER"),
    (("--backend", "mock:0", "--set", "tau_mem_s=5"), "outside the chip's range"),
    (("--backend", "mock:zero"), "not a chip number"),
])
def test_calibrate_bad_input_is_one_line_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "c.yaml"
    result = invoke("calibrate", *args, "-o", out)
    assert result.exit_code == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_run_refuses_a_missing_calibration_file(deployment_file, tmp_path):
    result = invoke("run", deployment_file, "--backend", "mock:0", "--calibration", tmp_path / "none.yaml")
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_usage_errors_are_one_line():
    for args in (("map",), ("map", "x.pt", "--bogus"), ("nope",), ("map", "x.pt", "--clip-quantile", "abc")):
        _one_line_error(invoke(*args), "fix: see `neurodeploy")


def test_unexpected_errors_are_one_line_without_debug(monkeypatch, trained_model):
    import neurodeploy.workflows.evaluate as evaluate

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(evaluate, "evaluate", broken)
    result = invoke("evaluate", trained_model)
    assert result.exit_code == 1 and result.stderr.strip().splitlines() == [
        "error: internal error: RuntimeError: boom (fix: rerun with --debug and report the traceback)"]
    with pytest.raises(RuntimeError):
        CliRunner().invoke(main, ["--debug", "evaluate", str(trained_model)], catch_exceptions=False)


def test_outputs_are_checked_before_any_work(tmp_path, trained_model):
    recipe = tiny_recipe(tmp_path)
    _one_line_error(invoke("train", recipe, "-o", tmp_path), "is a directory")
    _one_line_error(invoke("train", recipe, "-o", recipe), "also an input")
    _one_line_error(invoke("map", trained_model, "-o", recipe / "x.npz"), "which is a file")
    deep = tmp_path / "new" / "folder" / "d.npz"
    assert invoke("map", trained_model, "--target", "xylo", "-o", deep).exit_code == 0 and deep.is_file()


def test_import_and_export_through_the_cli(tmp_path, trained_model):
    import nir

    from test_nir_errors import CASES, _complete

    graph = tmp_path / "model.nir"
    _one_line_error(invoke("export", trained_model, "-o", graph), "refractory")  # NIR cannot say t_ref
    assert not graph.exists()
    assert invoke("export", trained_model, "-o", graph, "--lossy").exit_code == 0 and graph.is_file()
    back = tmp_path / "back.pt"
    result = invoke("import", graph, "-o", back, "--like", tiny_recipe(tmp_path), "--json")
    assert result.exit_code == 0, result.output and back.is_file()
    assert json.loads(result.stdout)["populations"][-1][1] == "li"
    for name in ("threshold", "dangling edge", "nan tau"):  # an unsupported node, a dangling edge, a NaN tau
        bad = tmp_path / f"{name.replace(' ', '_')}.nir"
        nir.write(bad, _complete(name, CASES[name][0]))
        _one_line_error(invoke("import", bad, "-o", tmp_path / "x.pt"), "fix:")
    for content in (b"", b"not a nir file", graph.read_bytes()[:200]):  # empty, foreign, damaged
        bad = tmp_path / "bad.nir"
        bad.write_bytes(content)
        _one_line_error(invoke("import", bad, "-o", tmp_path / "x.pt"), "fix:")
    assert not (tmp_path / "x.pt").exists()
