"""Benchmark of the sparse surrogate backward (Perez-Nieves & Goodman 2021) on the recurrent layer.

    python benchmarks/sparse_backward.py [--json] [--threads 2] [--repeats 7] [--band 0.5 0.2 0.1] [--no-twin]
    python benchmarks/sparse_backward.py --accuracy models/yinyang.yaml [--seeds 0 1 2] [--epochs E] [--band 0.5]

At (T, B, N) = (100, 64, 512) with a learnable 512 x 512 lateral matrix (benchmarks/kernel.py's feedback
case: inputs, lateral weights and upstream gradients on spikes and membrane), times forward+backward
(gradients for x and L) of

* ``fused_sparse_band<B>``: the fused kernel with the sparse backward (``superspike_truncated``, each band B of
  ``--band``);
* ``fused_dense``: the fused kernel, the first band's surrogate, dense backward (one GEMM per step);
* ``fused_superspike``: the fused kernel with the default (untruncated) SuperSpike, dense by nature;
* ``twin_sparse``: the PyTorch twin with the sparse backward (neurodeploy.core.sparse; written for clarity,
  a Python loop over rows per step: slow);
* ``naive``: the twin's loop with autograd (a dense recurrent matmul every step), the first band's surrogate.

All in one process, rounds interleaved (each round runs every variant once; medians over rounds), so that
the ratios compare like with like on a machine other processes load. Also prints, per band, the fraction of
active neurons (|u| < band) that the sparse backward counted, and the load average before and after.
``--json`` prints exactly one JSON object.

``--accuracy RECIPE`` trains the recipe once per seed with SuperSpike (β = 10, dense backward) and with
``superspike_truncated`` (β = 10, band ``--band``; sparse backward) and prints one JSON line per run: test
accuracy, the fraction of active neurons the sparse backward counted over all of training, seconds.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any, Optional
from collections.abc import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from kernel import DT_S, FEEDBACK, P, feedback_inputs  # noqa: E402
from neurodeploy.core import fused  # noqa: E402
from neurodeploy.core.lif import lif_sequence  # noqa: E402
from neurodeploy.core.sparse import (reset_sparse_backward_stats, sparse_backward_stats,  # noqa: E402
                                     sparse_lif_sequence)
from neurodeploy.core.surrogate import Surrogate  # noqa: E402


def variants(bands: list[float]) -> dict[str, Callable[..., Any]]:
    truncated = {band: Surrogate.of("superspike_truncated", band=band) for band in bands}
    first = truncated[bands[0]]
    superspike = Surrogate.superspike()
    runs: dict[str, Callable[..., Any]] = {f"fused_sparse_band{band:g}": partial(
        fused.fused_lif_sequence, p=P, dt_s=DT_S, surrogate=s, sparse_backward=True) for band, s in truncated.items()}
    runs.update({
        "fused_dense": partial(fused.fused_lif_sequence, p=P, dt_s=DT_S, surrogate=first, sparse_backward=False),
        "fused_superspike": partial(fused.fused_lif_sequence, p=P, dt_s=DT_S, surrogate=superspike),
        "twin_sparse": partial(sparse_lif_sequence, p=P, dt_s=DT_S, surrogate=first),
        "naive": partial(lif_sequence, p=P, dt_s=DT_S, surrogate=first),
    })
    return runs


def bench(repeats: int, bands: list[float], twin: bool) -> dict[str, Any]:
    x, gz, gv, lateral = feedback_inputs()
    runs = variants(bands)
    if not twin:
        del runs["twin_sparse"]
    times: dict[str, list[float]] = {name: [] for name in runs}

    def once(name: str) -> float:
        xg = x.clone().requires_grad_()
        lg = lateral.clone().requires_grad_()
        start = time.perf_counter()
        z, v = runs[name](xg, lateral=lg)
        torch.autograd.grad([z, v], [xg, lg], [gz, gv])
        return time.perf_counter() - start

    for name in runs:  # warm-up: extension load, allocator, first touch
        once(name)
    fractions = {}
    for band in bands:
        reset_sparse_backward_stats()
        once(f"fused_sparse_band{band:g}")
        fractions[f"band{band:g}"] = round(sparse_backward_stats().fraction, 4)
    for _ in range(repeats):
        for name in runs:
            times[name].append(once(name))
    ms = {name: 1e3 * statistics.median(t) for name, t in times.items()}
    with torch.no_grad():
        rate = fused.fused_lif_sequence(x, P, DT_S, lateral=lateral)[0].mean().item()
    steps, batch, n = FEEDBACK
    sparse = {band: ms[f"fused_sparse_band{band:g}"] for band in bands}
    return {
        "T": steps, "B": batch, "N": n, "spike_rate": round(rate, 4), "active_fraction": fractions,
        "forward_backward_ms": {k: round(v, 2) for k, v in ms.items()},
        "spread_ms": {k: [round(1e3 * min(t), 2), round(1e3 * max(t), 2)] for k, t in times.items()},
        "speedup_sparse_vs_naive": {f"band{b:g}": round(ms["naive"] / t, 2) for b, t in sparse.items()},
        "speedup_sparse_vs_fused_dense": {f"band{b:g}": round(ms["fused_dense"] / t, 2) for b, t in sparse.items()},
        "speedup_sparse_vs_fused_superspike": {f"band{b:g}": round(ms["fused_superspike"] / t, 2)
                                               for b, t in sparse.items()},
        "speedup_dense_vs_naive": round(ms["naive"] / ms["fused_dense"], 2),
    }


def train_accuracy(recipe_file: str, surrogate: dict[str, Any], seed: int, epochs: Optional[int]) -> dict[str, Any]:
    """Train ``recipe_file`` with ``training.surrogate`` replaced by ``surrogate`` (a sparse-band kind trains with
    the sparse backward); returns test accuracy, the active fraction counted during training, and seconds."""
    from neurodeploy.recipe import recipe_from_dict
    from neurodeploy.safe_yaml import load_yaml
    from neurodeploy.training.fit import fit

    data = load_yaml(recipe_file)
    training = {k: v for k, v in data["training"].items() if k != "surrogate_steepness"}
    data["training"] = {**training, "surrogate": surrogate}
    recipe = recipe_from_dict(data, source=recipe_file)
    reset_sparse_backward_stats()
    start = time.perf_counter()
    model = fit(recipe, seed=seed, epochs=epochs, progress=False, recipe_file=recipe_file)
    stats = sparse_backward_stats()
    return {"recipe": recipe_file, "surrogate": surrogate, "seed": seed, "epochs": model.metrics["epochs"],
            "test_accuracy": model.metrics["test_accuracy"],
            "active_fraction": round(stats.fraction, 4) if stats.total else None,
            "seconds": round(time.perf_counter() - start, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--band", type=float, nargs="+", default=[0.5, 0.2, 0.1],
                    help="bands of the truncated surrogate (the first: --accuracy's, and the dense runs')")
    ap.add_argument("--no-twin", action="store_true", help="leave out the (slow) sparse twin")
    ap.add_argument("--accuracy", metavar="RECIPE", help="instead: train RECIPE with SuperSpike (dense) and with "
                    "superspike_truncated (sparse backward), one JSON line per run")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs (--accuracy)")
    ap.add_argument("--truncated-only", action="store_true", help="--accuracy: leave out the SuperSpike runs")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.accuracy:
        surrogates = [{"kind": "superspike", "steepness": 10.0}] * (not args.truncated_only) + [
            {"kind": "superspike_truncated", "steepness": 10.0, "band": args.band[0]}]
        for seed in args.seeds:
            for surrogate in surrogates:
                print(json.dumps(train_accuracy(args.accuracy, surrogate, seed, args.epochs)), flush=True)
        return
    load_before = os.getloadavg()
    result = bench(args.repeats, args.band, not args.no_twin)
    out = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "machine": platform.processor() or platform.machine(), "threads": args.threads,
           "torch": torch.__version__, "kernel": fused.kernel_status()["path"],
           "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)], **result}
    if args.json:
        print(json.dumps(out))
        return
    for key, value in out.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
