#!/usr/bin/env python
"""Fuzz the ``neurodeploy`` command line with damaged files and bad arguments (issue 15).

    scripts/fuzz.py --n 300 [--seed 0] [--kinds model recipe ...] [--jobs 2] [--json]

Each case damages one input (a file of some kind, or one argument), runs one verb of the real CLI
on it in a fresh sandbox folder with a timeout, and classifies what happened:

    clean          exit 2, exactly one visible stderr line ``error: ... (fix: ...)``, nothing written
    accepted       exit 0 on an input that may be valid
    ACCEPTED-BAD   exit 0 on an input that is certainly invalid (NaN weights, a dropped array, ...)
    INTERNAL       exit 1 ``error: internal error: ...``: a raw exception the CLI caught (a missing check)
    TRACEBACK      a Python traceback reached stderr
    CRASH          killed by a signal (segfault, out of memory)
    HANG           still running at the timeout (killed)
    PARTIAL        a file left behind after a failure (the -o file, ``.NAME.*.tmp``, a new folder), a
                   temporary file left after success, or an input changed
    UNCLEAN        any other failure: more than one line, no ``(fix: ...)``, another exit code

File kinds (``--kinds``): model, dep-bss2, dep-xylo, recipe, spec, calibration, data, nir; ``args``
damages the arguments of every verb instead. Mutations: see :data:`FAMILIES` and ``mutate_*``; each
says whether its result is *certainly* invalid (only those can be ACCEPTED-BAD).

Base files (a tiny Yin-Yang model trained for one epoch, its BSS-2 and Xylo deployments, a calibration
of mock:0, a NIR export, a small data file) are made once and cached (``--cache``, default
``build/fuzz-cache``). Cases run in forked children of a process that has imported neurodeploy
(``--runner fork``, the default: the same ``main()`` the console script calls, without paying the
import per case), or as real subprocesses of the console script (``--runner exec``). Failures are
re-run with ``exec`` to confirm them (``--confirm``). The report (``--out``, default ``build/fuzz``)
holds every failing case: its command line (to paste into a shell), the damaged file (kept in the
case's folder), stdout and stderr.

``scripts/soak.py`` kills verbs at random times (``kill -9``) and checks what they leave behind.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

# The fuzzer is the package scripts/fuzzing/ beside this file (this script is run, imported as ``fuzz`` by
# scripts/soak.py, or loaded by its path under another name by tests/fuzz/fuzz_support.py).
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzzing.bases import BASE_NAMES, Bases, make_bases, tiny_recipe_text  # noqa: E402
from fuzzing.cases import Case, arg_case, case_by_id, file_case, make_cases  # noqa: E402
from fuzzing.constants import CONSOLE, FAILURES, FILE_KINDS, KINDS, OUTCOMES, ROOT, SMALL_SAMPLES  # noqa: E402
from fuzzing.file_kinds import mutate  # noqa: E402
from fuzzing.formats import FORMAT_OF, SUFFIX  # noqa: E402
from fuzzing.mutations import Mutant  # noqa: E402
from fuzzing.report import failure_groups, table  # noqa: E402
from fuzzing.runner import _snapshot, classify, preload, run_cases, source_stamp, write_sandbox  # noqa: E402

__all__ = [  # what tests/fuzz and scripts/soak.py use of this script, and main()
    "BASE_NAMES", "CONSOLE", "FAILURES", "FILE_KINDS", "FORMAT_OF", "KINDS", "OUTCOMES", "ROOT", "SMALL_SAMPLES",
    "SUFFIX", "Bases", "Case", "Mutant", "_snapshot", "arg_case", "case_by_id", "classify", "failure_groups",
    "file_case", "main", "make_bases", "make_cases", "mutate", "preload", "run_cases", "source_stamp", "table",
    "tiny_recipe_text", "write_sandbox"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="number of cases (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--jobs", type=int, default=2, help="cases run at the same time (default 2)")
    parser.add_argument("--runner", choices=["fork", "exec"], default="fork")
    parser.add_argument("--confirm", type=int, default=100,
                        help="re-run up to this many failing cases as real subprocesses (default 100)")
    parser.add_argument("--cache", type=Path, default=ROOT / "build" / "fuzz-cache", help="base files")
    parser.add_argument("--fresh", action="store_true", help="remake the base files")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "fuzz", help="report and failing cases")
    parser.add_argument("--keep", choices=["failures", "all", "none"], default="failures")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)  # results so far, after a restart
    args = parser.parse_args()

    log = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    bases = make_bases(args.cache, args.fresh and not args.state, log)
    stamp = source_stamp()
    if args.runner == "fork":
        preload()
    work = args.out / "cases"
    results: list[dict] = []
    started = time.monotonic()
    if args.state:
        state = json.loads(args.state.read_text())
        results, started = state["results"], started - state["seconds"]
        log(f"fuzz: restarted after a change of neurodeploy's sources, at case {len(results)}")
    else:
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)

    failing_cases: dict[int, Case] = {}

    def on_result(result: dict, case: Case) -> None:
        results.append(result)
        if len(results) % 100 == 0:  # a run killed meanwhile continues with --state OUT/state.json
            (args.out / "state.json").write_text(json.dumps({"results": results,
                                                             "seconds": time.monotonic() - started}, default=str))
        if result["outcome"] in FAILURES and len(failing_cases) < args.confirm:
            failing_cases[case.id] = case
        if result["outcome"] in FAILURES:
            log(f"[{len(results)}/{args.n}] #{result['id']:<5} {result['outcome']:<12} {result['kind']:<11} "
                f"{result['mutation'][:50]:<50} "
                f"{result['detail'][:100]}")
        elif len(results) % 50 == 0:
            log(f"[{len(results)}/{args.n}] {time.monotonic() - started:.0f} s")

    start = max((r["id"] for r in results), default=-1) + 1
    restart = run_cases(make_cases(args.n, args.seed, args.kinds, bases, start), work, args.runner, args.jobs,
                        args.keep, on_result, stop=lambda: args.runner == "fork" and source_stamp() != stamp)
    if restart:
        state_file = args.out / "state.json"
        state_file.write_text(json.dumps({"results": results, "seconds": time.monotonic() - started}, default=str))
        argv: list[str] = []
        for i, arg in enumerate(sys.argv[1:]):
            if arg != "--state" and sys.argv[i] != "--state":  # sys.argv[i]: the argument before this one
                argv.append(arg)
        os.execv(sys.executable, [sys.executable, str(Path(__file__).resolve()), *argv, "--state", str(state_file)])
    results.sort(key=lambda r: r["id"])
    for result in results:
        if result["outcome"] in FAILURES and result["id"] not in failing_cases and len(failing_cases) < args.confirm:
            failing_cases[result["id"]] = case_by_id(result["id"], args.seed, args.kinds, bases)

    failing = [r for r in results if r["outcome"] in FAILURES]
    if args.runner == "fork" and args.confirm and failing:
        by_id = {r["id"]: r for r in failing if r["id"] in failing_cases}
        log(f"fuzz: confirming {len(by_id)} failing case(s) as real subprocesses")
        again = [failing_cases[i] for i in sorted(by_id)]
        confirm_dir = args.out / "confirm"
        shutil.rmtree(confirm_dir, ignore_errors=True)
        confirm_dir.mkdir(parents=True)

        def on_confirm(result: dict, case: Case) -> None:
            by_id[result["id"]]["confirmed_by_exec"] = result["outcome"]

        run_cases(iter(again), confirm_dir, "exec", args.jobs, "none", on_confirm)

    seconds = time.monotonic() - started
    summary = {kind: dict(Counter(r["outcome"] for r in results if r["kind"] == kind)) for kind in args.kinds}
    report = {"n": len(results), "seed": args.seed, "runner": args.runner, "seconds": round(seconds, 1),
              "table": summary, "total": dict(Counter(r["outcome"] for r in results)),
              "groups": [{"group": k, "count": n, "example": ex["command"], "mutation": ex["mutation"],
                          "stderr": ex["stderr"][-600:]} for k, n, ex in failure_groups(results)],
              "failures": failing,
              "cases": [{k: r[k] for k in ("id", "kind", "mutation", "certain", "outcome", "rc", "seconds")}
                        | {"verb": r["argv"][0] if r["argv"] else ""} for r in results]}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=1, default=str))
    if args.json:
        print(json.dumps(report, default=str))
        return
    print(table(results))
    print(f"\n{len(results)} cases in {seconds:.0f} s ({args.runner}); report with every failing case: "
          f"{args.out / 'report.json'}")
    for key, count, example in failure_groups(results)[:60]:
        confirmed = example.get("confirmed_by_exec")
        print(f"\n{count:>4} x {key}" + (f" [exec: {confirmed}]" if confirmed else ""))
        print(f"       e.g. {example['mutation']}: {example['command']}")


if __name__ == "__main__":
    main()
