r"""Yin-Yang emulation throughput of the mock chip, against the ideal mock and Brian2, in one process.

    python benchmarks/mock.py [--deployment yy.npz] [--threads 2] [--batch 500] [--samples 5000]
                              [--repeats 5] [--brian2-target cython|numpy|none] [--json]

Throughput is samples per second of wall-clock time over ``--samples`` Yin-Yang test samples
(the test set tiled as needed), run in batches of ``--batch`` the way ``neurodeploy run`` does:
:math:`\text{samples/s} = S / t_{pass}`, where one pass is every batch's ``backend.run`` (the
readout layer's CADC membranes recorded, as ``neurodeploy run`` reads them; ``--record-all``: every spike
and membrane) plus its readout scores. Each repeat runs one pass of every engine in
turn (round robin, so that a load change hits all of them); the median pass is reported, and the
ratios are ratios of medians.

Engines: ``mock:0`` (chip 0, every non-ideality on; the compiled emulator when built),
``mock:0@twin`` (the same chip on the PyTorch twin), ``mock:ideal``, ``software`` (the float
network in PyTorch) and Brian2 running the same network as ``mock:ideal`` (``brian2_net.py``;
network built once, each batch restores it and sets the inputs; ``--brian2-batch`` samples per
Brian2 run). The real chip's published ~85k images/s is printed as a reference, not measured.

Without ``--deployment`` the benchmark trains ``models/yinyang.yaml`` for ``--epochs`` epochs and
maps it (a few minutes); throughput depends on the spike rate, so pass a fully trained deployment
for numbers to compare (``neurodeploy train models/yinyang.yaml -o yy.pt && neurodeploy map yy.pt
--target bss2 -o yy.npz``). The machine load (``/proc/loadavg``) is recorded before and after. On
a machine shared with other jobs, run with ``OMP_WAIT_POLICY=passive`` (set before Python starts):
with libgomp's default, waiting threads spin and take the cores the working threads need (3.8x
slower with two threads at load 5 here); the JSON records the policy.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from collections.abc import Callable

import numpy as np
import torch

from neurodeploy.backends.base import Observations, Recording, readout_recording, readout_scores
from neurodeploy.backends.mock.fast import emulator_status
from neurodeploy.backends.registry import get_backend
from neurodeploy.core.fused import kernel_status
from neurodeploy.data.datasets import load_data
from neurodeploy.data.encoding import encode
from neurodeploy.deployment import Deployment, load_deployment

CHIP_IMAGES_PER_S = 85_000  # the real BSS-2 on Yin-Yang (reference point of issue 4, not measured here)
ROOT = Path(__file__).resolve().parents[1]


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return "unknown"


def deployment_for(args: argparse.Namespace, folder: Path) -> Path:
    """``--deployment``, or a Yin-Yang model trained for ``--epochs`` and mapped onto BSS-2."""
    if args.deployment:
        return Path(args.deployment)
    from neurodeploy.workflows.map import map_model
    from neurodeploy.workflows.train import train

    model, deployment = folder / "yinyang.pt", folder / "yinyang.npz"
    train(ROOT / "models" / "yinyang.yaml", model, epochs=args.epochs, progress=False)
    map_model(model, "bss2", deployment)
    return deployment


def backend_pass(name: str, deployment: Deployment, times: np.ndarray, batch: int,
                 readout_only: bool = True) -> Callable[[], torch.Tensor]:
    """A pass over all samples on a neurodeploy backend → readout scores ``[S, classes]``.

    ``NAME@twin`` runs a mock chip on its PyTorch twin (``NEURODEPLOY_MOCK=twin`` during its runs), ``NAME``
    on the compiled emulator when it is built (backends/mock/fast.py). ``readout_only``: read back what
    ``neurodeploy run`` reads (the readout's membranes, no spikes), else every spike and membrane."""
    backend, _, path = name.partition("@")
    engine = get_backend(backend)
    record = readout_recording(deployment) if readout_only else Recording()

    def run() -> torch.Tensor:
        before = os.environ.get("NEURODEPLOY_MOCK")
        os.environ["NEURODEPLOY_MOCK"] = path or before or "auto"
        try:
            return torch.cat([readout_scores(deployment, engine.run(deployment, times[s:s + batch], record))
                              for s in range(0, len(times), batch)])
        finally:
            if before is None:
                del os.environ["NEURODEPLOY_MOCK"]
            else:
                os.environ["NEURODEPLOY_MOCK"] = before
    return run


def brian2_pass(deployment: Deployment, times: np.ndarray, batch: int, target: str) -> Callable[[], torch.Tensor]:
    """The same pass on Brian2: membrane of every neuron → the readout as the mock's is decoded."""
    from brian2_net import Brian2Network

    net = Brian2Network(deployment, batch, target=target)
    n = net.neurons

    def run() -> torch.Tensor:
        scores = []
        for s in range(0, len(times), batch):
            chunk = times[s:s + batch]
            padded = np.concatenate([chunk, np.full((batch - len(chunk), chunk.shape[1]), np.nan)])
            v = torch.as_tensor(net.run(padded)[:, :len(chunk)], dtype=torch.float32)
            obs = Observations(spikes=torch.zeros(*v.shape[:2], 0), membrane=v, recorded=np.arange(n),
                               baseline=net.state.baseline, time_step_s=net.dt_s, counters={})
            scores.append(readout_scores(deployment, obs))
        return torch.cat(scores)
    return run


def rng_bound(deployment: Deployment, batch: int, repeats: int) -> dict:
    r"""How fast the twin's Gaussian draws alone could go: the ceiling of ``mock:0@twin`` with unchanged outputs.

    Per sample the twin of ``mock:0`` draws :math:`T N` membrane-noise and :math:`S N` CADC read-noise normals
    (``S`` CADC samples; spike jitter adds one per spike, not counted) from one ``torch.Generator``,
    in order, so the draws stay serial: :math:`\text{bound} = \text{normals/s} / ((T + S) N)`.
    """
    from neurodeploy.backends.mock.chip import configure
    from neurodeploy.targets.bss2.spec import load_bss2_spec

    state = configure(deployment)
    steps, neurons = state.steps, len(state.baseline)
    every = max(1, round(load_bss2_spec()["readout"]["cadc"]["period_s"] / state.dt_s))
    samples_cadc = len(range(every - 1, steps, every))
    generator = torch.Generator().manual_seed(0)
    buffer = torch.empty(steps, batch, neurons)
    torch.randn(buffer.shape, generator=generator, out=buffer)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.randn(buffer.shape, generator=generator, out=buffer)
        times.append(time.perf_counter() - start)
    rate = buffer.numel() / statistics.median(times)
    return {"normals_per_s": round(rate), "normals_per_sample": (steps + samples_cadc) * neurons,
            "bound_samples_per_s": round(rate / ((steps + samples_cadc) * neurons), 1)}


def measure(passes: dict[str, Callable[[], torch.Tensor]], samples: dict[str, int], labels: np.ndarray,
            repeats: int) -> dict:
    """Warm-up pass of each engine, then ``repeats`` round-robin passes; medians and accuracies."""
    predictions = {name: run().argmax(-1).numpy() for name, run in passes.items()}
    seconds: dict[str, list[float]] = {name: [] for name in passes}
    for _ in range(repeats):
        for name, run in passes.items():
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
    ideal = predictions.get("mock:ideal")
    out = {}
    for name in passes:
        median, n = statistics.median(seconds[name]), samples[name]
        out[name] = {"samples": n, "seconds": [round(t, 4) for t in seconds[name]],
                     "samples_per_s": round(n / median, 1),
                     "accuracy": float((predictions[name] == labels[:n]).mean()),
                     # the same network (Brian2) or the same chip without non-idealities: same class?
                     "agreement_with_mock_ideal": (None if ideal is None
                                                   else float((predictions[name] == ideal[:n]).mean()))}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deployment", help="a mapped Yin-Yang deployment (.npz); default: train one")
    parser.add_argument("--epochs", type=int, default=10, help="epochs when training the deployment here")
    parser.add_argument("--threads", type=int, default=2, help="torch and kernel threads")
    parser.add_argument("--batch", type=int, default=500, help="samples per backend.run (neurodeploy run uses 500)")
    parser.add_argument("--samples", type=int, default=5000, help="samples per pass")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--brian2-target", default="cython", help="Brian2 codegen target; 'none' skips Brian2")
    parser.add_argument("--brian2-batch", type=int, default=None, help="samples per Brian2 run (default --batch)")
    parser.add_argument("--brian2-samples", type=int, default=None, help="samples per Brian2 pass (default --samples)")
    parser.add_argument("--backends", nargs="+", default=["mock:0", "mock:0@twin", "mock:ideal", "software"],
                        help="engines; NAME@twin runs a mock chip on its PyTorch twin")
    parser.add_argument("--record-all", action="store_true",
                        help="record every spike and membrane (default: what `neurodeploy run` reads, the readout)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)  # PyTorch's operators and the fused kernel's OpenMP regions
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    load_before = loadavg()
    with tempfile.TemporaryDirectory() as folder:
        path = deployment_for(args, Path(folder))
        deployment = load_deployment(path)
        x, y = load_data(deployment.meta["dataset"], None)
        reps = -(-args.samples // len(y))
        times = np.concatenate([encode(x, deployment.meta["encoding"])] * reps)[:args.samples]
        labels = np.concatenate([np.asarray(y)] * reps)[:args.samples]
        passes = {name: backend_pass(name, deployment, times, args.batch, not args.record_all)
                  for name in args.backends}
        samples = {name: args.samples for name in args.backends}
        brian2_version = None
        if args.brian2_target != "none":
            import brian2

            brian2_version = brian2.__version__
            n_b2 = args.brian2_samples or args.samples
            passes["brian2"] = brian2_pass(deployment, times[:n_b2], args.brian2_batch or args.batch,
                                           args.brian2_target)
            samples["brian2"] = n_b2
        results = measure(passes, samples, labels, args.repeats)
        rng = rng_bound(deployment, args.batch, 5 * args.repeats)
    rate = {name: r["samples_per_s"] for name, r in results.items()}
    ratios = {f"{a}/{b}": round(rate[a] / rate[b], 3) for a in rate for b in rate if a != b}
    ratios.update({f"{a}/chip": round(rate[a] / CHIP_IMAGES_PER_S, 3) for a in rate})
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    result = {"command": " ".join(["python"] + sys.argv), "date": now,
              "loadavg_before": load_before, "loadavg_after": loadavg(), "cpus": os.cpu_count(),
              "torch": torch.__version__, "brian2": brian2_version, "kernel": kernel_status()["path"],
              "mock_path": emulator_status()["path"],
              "threads": args.threads, "batch": args.batch, "record_all": args.record_all,
              # libgomp's default spins waiting threads: on a shared machine they take cores from working ones
              "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
              "deployment": str(path) if args.deployment else f"trained {args.epochs} epochs",
              "chip_reference_images_per_s": CHIP_IMAGES_PER_S, "results": results, "ratios": ratios,
              "mock0_rng_bound": rng}
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['date']}  load before {load_before}  after {result['loadavg_after']}  threads {args.threads}")
    print(f"{'engine':<14}{'samples/s':>12}{'accuracy':>10}{'vs chip':>9}")
    for name, r in results.items():
        print(f"{name:<14}{r['samples_per_s']:>12,.0f}{100 * r['accuracy']:>9.1f}%"
              f"{rate[name] / CHIP_IMAGES_PER_S:>9.3f}")
    print(f"torch.Generator Gaussian draws: {rng['normals_per_s']:,}/s, {rng['normals_per_sample']} per sample: "
          f"the twin of mock:0 cannot exceed {rng['bound_samples_per_s']:,.0f} samples/s with unchanged outputs")
    for key in ("mock:0/mock:ideal", "mock:0/brian2", "mock:ideal/brian2", "mock:0/software", "mock:0/mock:0@twin"):
        if key in ratios:
            print(f"{key:<20}{ratios[key]:>8.2f}")


if __name__ == "__main__":
    main()
