"""Every verb's ``--json`` object names its schema, and its fields are exactly the ones docs/json.md lists for
it (required ones present, nothing undocumented): the page cannot fall behind the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import ROOT, tiny_recipe
from neurodeploy.cli import JSON_SCHEMA_VERSION, main


def documented() -> dict[str, tuple[set[str], set[str]]]:
    """docs/json.md: heading → (required fields, optional fields). A bullet's fields are the backticked names
    before its first ``: `` or ``*(``; a bullet with a ``*(...)*`` marker lists optional fields."""
    sections: dict[str, tuple[set[str], set[str]]] = {}
    heading = None
    bullets: list[str] = []
    for line in (ROOT / "docs" / "json.md").read_text().splitlines() + ["### end"]:
        if line.startswith("### ") or line.startswith("- "):
            for bullet in bullets:
                head = re.split(r": |\*\(", bullet, maxsplit=1)[0]
                names = set(re.findall(r"`([a-z_0-9]+)`", head))
                sections[heading][1 if "*(" in bullet else 0].update(names)  # type: ignore[index]
            bullets = []
        if line.startswith("### "):
            heading = line[4:].strip()
            sections[heading] = (set(), set())
        elif line.startswith("- "):
            bullets = [line[2:]]
        elif line.startswith("  ") and heading and sections and bullets:
            bullets[-1] += " " + line.strip()
    sections.pop("end")
    return sections


def emitted(args: list[str]) -> dict:
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code in (0, 2), result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def files(trained_model, deployment_file, excitatory_model, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("json")
    (folder / "program.yaml").write_text("format: neurodeploy.plasticity\nversion: 1\nrule: unchanged\n"
                                         "projections: [input->hidden]\n")
    return {"model": trained_model, "deployment": deployment_file, "folder": folder, "excitatory": excitatory_model}


CASES = {
    "train": lambda f: ["train", str(tiny_recipe(f["folder"], **{"training.epochs": 1})), "-o",
                        str(f["folder"] / "t.pt")],
    "evaluate": lambda f: ["evaluate", str(f["model"])],
    "map": lambda f: ["map", str(f["model"]), "--target", "bss2", "-o", str(f["folder"] / "m.npz")],
    "map --check": lambda f: ["map", str(f["model"]), "--check"],
    "run": lambda f: ["run", str(f["deployment"])],
    "run (several chips or --repeat)": lambda f: ["run", str(f["deployment"]), "--repeat", "2"],
    "run --record": lambda f: ["run", str(f["deployment"]), "--record", "-o", str(f["folder"] / "r.npz"),
                               "--record-samples", "3"],
    "calibrate (ideal chip)": lambda f: ["calibrate", "--backend", "mock:ideal"],
    "itl": lambda f: ["itl", str(f["model"]), "--backend", "mock:ideal", "-o", str(f["folder"] / "i.pt"),
                      "--epochs", "1", "--train-samples", "64"],
    "learn": lambda f: ["learn", str(f["excitatory"]), "--program", str(f["folder"] / "program.yaml"), "--backend",
                        "mock:ideal", "--train-samples", "20", "-o", str(f["folder"] / "l.pt")],
    "export": lambda f: ["export", str(f["model"]), "--lossy", "-o", str(f["folder"] / "e.nir")],
    "import": lambda f: ["import", str(f["folder"] / "e.nir"), "--like", "yinyang", "-o", str(f["folder"] / "n.pt")],
    "targets": lambda f: ["targets"],
    "doctor": lambda f: ["doctor"],
    "report": lambda f: ["report", str(f["deployment"]), "-o", str(f["folder"] / "report.html")],
    "inspect": lambda f: ["inspect", str(f["model"])],
}


def test_every_documented_schema_is_tested_and_every_verb_documented():
    verbs = {name for name in main.commands if name != "plot"}  # plot prints file names, no JSON
    sections = documented()
    slow = {"calibrate", "calibrate (several chips)"}  # calibrating chips: the slow test below
    assert set(sections) - slow == set(CASES)
    assert verbs == {heading.split()[0] for heading in sections}


@pytest.mark.parametrize("heading", list(CASES))
def test_a_verb_prints_the_documented_fields(files, heading):
    obj = emitted(CASES[heading](files))
    verb = heading.split()[0]
    assert obj["schema"] == f"neurodeploy.{verb}/{JSON_SCHEMA_VERSION}"
    required, optional = documented()[heading]
    assert required - set(obj) == set(), f"documented but missing in {heading}"
    if verb != "inspect":  # inspect's fields depend on the kind of file
        assert set(obj) - required - optional == set(), f"printed but not in docs/json.md for {heading}"


@pytest.mark.slow
@pytest.mark.parametrize("heading, backend", [("calibrate", "mock:0"), ("calibrate (several chips)", "mock:0-1")])
def test_calibrate_prints_the_documented_fields(heading, backend):
    obj = emitted(["calibrate", "--backend", backend, "--workers", "2"])
    required, optional = documented()[heading]
    assert obj["schema"] == f"neurodeploy.calibrate/{JSON_SCHEMA_VERSION}"
    assert required - set(obj) == set() and set(obj) - required - optional == set()


def test_multi_chip_map_and_run_print_the_documented_fields(files):
    """A multi-chip deployment's extra fields are documented (as optional fields of map and run)."""
    out = files["folder"] / "two.npz"
    for heading, args in (("map", ["map", str(files["model"]), "--target", "bss2", "--chips", "2", "-o", str(out)]),
                          ("run", ["run", str(out), "--backend", "mock:ideal"])):
        obj = emitted(args)
        required, optional = documented()[heading]
        assert {"chips_used", "chips"} & set(obj), f"{heading} printed no multi-chip field"
        assert set(obj) - required - optional == set(), f"printed but not in docs/json.md for {heading}"
