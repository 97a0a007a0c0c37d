"""Unsupervised STDP on scikit-learn's 8×8 digits (seed 003_7854d67f35f77eb1.txt): test accuracy by label
assignment over seeds, software, with float weights, the same weights held at 6 bits, and variants.

    python benchmarks/stdp.py --seeds 0 1 2 [--variants float train6 ...] [--n-exc 400] [--epochs 3]
        [--figure docs/img/stdp_receptive_fields.png] [--json]

Variants (each trains from scratch per seed, on the project's digits split: 1437 train, 360 test):

* ``float``: float weights; also evaluated with the trained weights rounded to 6 bits (``held6``).
* ``train6``: weights rounded stochastically onto the 64 levels after every update (a PPU's 6-bit synapses).
* ``train6-nearest``: the same with round-to-nearest.
* ``self-inhibition``: the lateral inhibition includes the diagonal (one shared inhibitory row per column).
* ``pair``: pair STDP instead of the postsynaptic event-based rule.

400 excitatory neurons take 400 of BSS-2's 512 neuron circuits; the inhibition is a lateral projection, not
a second population (``docs/stdp.md``). Prints the settings, a table (mean ± std over seeds) and the time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace

from neurodeploy.data.digits import load_digits_split
from neurodeploy.training.stdp import (StdpSettings, evaluate, receptive_fields, settings_dict, train_stdp,
                                       with_weight_bits)

VARIANTS = {
    "float": {},
    "train6": {"weight_bits": 6, "rounding": "stochastic"},
    "train6-nearest": {"weight_bits": 6, "rounding": "nearest"},
    "self-inhibition": {"inhibit_self": True},
    "pair": {"rule": "pair"},
}
TEST_SEED_OFFSET = 1000  # the Poisson draws of the test presentation


def measure(settings: StdpSettings, seed: int, data: tuple) -> tuple[dict, object]:
    x_train, y_train, x_test, y_test = data
    start = time.perf_counter()
    result = train_stdp(settings, x_train, y_train, seed=seed)
    seconds = time.perf_counter() - start
    row = {"seed": seed, "test": evaluate(result, x_test, y_test, seed=seed + TEST_SEED_OFFSET),
           "held6": evaluate(with_weight_bits(result, 6), x_test, y_test, seed=seed + TEST_SEED_OFFSET),
           "train": evaluate(result, x_train, y_train, seed=seed + TEST_SEED_OFFSET),
           "silent_neurons": int((result.labels < 0).sum()), "seconds": seconds}
    return row, result


def summary(values: list[float]) -> str:
    if len(values) == 1:
        return f"{100 * values[0]:.1f}"
    return f"{100 * statistics.mean(values):.1f} ± {100 * statistics.stdev(values):.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=["float", "train6"], choices=sorted(VARIANTS))
    parser.add_argument("--n-exc", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--figure", default="", help="save the receptive fields of the first float run here")
    parser.add_argument("--json", action="store_true", help="print the rows as one JSON object at the end")
    args = parser.parse_args()

    x_train, y_train = load_digits_split("train")
    x_test, y_test = load_digits_split("test")
    data = (x_train, y_train, x_test, y_test)
    base = StdpSettings(n_exc=args.n_exc, epochs=args.epochs)
    print("settings:", json.dumps(settings_dict(base)))
    start = time.perf_counter()
    rows: dict[str, list[dict]] = {}
    for variant in args.variants:
        settings = replace(base, **VARIANTS[variant])
        for seed in args.seeds:
            row, result = measure(settings, seed, data)
            rows.setdefault(variant, []).append(row)
            print(f"{variant:16s} seed {seed}: test {100 * row['test']:.1f} %, held at 6 bits "
                  f"{100 * row['held6']:.1f} %, train {100 * row['train']:.1f} %, "
                  f"{row['silent_neurons']} silent neurons, {row['seconds']:.0f} s", flush=True)
            if args.figure and variant == args.variants[0] and seed == args.seeds[0]:
                from neurodeploy.stdp_plots import receptive_field_grid
                title = (f"{args.n_exc} excitatory neurons, {variant}, seed {seed}: "
                         f"test {100 * row['test']:.1f} % (label on each tile)")
                print("figure:", receptive_field_grid(receptive_fields(result), args.figure, result.labels,
                                                      w_max=float(result.weights.max()), title=title))
    print("\n| variant | test % | weights held at 6 bits % | train % | seeds | s per run |")
    print("|---|---|---|---|---|---|")
    for variant, results in rows.items():
        print(f"| {variant} | {summary([r['test'] for r in results])} | {summary([r['held6'] for r in results])} | "
              f"{summary([r['train'] for r in results])} | {len(results)} | "
              f"{statistics.mean(r['seconds'] for r in results):.0f} |")
    print(f"\ntotal time {time.perf_counter() - start:.0f} s")
    if args.json:
        print(json.dumps({"settings": settings_dict(base), "rows": rows}))


if __name__ == "__main__":
    main()
