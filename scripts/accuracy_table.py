"""Print the demo's accuracy table from the JSON files `make demo` writes into OUT."""

import json
import sys
from pathlib import Path

out = Path(sys.argv[1] if len(sys.argv) > 1 else "out")
print(f"{'task':<10}{'software (float)':>18}{'mock:ideal (quantised)':>24}{'samples':>9}")
for task in ("yinyang", "digits"):
    software = json.loads((out / f"{task}.software.json").read_text())
    mock = json.loads((out / f"{task}.mock.json").read_text())
    print(f"{task:<10}{100 * software['accuracy']:>17.1f}%{100 * mock['accuracy']:>23.1f}%{mock['n_samples']:>9}")
