"""Running a case: its sandbox folder, the verb (a forked child or a real process) with a timeout and a memory
limit, and what happened (:func:`classify`)."""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .cases import Case
from .constants import CONSOLE, FAILURES, MEMORY_LIMIT, ROOT
from .mutations import Mutant


# ----------------------------------------------------------------------------------------------------
# Running a case


def write_sandbox(case: Case, folder: Path) -> None:
    folder.mkdir(parents=True)
    for name, content in case.files.items():
        path = folder / name
        if isinstance(content, Mutant):
            if content.special == "dir":
                path.mkdir()
            elif content.special == "fifo":
                os.mkfifo(path)
            elif content.special == "dangling":
                path.symlink_to(folder / "no-such-target")
            elif content.special == "loop":
                path.symlink_to(path)
            elif content.special == "sparse":
                with open(path, "wb") as handle:
                    handle.truncate(40 * 2**20)
        else:
            path.write_bytes(content)


def _snapshot(folder: Path) -> dict[str, tuple]:
    found = {}
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(folder))
            if rel in ("stdout", "stderr"):
                continue
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if os.path.isdir(path) and not os.path.islink(path):
                found[rel] = ("dir",)
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest() if os.path.isfile(path) and not \
                    os.path.islink(path) and st.st_size < 2**20 else f"{st.st_size}:{st.st_mtime_ns}"
                found[rel] = ("file", digest)
    return found


def visible_lines(text: str) -> list[str]:
    """Lines as a terminal shows them: ``\\r`` returns to the line's start (progress bars), blanks dropped."""
    shown = []
    for line in text.split("\n"):
        cells: list[str] = []
        col = 0
        for part in re.split(r"(\r|\x1b\[A)", line):
            if part in ("\r", "\x1b[A"):
                col = 0
                continue
            for ch in part:
                if col < len(cells):
                    cells[col] = ch
                else:
                    cells.append(ch)
                col += 1
        rendered = "".join(cells).rstrip()
        if rendered.strip():
            shown.append(rendered)
    return shown


def classify(case: Case, rc: Optional[int], stdout: str, stderr: str, before: dict, after: dict,
             folder: Path) -> tuple[str, str]:
    """(outcome, detail) of a finished case."""
    new = sorted(set(after) - set(before))
    changed = sorted(k for k in before if k in after and before[k] != after[k])
    if rc == 0:  # a command may overwrite its own outputs
        changed = [k for k in changed if k not in case.outputs and not k.endswith(".checkpoint")]
    temps = [k for k in after if re.match(r"(.*/)?\.[^/]+\.tmp$", k)]
    if (folder / "PWNED").exists():
        return "CRASH", "a payload in the file ran (PWNED exists)"
    if rc is None:
        return "HANG", f"killed after {case.timeout:.0f} s"
    if rc < 0:
        return "CRASH", f"killed by signal {-rc} ({signal.Signals(-rc).name})"
    if "Traceback (most recent call last)" in stderr:
        return "TRACEBACK", stderr.strip().splitlines()[-1][:300]
    lines = visible_lines(stderr)
    if rc == 0:
        if temps:
            return "PARTIAL", f"temporary files left after success: {temps}"
        if changed:
            return "PARTIAL", f"inputs changed: {changed}"
        return ("ACCEPTED-BAD" if case.certain else "accepted"), ""
    if new or changed:
        return "PARTIAL", f"left after exit {rc}: new {new}, changed {changed}"
    if rc == 1 and lines and lines[-1].startswith("error: internal error:"):
        return "INTERNAL", lines[-1][:400]
    check_report = case.argv[:1] == ["map"] and "--check" in case.argv and visible_lines(stdout)[-1:] and \
        visible_lines(stdout)[-1].endswith("violation(s)")
    if rc == 2 and check_report and not lines:
        return "clean", ""
    if rc == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "(fix: " in lines[0]:
        return "clean", ""
    return "UNCLEAN", f"exit {rc}, {len(lines)} stderr line(s): " + " | ".join(lines)[:400]


@dataclass
class Running:
    case: Case
    folder: Path
    pid: int
    started: float
    before: dict
    popen: Optional[subprocess.Popen] = None


def _limit_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _argv(case: Case) -> list[str]:
    return list(case.argv)


