#!/usr/bin/env python
"""PyNN's own system-test scenarios run against ``neurodeploy.pynn``: passed / not applicable (why) / failed.

    python benchmarks/pynn_scenarios.py --pynn PATH [--markdown OUT.md] [--timeout 120]

``PATH``: a PyNN source tree (with ``test/system/scenarios/``) or a git directory of one (the files are then
read with ``git show HEAD:...``); the scenarios are not part of the installed ``pyNN`` package, and they are
read from there at run time, never copied into this repository. Each ``test_*`` function that takes a
simulator is called with ``neurodeploy.pynn`` whose ``setup`` defaults to PyNN's conventions
(``time_scale="biological"``: times in biological ms, the chip runs them 1000x faster; membranes as
``AnalogSignal``), on ``mock:ideal``.

Outcome: **passed** (returned); **not applicable** (a ``neurodeploy`` error at ``run()`` naming a chip limit,
a construct this simulator does not offer such as multi-compartment cells, or PyNN's own skip); **failed**
(anything else: an assertion, a wrong value, a crash), with the first line of why.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import types
from pathlib import Path
from typing import Any

import neurodeploy.pynn as ndpynn
from neurodeploy.errors import NeurodeployError

SCENARIOS = "test/system/scenarios"


class _Timeout(Exception):
    pass


def scenario_files(source: Path, into: Path) -> Path:
    """The scenario package under ``into`` (read from a work tree, or from a git directory's HEAD)."""
    package = into / "pynn_scenarios_under_test"
    package.mkdir()
    tree = source / SCENARIOS
    if tree.is_dir():
        names = [p.name for p in tree.glob("*.py")]
        read = lambda name: (tree / name).read_text()  # noqa: E731
    else:
        listing = subprocess.run(["git", f"--git-dir={source}", "ls-tree", "--name-only", f"HEAD:{SCENARIOS}"],
                                 check=True, capture_output=True, text=True).stdout.split()
        names = [n for n in listing if n.endswith(".py")]
        read = lambda name: subprocess.run(["git", f"--git-dir={source}", "show", f"HEAD:{SCENARIOS}/{name}"],  # noqa: E731
                                           check=True, capture_output=True, text=True).stdout
    for name in names:
        (package / name).write_text(read(name))
    (package / "__init__.py").touch()
    return package


def simulator_under_test() -> types.ModuleType:
    """``neurodeploy.pynn`` with PyNN's default conventions in ``setup`` (see the module docstring)."""
    proxy = types.ModuleType("neurodeploy.pynn")
    proxy.__dict__.update({k: v for k, v in vars(ndpynn).items() if not k.startswith("__")})

    def setup(*args: Any, **kwargs: Any) -> int:
        kwargs.setdefault("time_scale", "biological")
        kwargs.setdefault("record_sample_times", False)
        if args:
            kwargs.setdefault("timestep", args[0])
            args = args[1:]
        kwargs.setdefault("timestep", 0.1)  # PyNN's default step
        return ndpynn.setup(*args, **kwargs)

    proxy.setup = setup  # type: ignore[attr-defined]
    return proxy


def run_one(function: Any, sim: Any, limit_s: int) -> tuple[str, str]:
    import pytest

    def expire(signum: int, frame: Any) -> None:
        raise _Timeout()

    signal.signal(signal.SIGALRM, expire)
    signal.alarm(limit_s)
    try:
        function(sim)
        return "passed", ""
    except NeurodeployError as err:
        return "not applicable", " ".join(err.message.split())  # the why; the fix is for the script's author
    except pytest.skip.Exception as err:
        return "not applicable", f"skipped by PyNN's test: {err}"
    except pytest.fail.Exception as err:
        return "failed", f"pytest: {' '.join(str(err).split())[:160]}"
    except NotImplementedError as err:
        frame = traceback.extract_tb(err.__traceback__)[-1]
        return "not applicable", f"not offered: {err or ''} ({Path(frame.filename).name}:{frame.name} is not " \
            "implemented here; e.g. reading a current source's parameters)"
    except AttributeError as err:
        if "neurodeploy.pynn" in str(err) and "has no attribute" in str(err):
            return "not applicable", f"not offered: {err}"
        return "failed", f"AttributeError: {err}"
    except _Timeout:
        return "failed", f"took longer than {limit_s} s"
    except AssertionError as err:
        return "failed", f"assertion: {' '.join(str(err).split())[:160]}"
    except Exception as err:  # noqa: BLE001 (every other outcome is a failure, reported with its type)
        return "failed", f"{type(err).__name__}: {' '.join(str(err).split())[:160]}"
    finally:
        signal.alarm(0)
        try:
            ndpynn.end()
        except Exception:  # noqa: BLE001 (a broken state must not stop the table)
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pynn", required=True, type=Path, help="a PyNN source tree or its git directory")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    parser.add_argument("--timeout", type=int, default=120, help="seconds per scenario")
    args = parser.parse_args()
    sim = simulator_under_test()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        package = scenario_files(args.pynn.resolve(), Path(tmp))
        sys.path.insert(0, tmp)
        for path in sorted(package.glob("test_*.py")):
            module = importlib.import_module(f"{package.name}.{path.stem}")
            for name, function in inspect.getmembers(module, inspect.isfunction):
                if not name.startswith("test_") or "sim" not in inspect.signature(function).parameters \
                        or function.__module__ != module.__name__:
                    continue
                started = time.time()
                outcome, why = run_one(function, sim, args.timeout)
                rows.append((path.stem, name, outcome, why, time.time() - started))
                print(f"{path.stem}::{name}: {outcome} {why}", file=sys.stderr)
    counts = {k: sum(1 for r in rows if r[2] == k) for k in ("passed", "not applicable", "failed")}
    lines = ["| scenario | outcome | why |", "|---|---|---|"]
    lines += [f"| `{module}::{name}` | {outcome} | {why.replace('|', '/')} |" for module, name, outcome, why, _ in rows]
    lines += ["", f"{counts['passed']} passed, {counts['not applicable']} not applicable, {counts['failed']} failed "
              f"({len(rows)} scenarios)."]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
