"""The seed's delay experiments (seed 001_f48c37937a5de656.txt), runnable: ``python examples/delay_experiments.py``.

(a) coincidence through delays, (b) delays learned until output spikes hit 38 and 55,
(c) one delay learned across a 1000-tap kernel (input at 100, target spike at 900).
Prints what it measures; ``--json`` prints one JSON object instead.

``--backend mock:0 --calibration calibration/mock-0.yaml`` also runs them on that (non-ideal) chip: (b)'s
learned delays with each realisation (first spike steps, membranes; ``--plot DIR`` draws them), and for
(a) and (c) whether their delays fit BSS-2 at all.
"""

from __future__ import annotations

import argparse
import json

from pathlib import Path

from neurodeploy.delay_experiments import (DELAYS_A, INPUTS_B, NEURON, TARGETS_B, coincidence, fits_on_chip,
                                           learn_long_delay, learn_spike_times, spike_times_on_chip)

STRATEGIES = ("multi-synapse", "spike-strength", "gradient-only")


def on_chip(b, c, backend: str, calibration: str | None) -> dict:
    """(b) on the chip per realisation; (a) and (c): the design rules' verdict."""
    return {"backend": backend,
            "b_spike_times": {s: spike_times_on_chip(b, s, backend, calibration) for s in STRATEGIES},
            "a_fits": fits_on_chip(DELAYS_A, 300, 450, "gradient-only"),
            "c_fits": fits_on_chip(c.delays, 1000, 1000, "gradient-only")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--backend", help="also run on this chip, e.g. mock:0")
    parser.add_argument("--calibration", help="the chip's calibration file (neurodeploy calibrate)")
    parser.add_argument("--plot", type=Path, metavar="DIR", help="draw (b) on the chip into DIR")
    args = parser.parse_args()
    a, b, c = coincidence(), learn_spike_times(), learn_long_delay()
    chip = None if args.backend is None else on_chip(b, c, args.backend, args.calibration)
    result = {
        "a_coincidence": {"delays": DELAYS_A, **a._asdict()},
        "b_spike_times": {"inputs": INPUTS_B, "targets": TARGETS_B,
                          **{k: v for k, v in b._asdict().items() if k != "loss_history"}},
        "c_long_delay": {k: v for k, v in c._asdict().items() if k != "loss_history"},
        **({"on_chip": chip} if chip is not None else {}),
    }
    if chip is not None and args.plot is not None:
        from neurodeploy.plots import delay_spike_times

        result["plot"] = str(delay_spike_times(chip["b_spike_times"], TARGETS_B, NEURON.v_th,
                                               args.plot / "delay_b_on_chip.png"))
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
    if chip is None:
        return
    for strategy, run in chip["b_spike_times"].items():
        print(f"(b) on {chip['backend']}, {strategy}: first spikes {run['chip']} (software {run['software']}, "
              f"targets {TARGETS_B})")
    for name in ("a", "c"):
        verdict = chip[f"{name}_fits"]
        print(f"({name}) on BSS-2: " + ("fits" if not verdict else "does not fit: " + "; ".join(verdict)))
    if "plot" in result:
        print(f"figure: {result['plot']}")


if __name__ == "__main__":
    main()