def launch(case: Case, folder: Path, runner: str) -> Running:
    write_sandbox(case, folder)
    before = _snapshot(folder)
    stdout = open(folder / "stdout", "wb")  # noqa: SIM115 - closed after the fork/spawn
    stderr = open(folder / "stderr", "wb")  # noqa: SIM115
    try:
        if runner == "exec":
            popen = subprocess.Popen([str(CONSOLE), *_argv(case)], cwd=folder, stdin=subprocess.DEVNULL, stdout=stdout,
                                     stderr=stderr, start_new_session=True, preexec_fn=_limit_memory)
            return Running(case, folder, popen.pid, time.monotonic(), before, popen)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: the console script's main() in the sandbox
            code = 1
            try:
                os.setsid()
                _limit_memory()
                os.chdir(folder)
                devnull = os.open(os.devnull, os.O_RDONLY)
                os.dup2(devnull, 0)
                os.dup2(stdout.fileno(), 1)
                os.dup2(stderr.fileno(), 2)
                signal.signal(signal.SIGINT, signal.default_int_handler)
                from neurodeploy.cli import main

                try:
                    main(args=_argv(case), prog_name="neurodeploy")
                    code = 0
                except SystemExit as exit_:
                    if exit_.code is None or isinstance(exit_.code, int):
                        code = exit_.code or 0
                    else:
                        print(exit_.code, file=sys.stderr)
                        code = 1
            except BaseException:  # noqa: BLE001 - what the interpreter would print, then exit 1
                traceback.print_exc()
                code = 1
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(code)
        return Running(case, folder, pid, time.monotonic(), before)
    finally:
        stdout.close()
        stderr.close()


def _exited(pid: int) -> Optional[int]:
    """The exit code (negative: a signal) of a child that has exited, without reaping it (its process group
    id stays reserved, so that killing the group cannot hit anyone else's processes); None while it runs."""
    found = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    if found is None or found.si_pid == 0:
        return None
    return found.si_status if found.si_code == os.CLD_EXITED else -found.si_status


def _reap(job: Running) -> None:
    """Kill what is left of the case's process group (its own children), then reap the case's process."""
    try:
        os.killpg(job.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if job.popen is not None:
        job.popen.wait()
    else:
        os.waitpid(job.pid, 0)


def finish(job: Running, rc: Optional[int]) -> dict:
    case, folder = job.case, job.folder
    stdout = (folder / "stdout").read_text(errors="replace")
    stderr = (folder / "stderr").read_text(errors="replace")
    after = _snapshot(folder)
    outcome, detail = classify(case, rc, stdout, stderr, job.before, after, folder)
    return {"id": case.id, "kind": case.kind, "mutation": case.mutation, "certain": case.certain,
            "outcome": outcome, "detail": detail, "rc": rc, "seconds": round(time.monotonic() - job.started, 2),
            "argv": case.argv, "folder": str(folder), "base": case.base,
            "file": next((str(folder / a) for a in case.argv if a.startswith("fuzzed.")), None),
            "command": f"cd {shlex.quote(str(folder))} && neurodeploy {shlex.join(case.argv)}",
            "stderr": stderr[-4000:], "stdout": stdout[-2000:]}


def run_cases(cases: Iterator[Case], work: Path, runner: str, jobs: int, keep: str,
              on_result: Callable[[dict, Case], None], stop: Callable[[], bool] = lambda: False) -> bool:
    """Run cases ``jobs`` at a time; a failing case's folder is kept (``keep``: failures | all | none).
    Once ``stop()`` says so, no further case starts; returns whether that happened."""
    running: list[Running] = []
    pending = iter(cases)
    exhausted = stopped = False
    while running or not exhausted:
        while not exhausted and len(running) < jobs:
            if stop():
                exhausted = stopped = True
                break
            case = next(pending, None)
            if case is None:
                exhausted = True
                break
            folder = work / f"case-{case.id:05d}"
            if folder.exists():
                shutil.rmtree(folder)
            running.append(launch(case, folder, runner))
        time.sleep(0.02)
        for job in list(running):
            rc = _exited(job.pid)
            timed_out = rc is None and time.monotonic() - job.started > job.case.timeout
            if rc is None and not timed_out:
                continue
            _reap(job)
            running.remove(job)
            result = finish(job, rc)
            if keep == "none" or (keep == "failures" and result["outcome"] not in FAILURES):
                shutil.rmtree(job.folder, ignore_errors=True)
            on_result(result, job.case)
    return stopped


def source_stamp() -> tuple:
    """When neurodeploy's sources last changed: forked cases run the code imported at the start, so the
    fuzzer restarts itself (``--state``) when someone edits it meanwhile."""
    latest, count = 0, 0
    for dirpath, _, filenames in os.walk(ROOT / "neurodeploy"):
        for name in filenames:
            if name.endswith(".py"):
                latest = max(latest, os.stat(os.path.join(dirpath, name)).st_mtime_ns)
                count += 1
    return latest, count


def preload() -> None:
    """Import what the verbs import, so that forked cases start warm (no threads are started)."""
    sys.path.insert(0, str(ROOT))
    import neurodeploy.cli  # noqa: F401
    from neurodeploy.core.fused import kernel_status
    from neurodeploy.targets.registry import all_targets
    from neurodeploy.workflows import (calibrate, doctor, evaluate, inspect, interchange, itl,  # noqa: F401
                                       map, run, targets, train)

    all_targets()
    kernel_status()
