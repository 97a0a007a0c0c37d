"""The spine's promises, measured: the shipped recipes trained from scratch, mapped, emulated.

Slow (about 2–3 minutes on 2 cores); CI runs them because nothing faster proves the accuracy the
README claims: Yin-Yang ≥ 97 % in software and ≥ 95 % on the ideal mock (BSS-2's published
figure is about 95 %), digits ≥ 95 % and ≥ 93 %.
"""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from neurodeploy.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _json(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("task,software_min,mock_min", [("yinyang", 0.97, 0.95), ("digits", 0.95, 0.93)])
def test_recipe_reaches_published_accuracy(tmp_path, task, software_min, mock_min):
    model, deployment = tmp_path / f"{task}.pt", tmp_path / f"{task}.npz"
    trained = _json("train", ROOT / "models" / f"{task}.yaml", "-o", model, "--json")
    software = _json("evaluate", model, "--json")
    assert software["accuracy"] == pytest.approx(trained["test_accuracy"])
    report = _json("map", model, "--target", "bss2", "-o", deployment, "--json")
    assert not any(layer["silent"] for layer in report["layers"])
    mock = _json("run", deployment, "--backend", "mock:ideal", "--json")
    print(f"{task}: software {software['accuracy']:.3f}, mock {mock['accuracy']:.3f}, "
          f"{trained['training_seconds']:.0f} s training")
    assert software["accuracy"] >= software_min
    assert mock["accuracy"] >= mock_min
