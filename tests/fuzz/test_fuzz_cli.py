"""The command line on damaged files and bad arguments (``scripts/fuzz.py``'s cases, through click's CliRunner):
every case ends in one line ``error: ... (fix: ...)`` with exit code 2 and nothing written, or is accepted when
it may be valid; never an internal error, a traceback, a file left behind, or a certainly invalid input
accepted (issue 15). Only the quick verbs run here (inspect, map, evaluate, run, import, export); the slow ones
(train, itl, calibrate) run as real processes in ``scripts/fuzz.py`` and ``scripts/soak.py``.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from fuzz_support import fuzz, make_bases, working_directory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurodeploy import cli

QUICK_VERBS = {"inspect", "map", "evaluate", "run", "import", "export"}
FAST_EXAMPLES = 60
SLOW_EXAMPLES = 400


@pytest.fixture(scope="session")
def bases(trained_model, tmp_path_factory) -> Any:
    return make_bases(tmp_path_factory.mktemp("fuzz-cli-bases"), trained_model)


def quick_case(bases: Any, seed: int) -> Any:
    """A fuzz case (damaged file or bad argument) whose verb is quick, for ``seed``."""
    rng = random.Random(seed)
    for _ in range(100):
        kind = rng.choice(fuzz.KINDS)
        case = fuzz.arg_case(seed, bases, rng) if kind == "args" else fuzz.file_case(seed, kind, bases, rng)
        if case.argv and case.argv[0] in QUICK_VERBS and "(reader hangs)" not in case.mutation:
            return case
    raise AssertionError("no quick case")


def run_case(case: Any, folder: Path) -> tuple[str, str, Any]:
    if folder.exists():
        shutil.rmtree(folder)
    fuzz.write_sandbox(case, folder)
    before = fuzz._snapshot(folder)
    with working_directory(folder):
        result = CliRunner().invoke(cli.main, case.argv)
    after = fuzz._snapshot(folder)
    outcome, detail = fuzz.classify(case, result.exit_code, result.stdout, result.stderr, before, after, folder)
    return outcome, detail, result


def _fuzz_cli(examples: int, bases: Any, folder: Path) -> None:
    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(seed=st.integers(0, 2**32 - 1))
    def check(seed: int) -> None:
        case = quick_case(bases, seed)
        outcome, detail, result = run_case(case, folder / "case")
        assert outcome in ("clean", "accepted"), (
            f"{outcome}: {case.kind} {case.mutation} (seed {seed}): neurodeploy {' '.join(case.argv)}\n{detail}\n"
            f"{result.stderr[-2000:]}")

    check()


def test_cli_on_damaged_input(bases, tmp_path):
    _fuzz_cli(FAST_EXAMPLES, bases, tmp_path)


@pytest.mark.slow
def test_cli_on_much_damaged_input(bases, tmp_path):
    _fuzz_cli(SLOW_EXAMPLES, bases, tmp_path)


@pytest.mark.parametrize("args", [
    ["train", "R", "-o", "m.pt", "--epochs", "0"], ["train", "R", "-o", "m.pt", "--epochs", "10001"],
    ["train", "R", "-o", "m.pt", "--seed", "-1"], ["train", "R", "-o", "m.pt", "--seed", str(2**32)],
    ["map", "M", "--clip-quantile", "nan"], ["map", "M", "--clip-quantile", "0"], ["map", "M", "--weight-copies", "0"],
    ["map", "M", "--weight-copies", "1025"], ["itl", "M", "--backend", "mock:0", "-o", "x.pt", "--epochs", "0"],
    ["itl", "M", "--backend", "mock:0", "-o", "x.pt", "--learning-rate", "nan"],
    ["itl", "M", "--backend", "mock:0", "-o", "x.pt", "--learning-rate", "inf"],
    ["itl", "M", "--backend", "mock:0", "-o", "x.pt", "--train-samples", "0"],
    ["calibrate", "--backend", "mock:0", "--seed", str(2**32)],
    ["import", "G", "-o", "x.pt", "--dt-s", "nan"], ["import", "G", "-o", "x.pt", "--tau-scale", "inf"],
])
def test_arguments_out_of_their_documented_range_are_usage_errors(args, tmp_path):
    """Refused by click before any file is read (one line, exit 2, pointing to --help)."""
    with working_directory(tmp_path):
        result = CliRunner().invoke(cli.main, args)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: Invalid value"), result.stderr
    assert "(fix: see `neurodeploy" in lines[0] and not list(tmp_path.iterdir())


def test_the_command_line_ranges_are_the_documented_ones():
    from neurodeploy.validation import arguments

    assert (cli.MAX_EPOCHS, cli.MAX_SEED, cli.MAX_WEIGHT_COPIES, cli.MAX_REPEAT, cli.MAX_WORKERS) == (
        arguments.MAX_EPOCHS, arguments.MAX_SEED, arguments.MAX_WEIGHT_COPIES, arguments.MAX_REPEAT,
        arguments.MAX_WORKERS)
    help_text = CliRunner().invoke(cli.main, ["train", "--help"]).stdout
    assert "1<=x<=10000" in help_text and "0<=x<=4294967295" in help_text
    assert isinstance(cli.FiniteRange(0, 1), click.FloatRange)


def test_outputs_that_cannot_be_written_are_refused_before_any_work(tmp_path, trained_model):
    """A name ending in a separator, a device, a name too long for the filesystem, the itl checkpoint's
    place taken by a folder, --plot naming a file: one line each, nothing left behind."""
    (tmp_path / "out.pt.checkpoint").mkdir()
    cases = [["map", str(trained_model), "-o", "newdir/"], ["map", str(trained_model), "-o", "/dev/null"],
             ["map", str(trained_model), "-o", "x" * 250 + ".npz"],
             ["itl", str(trained_model), "--backend", "mock:ideal", "-o", "out.pt"],
             ["calibrate", "--backend", "mock:0", "-o", "c.yaml", "--plot", str(trained_model)]]
    with working_directory(tmp_path):
        for args in cases:
            result = CliRunner().invoke(cli.main, args)
            lines = result.stderr.strip().splitlines()
            assert result.exit_code == 2 and len(lines) == 1 and "(fix: " in lines[0], (args, result.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.pt.checkpoint"]
