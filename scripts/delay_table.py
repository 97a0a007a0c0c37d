"""Print the delay results table (docs/delays.md) from the files `make delays` writes into OUT.

Usage: python scripts/delay_table.py OUT. The delay task: software accuracy (float delays with the
final σ, hardened, hardened + quantised) and each strategy's accuracy on mock:ideal with its cost.
Experiment (b): each strategy's output spike times on mock:ideal vs software and the targets.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from neurodeploy.delay_experiments import TARGETS_B, LearningResult, spike_times_on_chip

STRATEGIES = ("multi-synapse", "spike-strength", "gradient-only")


def main(out: Path) -> None:
    load = lambda name: json.loads((out / name).read_text())  # noqa: E731
    trained, control = load("delay_task.train.json"), load("delay_task_nodelay.train.json")
    print("Delay task (temporal_patterns, 4 classes, chance 25 %): "
          f"without delays {100 * control['test_accuracy']:.1f} %; "
          f"with delays {100 * trained['test_accuracy']:.1f} % (float, σ = 0.23), "
          f"{100 * trained['test_accuracy_hardened']:.1f} % (integer delays), "
          f"{100 * trained['test_accuracy_hardened_quantised']:.1f} % (integer delays, 6-bit weights)\n")
    print("| strategy | delay task: mock:ideal | software (float) | rows (chip) | rows / delayed neuron | "
          "labels / driver | events / input spike (max) | FPGA copies | kernel L1 error | exp. (b) spikes mock | "
          "(b) software | (b) targets |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    b = load("delay_experiments.json")["b_spike_times"]
    learned = LearningResult(b["initial_spike_steps"], b["spike_steps"], b["soft_spike_times"], b["delays"], [])
    for strategy in STRATEGIES:
        mock = load(f"delay_task.{strategy}.mock.json")
        cost = load(f"delay_task.{strategy}.map.json")["delays"][strategy]
        spikes = spike_times_on_chip(learned, strategy)
        print(f"| {strategy} | {100 * mock['accuracy']:.1f} % | {100 * trained['test_accuracy']:.1f} % | "
              f"{cost['rows']} | {cost['rows_per_neuron']['hidden']} | {cost['labels']}/{cost['labels_available']} | "
              f"{cost['events_per_spike']} | {cost['fpga_copies']} | {cost['kernel_l1_error']:.4f} | "
              f"{spikes['chip']} | "
              f"{spikes['software']} | "
              f"{[int(t) for t in TARGETS_B]} |")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "out"))
