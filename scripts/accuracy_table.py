"""Print the demo's accuracy table from the JSON files `make demo` writes into OUT."""

import json
import sys
from pathlib import Path

out = Path(sys.argv[1] if len(sys.argv) > 1 else "out")
COLUMNS = [("software", "software (float)"), ("mock", "mock:ideal"), ("chip0-uncalibrated", "mock:0 uncalibrated"),
           ("chip0-calibrated", "mock:0 calibrated"), ("chip0-itl", "mock:0 after itl"), ("xylo", "xylo-sim")]


def cell(task: str, column: str) -> str:
    path = out / f"{task}.{column}.json"
    return f"{100 * json.loads(path.read_text())['accuracy']:.1f}%" if path.exists() else "-"


print(f"{'task':<14}" + "".join(f"{title:>21}" for _, title in COLUMNS))
for task in ("yinyang", "digits", "yinyang_hw", "yinyang_xylo"):
    print(f"{task:<14}" + "".join(f"{cell(task, column):>21}" for column, _ in COLUMNS))
print("test sets: Yin-Yang 1000 samples, digits 360; mock:0 is an emulated BSS-2 chip with mismatch and noise;")
print("xylo-sim is the bit-exact Xylo emulator; digits (64 inputs) does not fit Xylo's 16 input channels")
