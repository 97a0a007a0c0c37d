"""The seed's delay experiments (seed 001_f48c37937a5de656.txt), runnable: ``python examples/delay_experiments.py``.

(a) coincidence through delays, (b) delays learned until output spikes hit 38 and 55,
(c) one delay learned across a 1000-tap kernel (input at 100, target spike at 900).
Prints what it measures; ``--json`` prints one JSON object instead.
"""

from __future__ import annotations

import argparse
import json

from neurodeploy.delay_experiments import (DELAYS_A, INPUTS_B, TARGETS_B, coincidence, learn_long_delay,
                                           learn_spike_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    a, b, c = coincidence(), learn_spike_times(), learn_long_delay()
    result = {
        "a_coincidence": {"delays": DELAYS_A, **a._asdict()},
        "b_spike_times": {"inputs": INPUTS_B, "targets": TARGETS_B,
                          **{k: v for k, v in b._asdict().items() if k != "loss_history"}},
        "c_long_delay": {k: v for k, v in c._asdict().items() if k != "loss_history"},
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"(a) delays {DELAYS_A}: spikes per output {a.spike_counts}; membrane peak / threshold "
          f"{[round(v, 2) for v in a.peak_over_threshold]}; output 1 with a doubled weight: peak "
          f"{a.peak_over_threshold_doubled:.2f}, spikes {a.spike_count_doubled}")
    print(f"(b) targets {TARGETS_B}: first spikes {b.initial_spike_steps} -> {b.spike_steps} (integer delays); "
          f"learned delays {[[round(d, 1) for d in row] for row in b.delays]}")
    print(f"(c) input at 100, target 900: first spike {c.initial_spike_steps[0]} -> {c.spike_steps[0]}; "
          f"learned delay {c.delays[0][0]:.1f} steps")


if __name__ == "__main__":
    main()
