"""``neurodeploy report`` and the deployment figures: a self-contained, escaped HTML page; bad inputs are one-line
errors that leave nothing behind; the page renders in headless Chromium (slow test)."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from neurodeploy.cli import main

pytest.importorskip("matplotlib")

HOSTILE = "<script>alert('x')</script><img src=\"x.png\">&"
ESCAPED = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&lt;img src=&quot;x.png&quot;&gt;&amp;"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "(fix: " in lines[0], result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def few_samples(tmp_path_factory) -> Path:
    from neurodeploy.data.datasets import load_data

    x, y = load_data("yinyang", None)
    path = tmp_path_factory.mktemp("data") / "few.npz"
    np.savez(path, x=np.asarray(x[:40]), y=np.asarray(y[:40]))
    return path


@pytest.fixture(scope="module")
def recording(deployment_file, tmp_path_factory) -> Path:
    from neurodeploy.workflows.record import record

    path = tmp_path_factory.mktemp("recording") / "rec.npz"
    record(deployment_file, path, backend="mock:0", samples=5)
    return path


@pytest.fixture(scope="module")
def run_result(deployment_file, few_samples, tmp_path_factory) -> Path:
    from neurodeploy.workflows.run import run

    result = run(deployment_file, backend="mock:0-1", data=str(few_samples), repeat=2)
    path = tmp_path_factory.mktemp("run") / "run.json"
    path.write_text(json.dumps(result, default=str))
    return path


def _data_uris(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def _assert_self_contained(page: str) -> None:
    lowered = page.lower()
    assert "http://" not in lowered and "https://" not in lowered and "<script" not in lowered
    assert "<link" not in lowered and "@import" not in lowered and "url(" not in lowered
    sources = re.findall(r'src="([^"]{0,40})', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources), sources
    assert "href=" not in lowered


def _assert_png(data: bytes) -> None:
    import matplotlib.image

    assert data.startswith(PNG_MAGIC) and len(data) > 1000
    pixels = matplotlib.image.imread(io.BytesIO(data), format="png")
    assert pixels.shape[0] > 50 and pixels.shape[1] > 50 and float(np.var(pixels)) > 1e-4


def test_report_is_self_contained(deployment_file, recording, run_result, tmp_path):
    output = tmp_path / "out" / "report.html"
    result = invoke("report", deployment_file, recording, "--run", run_result, "-o", output, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["output"] == str(output) and summary["bytes"] == output.stat().st_size
    assert summary["sections"] == ["deployment", "resources", "layers", "design rules", "placement", "quantisation",
                                   "recordings", "runs"]
    page = output.read_text(encoding="utf-8")
    _assert_self_contained(page)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert f"Deployment report: {deployment_file.name}" in page and "yinyang" in page and "bss2" in page
    for text in ("<h2>Layers</h2>", "<td>hidden</td>", "<td>output</td>", "fan-in", "clipped weights",
                 "<h2>Resources</h2>", "circuits", "Design rules and checks", "mock:0", "mock:1",
                 "95 % interval of the mean", "accuracy on them"):
        assert text in page, text
    images = _data_uris(page)
    assert len(images) == summary["figures"] >= 5  # placement, quantisation, raster, readout, accuracy per chip
    for image in images:
        _assert_png(image)
    assert [p.name for p in output.parent.iterdir()] == ["report.html"]  # no temporary file left


def test_report_without_recordings_and_human_summary(deployment_file, tmp_path):
    output = tmp_path / "report.html"
    result = invoke("report", deployment_file, "-o", output)
    assert result.exit_code == 0, result.output
    assert "sections" in result.stdout and str(output) in result.stdout
    page = output.read_text()
    _assert_self_contained(page)
    assert "<h2>Recordings</h2>" not in page and len(_data_uris(page)) == 2


def test_report_of_a_xylo_file(xylo_file, tmp_path):
    from neurodeploy.workflows.report import write_report

    summary = write_report(xylo_file, [], tmp_path / "xylo.html")
    page = (tmp_path / "xylo.html").read_text()
    _assert_self_contained(page)
    assert summary["target"] == "xylo" and summary["figures"] == 2 and "XYLO-TAU" in page
    assert "hidden neurons" in page  # Xylo's limits


def test_strings_from_files_are_escaped(deployment_file, tmp_path):
    from neurodeploy.deployment import save_deployment
    from neurodeploy.validation.loading import load_checked_deployment
    from neurodeploy.workflows.report import write_report

    deployment = load_checked_deployment(deployment_file)
    deployment.meta["report"]["warnings"] = [f"BSS2-TEST: {HOSTILE}"]
    deployment.meta["report"]["layers"][0]["detail"] = HOSTILE
    hostile_deployment = tmp_path / "a<b>&c.npz"
    save_deployment(deployment, hostile_deployment)
    run = {"accuracy": 0.5, "backend": HOSTILE, "warnings": [HOSTILE], "n_samples": 3, "target": "bss2",
           "dataset": "yinyang", "data": HOSTILE}
    run_path = tmp_path / "run.json"
    run_path.write_text(json.dumps(run))
    write_report(hostile_deployment, [], tmp_path / "r.html", [run_path])
    page = (tmp_path / "r.html").read_text()
    _assert_self_contained(page)
    assert "a&lt;b&gt;&amp;c.npz" in page and "<b>&c" not in page and HOSTILE not in page
    assert page.count(ESCAPED) == 5  # the warning, the layer's detail, the run's backend, data and warning


def test_bad_inputs_exit_2_and_write_nothing(deployment_file, recording, run_result, tmp_path):
    output = tmp_path / "report.html"
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    not_a_run = tmp_path / "list.json"
    not_a_run.write_text("[1, 2, 3]")
    wrong_target = tmp_path / "xylo_run.json"
    wrong_target.write_text(json.dumps({**json.loads(run_result.read_text()), "target": "xylo"}))
    bad_chips = tmp_path / "chips.json"
    bad_chips.write_text(json.dumps({"accuracy": 0.5, "per_backend": {"mock:0": {"mean": "high"}}}))
    cases = [
        (("report", tmp_path / "missing.npz", "-o", output), "does not exist"),
        (("report", recording, "-o", output), "not a neurodeploy deployment"),
        (("report", deployment_file, deployment_file, "-o", output), "recording"),
        (("report", deployment_file, tmp_path / "missing_rec.npz", "-o", output), "does not exist"),
        (("report", deployment_file, "--run", bad_json, "-o", output), "not valid JSON"),
        (("report", deployment_file, "--run", not_a_run, "-o", output), "not a run result"),
        (("report", deployment_file, "--run", deployment_file, "-o", output), "not a run result"),
        (("report", deployment_file, "--run", tmp_path / "none.json", "-o", output), "does not exist"),
        (("report", deployment_file, "--run", wrong_target, "-o", output), "target"),
        (("report", deployment_file, "--run", bad_chips, "-o", output), "per_backend"),
        (("report", deployment_file, "-o", tmp_path), "directory"),
        (("report", deployment_file, "-o", deployment_file), "input"),
    ]
    for args, fragment in cases:
        _one_line_error(invoke(*args), fragment)
        assert not output.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json", "chips.json", "list.json", "xylo_run.json"]


def test_failure_while_drawing_leaves_no_file(deployment_file, tmp_path, monkeypatch):
    import neurodeploy.deployment_plots as figures
    from neurodeploy.errors import NeurodeployError
    from neurodeploy.workflows.report import write_report

    def broken(*args, **kwargs):
        raise NeurodeployError("drawing failed", "none")

    monkeypatch.setattr(figures, "quantisation_histograms", broken)
    output = tmp_path / "sub" / "report.html"
    with pytest.raises(NeurodeployError):
        write_report(deployment_file, [], output)
    assert not output.exists() and not output.parent.exists()


def test_target_without_placement_says_so(deployment_file, tmp_path, monkeypatch):
    from neurodeploy.deployment_plots import placement_map
    from neurodeploy.targets.base import Target
    from neurodeploy.targets.registry import target_class
    from neurodeploy.validation.loading import load_checked_deployment
    from neurodeploy.workflows.report import write_report

    monkeypatch.setattr(target_class("bss2"), "placement", Target.placement)  # what a plug-in gets by default
    write_report(deployment_file, [], tmp_path / "r.html")
    assert "not available for target bss2" in (tmp_path / "r.html").read_text()
    _assert_png(placement_map(load_checked_deployment(deployment_file), tmp_path / "p.png").read_bytes())


def test_figures_are_png(deployment_file, xylo_file, run_result, tmp_path):
    from neurodeploy.deployment_plots import accuracy_per_chip, placement_map, quantisation_histograms
    from neurodeploy.targets.registry import get_target
    from neurodeploy.validation.loading import load_checked_deployment

    for path in (deployment_file, xylo_file):
        deployment = load_checked_deployment(path)
        panels = get_target(deployment.target).placement(deployment)
        assert panels and all(p.owner.ndim == 2 and p.owner.max() < len(p.legend) for p in panels)
        for draw in (placement_map, quantisation_histograms):
            _assert_png(draw(deployment, tmp_path / f"{path.stem}-{draw.__name__}.png").read_bytes())
    bss2 = load_checked_deployment(deployment_file)
    circuits = get_target("bss2").placement(bss2)[0].owner
    assert circuits.shape == (2, 256) and int((circuits >= 0).sum()) == bss2.meta["report"]["circuits_used"]
    assert get_target("bss2").weight_code_range() == (-63, 63)
    result = json.loads(run_result.read_text())
    _assert_png(accuracy_per_chip(result, tmp_path / "chips.png").read_bytes())
    single = {"accuracy": 0.8, "backend": "mock:0", "n_samples": 10}
    _assert_png(accuracy_per_chip(single, tmp_path / "one.png").read_bytes())


CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _chromium() -> str:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("NEURODEPLOY_REQUIRE_CHROMIUM") == "1":
        pytest.fail(f"NEURODEPLOY_REQUIRE_CHROMIUM=1 but no Chromium binary ({', '.join(CHROMIUM_NAMES)}) is on PATH")
    pytest.skip("no Chromium binary on PATH (Debian: apt-get install chromium) to render the report")


def test_missing_chromium_skips_or_fails(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("NEURODEPLOY_REQUIRE_CHROMIUM", raising=False)
    with pytest.raises(pytest.skip.Exception):
        _chromium()
    monkeypatch.setenv("NEURODEPLOY_REQUIRE_CHROMIUM", "1")
    with pytest.raises(pytest.fail.Exception):
        _chromium()


def _headless(chromium: str, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
             "--enable-logging=stderr", "--v=0"]
    return subprocess.run([chromium, *flags, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_report_renders_in_headless_chromium(deployment_file, recording, run_result, tmp_path):
    import matplotlib.image

    chromium = _chromium()
    output = tmp_path / "report.html"
    invoke("report", deployment_file, recording, "--run", run_result, "-o", output)
    url = output.resolve().as_uri()
    dom = _headless(chromium, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<h2>Layers</h2>" in dom.stdout and dom.stdout.count("<img") >= 5
    screenshot = tmp_path / "shot.png"
    shot = _headless(chromium, f"--screenshot={screenshot}", "--window-size=1280,2400", url)
    assert shot.returncode == 0 and screenshot.is_file(), shot.stderr[-2000:]
    console = [line for line in (dom.stderr + shot.stderr).splitlines() if ":CONSOLE" in line]
    assert console == [], console  # no console message at all: no error, no failed load
    pixels = matplotlib.image.imread(screenshot)
    assert pixels.shape[:2] == (2400, 1280)
    assert float(np.var(pixels[..., :3])) > 0.005  # text, tables and figures, not a blank page
