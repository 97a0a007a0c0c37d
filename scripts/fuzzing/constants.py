"""What every part of the fuzzer shares: the repository, the console script, the kinds and outcomes, limits."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # scripts/fuzzing/ → the repository
CONSOLE = Path(sys.executable).with_name("neurodeploy")
KINDS = ("model", "dep-bss2", "dep-xylo", "recipe", "spec", "calibration", "data", "nir", "args")
FILE_KINDS = KINDS[:-1]
OUTCOMES = ("clean", "accepted", "ACCEPTED-BAD", "INTERNAL", "TRACEBACK", "CRASH", "HANG", "PARTIAL", "UNCLEAN")
FAILURES = set(OUTCOMES) - {"clean", "accepted"}
SMALL_SAMPLES = 32
MEMORY_LIMIT = 12 * 2**30  # address space of one case (a zip bomb must not take the machine)
