"""Accumulated Spiking Flow against surrogate-gradient BPTT on the same network and epochs, in one process.

    python benchmarks/asf.py [--bptt models/digits.yaml] [--asf models/digits_asf.yaml] [--seeds 0 1 2]
        [--threads 1] [--memory-batches 3] [--json]

Both recipes must describe the same layers (sizes, neurons, initialisation), epochs and batch size; each keeps
its method's own tuning (learning rate, decode). Three rows: BPTT, ASF (``asf_ratio: gated``, the recipe's),
and ASF with the seed's literal shared ratio (``asf_ratio: shared``). Per row, over the seeds:

* test accuracy of the deployable ``li`` readout (``fit``'s ``test_accuracy``; for ASF also the accumulator's);
* time per epoch: ``fit``'s ``seconds_per_epoch`` (wall clock of the training loop only: no data loading, no
  scoring), with ``torch.set_num_threads(--threads)``;
* peak memory of training: the most PyTorch CPU tensor memory alive at once, above what was alive before,
  during ``--memory-batches`` training steps (batch size of the recipe) from the recipe's initial weights,
  read from ``torch.profiler``'s allocation events (``profile_memory=True``: every allocation and free of the
  PyTorch allocator, time-ordered). It counts activations, saved tensors, gradients and optimiser state; it
  does not count memory outside the PyTorch allocator (Python objects, the fused kernel's own C++ buffers,
  if any). The same for both methods, measured after the accuracy runs, in this process.

Ratios are ASF / BPTT. Tests never assert a time; this script only prints.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch._C._profiler import _EventType

from neurodeploy.core.surrogate import surrogate_of
from neurodeploy.data.datasets import load_split
from neurodeploy.data.encoding import encode_dataset
from neurodeploy.models.network import SpikingNetwork
from neurodeploy.recipe import Recipe, load_recipe
from neurodeploy.training import asf
from neurodeploy.training.fit import _train_epoch, fit, initial_weights

ROOT = Path(__file__).resolve().parents[1]


def same_network(a: Recipe, b: Recipe) -> None:
    """Refuse a comparison of different layers, neurons, initialisation, epochs or batches (v_th of an li
    readout aside: the li does not use it, ASF reads it as eq. (5)'s V_th)."""
    def hidden(r: Recipe) -> list:
        return [(p.name, p.size, p.kind, p.neuron if p.kind == "lif" else None) for p in r.graph.populations]
    if hidden(a) != hidden(b) or a.init != b.init or a.encoding != b.encoding:
        sys.exit(f"error: {a.name} and {b.name} differ in layers, neurons, initialisation or encoding")
    for key in ("epochs", "batch_size"):
        if a.training[key] != b.training[key]:
            sys.exit(f"error: training.{key} differs ({a.training[key]} vs {b.training[key]})")


def peak_step_bytes(recipe: Recipe, batches: int, seed: int = 0) -> int:
    """Peak PyTorch CPU tensor bytes alive at once during ``batches`` training steps (module docstring)."""
    settings = dict(recipe.training)
    x, y = load_split(recipe.dataset, "train")
    n = min(len(y), batches * settings["batch_size"])
    spikes, labels = encode_dataset(x[:n], recipe.encoding, recipe.dt_s), torch.as_tensor(y[:n])
    generator = torch.Generator().manual_seed(seed)
    net = SpikingNetwork(recipe.graph, recipe.dt_s, surrogate=surrogate_of(settings),
                         detach_reset=settings["detach_reset"], weights=initial_weights(recipe, generator))
    optimiser = torch.optim.AdamW(net.parameters(), lr=settings["learning_rate"],
                                  weight_decay=float(settings["weight_decay"]))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(batches, 1))
    epoch: Callable = asf.train_epoch if settings["method"] == "asf" else _train_epoch
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        epoch(net, spikes, labels, settings, optimiser, schedule, generator)
    changes: list[tuple[int, int]] = []

    def walk(nodes) -> None:
        for node in nodes:
            if node.typed[0] == _EventType.Allocation:
                changes.append((node.start_time_ns, node.typed[1].alloc_size))
            walk(node.children)
    walk(prof.profiler.kineto_results.experimental_event_tree())
    live = peak = 0
    for _, size in sorted(changes):
        live += size
        peak = max(peak, live)
    return peak


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bptt", default=str(ROOT / "models" / "digits.yaml"))
    parser.add_argument("--asf", default=str(ROOT / "models" / "digits_asf.yaml"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--memory-batches", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bptt, gated = load_recipe(args.bptt), load_recipe(args.asf)
    if bptt.training["method"] != "bptt" or gated.training["method"] != "asf":
        sys.exit("error: --bptt needs a recipe with training.method: bptt, --asf one with asf")
    same_network(bptt, gated)
    shared = Recipe(**{**gated.__dict__, "training": {**gated.training, "asf_ratio": "shared"}})
    rows = {"bptt": bptt, f"asf ({gated.training['asf_ratio']})": gated, "asf (shared, seed's literal)": shared}
    runs: dict[str, list[dict]] = {label: [] for label in rows}
    for seed in args.seeds:  # methods interleaved per seed: a change in the machine's load hits all alike
        for label, recipe in rows.items():
            runs[label].append(fit(recipe, seed=seed, progress=False).metrics)
            print(f"  seed {seed} {label}: {100 * runs[label][-1]['test_accuracy']:.1f} %", file=sys.stderr)
    results: dict[str, dict] = {}
    for label in rows:
        results[label] = {
            "test_accuracy": [m["test_accuracy"] for m in runs[label]],
            "test_accuracy_accumulator": [m.get("test_accuracy_accumulator") for m in runs[label]],
            "seconds_per_epoch": [m["seconds_per_epoch"] for m in runs[label]],
            "epochs": runs[label][0]["epochs"]}
    for label, recipe in rows.items():
        results[label]["peak_step_bytes"] = peak_step_bytes(recipe, args.memory_batches)
    report = {"date": datetime.date.today().isoformat(), "command": " ".join(["python"] + sys.argv),
              "threads": args.threads, "seeds": args.seeds, "torch": torch.__version__, "results": results}
    if args.json:
        print(json.dumps(report))
        return
    base = results["bptt"]
    print(f"{bptt.name} vs {gated.name}: {base['epochs']} epochs, seeds {args.seeds}, {args.threads} thread(s), "
          f"torch {torch.__version__}, {report['date']}")
    print("| method | test accuracy (li readout) | accumulator | s / epoch | peak MB / step | time ratio "
          "| memory ratio |")
    print("|---|---|---|---|---|---|---|")
    for label, r in results.items():
        acc, acc_sd = mean_std([100 * a for a in r["test_accuracy"]])
        accumulator = [a for a in r["test_accuracy_accumulator"] if a is not None]
        mean, sd = mean_std([100 * a for a in accumulator]) if accumulator else (0.0, 0.0)
        acc_cell = f"{mean:.1f} ± {sd:.1f} %" if accumulator else "–"
        sec, sec_sd = mean_std(r["seconds_per_epoch"])
        time_ratio = sec / statistics.fmean(base["seconds_per_epoch"])
        memory_ratio = r["peak_step_bytes"] / max(base["peak_step_bytes"], 1)
        print(f"| {label} | {acc:.1f} ± {acc_sd:.1f} % | {acc_cell} | {sec:.3f} ± {sec_sd:.3f} | "
              f"{r['peak_step_bytes'] / 2**20:.2f} | {time_ratio:.2f} | {memory_ratio:.2f} |")
    asf_label = list(rows)[1]
    gap = 100 * (statistics.fmean(base["test_accuracy"]) - statistics.fmean(results[asf_label]["test_accuracy"]))
    print(f"accuracy gap BPTT - {asf_label}: {gap:.1f} points")

if __name__ == "__main__":
    main()
