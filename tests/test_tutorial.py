"""docs/tutorial.md runs as written: every ``bash`` block, in order, in a fresh folder, as one script that
stops at the first failing command; its ``sh`` block (set-up) is the Makefile's."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

TUTORIAL = ROOT / "docs" / "tutorial.md"


def blocks(language: str) -> list[str]:
    return [code for lang, code in re.findall(r"```(\w*)\n(.*?)```", TUTORIAL.read_text(), re.S) if lang == language]


def test_the_set_up_block_is_the_makefile_s():
    commands = [line.split("#")[0].strip() for block in blocks("sh") for line in block.splitlines()]
    assert "make setup" in commands and ". .venv/bin/activate" in commands
    assert re.search(r"^setup:", (ROOT / "Makefile").read_text(), re.M)


def test_the_images_the_tutorial_shows_exist():
    for name in re.findall(r"\]\((img/[\w.-]+)\)", TUTORIAL.read_text()):
        assert (TUTORIAL.parent / name).read_bytes()[:4] == b"\x89PNG", name


@pytest.mark.slow
def test_every_command_of_the_tutorial_runs(tmp_path):
    (tmp_path / "models").symlink_to(ROOT / "models")
    script = "set -euo pipefail\nmkdir -p tut\n" + "\n".join(blocks("bash"))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = tmp_path / "tut" / "figures"
    for name in ("training.png", "accuracy_per_chip.png", "placement.png", "quantisation.png", "raster.png",
                 "membrane.png", "current.png", "readout.png", "itl.png", "sample-3/raster.png"):
        assert (figures / name).read_bytes()[:4] == b"\x89PNG", name
    assert "95 % interval of the mean" in done.stdout
    page = (tmp_path / "tut" / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 5
    if os.environ.get("NEURODEPLOY_TUTORIAL_IMAGES"):  # refresh docs/img from this run
        target = Path(os.environ["NEURODEPLOY_TUTORIAL_IMAGES"])
        for name in ("raster.png", "membrane.png", "placement.png"):
            (target / name).write_bytes((figures / name).read_bytes())
