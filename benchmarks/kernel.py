"""Benchmark of the fused LIF kernel against a naive PyTorch loop, snnTorch and Norse.

    python benchmarks/kernel.py [--json] [--threads 2] [--repeats 5]

Times (medians, ms) forward (no grad) and forward+backward (gradients of random upstream
gradients on spikes and membrane w.r.t. the input) at (T, B, N) = (100, 64, 512) and
(500, 32, 1024) for: the fused kernel; the naive loop (the twin, ``neurodeploy.core.lif``);
snnTorch ``Leaky`` and Norse ``LIFBoxCell`` when importable (simpler neurons without a synapse:
the comparison favours them). The memory-bandwidth bound is measured in the same run by copying
a 256 MiB tensor: bound = bytes that must move / copy bandwidth, with 3 [T, B, N] float arrays
for the forward (read x; write z, v) and 6 for forward+backward (also read dL/dz, dL/dv; write
dL/dx). ``times_roofline`` = fused time / bound. The feedback case (N = 512, about 5% spikes per
step) compares with the twin's loop, which does a dense recurrent matmul every step. Peak memory
is the rise of the resident set (VmHWM) over one forward+backward, each in a fresh process.
``--json`` prints exactly one JSON object.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional
from collections.abc import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neurodeploy.core import fused  # noqa: E402
from neurodeploy.core.lif import LIFParameters, lif_sequence  # noqa: E402

DT_S = 1e-3
SIZES = [(100, 64, 512), (500, 32, 1024)]
FEEDBACK = (100, 64, 512)
P = LIFParameters()  # tau_mem 10 ms, tau_syn 5 ms, v_th 1, no refractory period
Run = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def median_ms(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up: extension load, allocator, first-touch of buffers
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def bandwidth_gbps(repeats: int) -> float:
    """Bytes moved per second by a 256 MiB copy (read + write), in GB/s."""
    src = torch.rand(64 * 2**20)
    dst = torch.empty_like(src)
    ms = median_ms(lambda: dst.copy_(src), repeats)
    return 2 * src.numel() * 4 / (ms * 1e-3) / 1e9


def make_inputs(steps: int, batch: int, n: int, mean: float = 0.3, std: float = 0.5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = mean + std * torch.randn(steps, batch, n, generator=g)
    gz, gv = torch.randn(steps, batch, n, generator=g), torch.randn(steps, batch, n, generator=g)
    return x, gz, gv


def neurodeploy_run(fn: Callable, lateral: Optional[torch.Tensor] = None) -> Run:
    return lambda x: fn(x, P, DT_S, lateral=lateral)


def snntorch_run() -> Optional[Run]:
    try:
        import snntorch as snn
    except ImportError:
        return None
    lif = snn.Leaky(beta=math.exp(-DT_S / P.tau_mem_s), threshold=P.v_th)

    def run(x: torch.Tensor):
        mem, spikes, membrane = lif.init_leaky(), [], []
        for x_t in x.unbind(0):
            spk, mem = lif(x_t, mem)
            spikes.append(spk)
            membrane.append(mem)
        return torch.stack(spikes), torch.stack(membrane)
    return run


def norse_run() -> Optional[Run]:
    try:
        from norse.torch import LIFBoxCell, LIFBoxParameters
    except ImportError:
        return None
    cell = LIFBoxCell(LIFBoxParameters(tau_mem_inv=torch.tensor(1 / P.tau_mem_s)), dt=DT_S)

    def run(x: torch.Tensor):
        state, spikes, membrane = None, [], []
        for x_t in x.unbind(0):
            z, state = cell(x_t, state)
            spikes.append(z)
            membrane.append(state.v)
        return torch.stack(spikes), torch.stack(membrane)
    return run


def time_pair(run: Run, x: torch.Tensor, gz: torch.Tensor, gv: torch.Tensor,
              repeats: int, extra: tuple[torch.Tensor, ...] = ()) -> dict[str, float]:
    """Forward (no grad) and forward+backward medians in ms."""
    xg = x.clone().requires_grad_()

    def forward():
        with torch.no_grad():
            run(x)

    def forward_backward():
        z, v = run(xg)
        torch.autograd.grad([z, v], [xg, *extra], [gz, gv])
    return {"forward": median_ms(forward, repeats),
            "forward_backward": median_ms(forward_backward, max(3, repeats // 2 + 1))}


def ratios(times: dict[str, dict[str, float]], of: str, to: str) -> Optional[dict[str, float]]:
    if to not in times:
        return None
    return {k: round(times[to][k] / times[of][k], 2) for k in ("forward", "forward_backward")}


def bench_size(steps: int, batch: int, n: int, bw: float, repeats: int) -> dict[str, Any]:
    x, gz, gv = make_inputs(steps, batch, n)
    runs = {"fused": neurodeploy_run(fused.fused_lif_sequence), "naive": neurodeploy_run(lif_sequence),
            "snntorch": snntorch_run(), "norse": norse_run()}
    times = {name: time_pair(run, x, gz, gv, repeats) for name, run in runs.items() if run}
    with torch.no_grad():
        rate = fused.fused_lif_sequence(x, P, DT_S)[0].mean().item()
    elements = steps * batch * n
    bound = {"forward": 3 * 4 * elements / bw / 1e6, "forward_backward": 6 * 4 * elements / bw / 1e6}
    return {
        "T": steps, "B": batch, "N": n, "spike_rate": round(rate, 4),
        "ms": {name: {k: round(v, 2) for k, v in t.items()} for name, t in times.items()},
        "bound_ms": {k: round(v, 2) for k, v in bound.items()},
        "speedup_vs_naive": ratios(times, "fused", "naive"),
        "speedup_vs_snntorch": ratios(times, "fused", "snntorch"),
        "speedup_vs_norse": ratios(times, "fused", "norse"),
        "times_roofline": {k: round(times["fused"][k] / bound[k], 2) for k in bound},
    }


def feedback_inputs(seed: int = 1):
    steps, batch, n = FEEDBACK
    x, gz, gv = make_inputs(steps, batch, n, mean=0.2, std=0.5, seed=seed)
    lateral = 0.05 * torch.randn(n, n, generator=torch.Generator().manual_seed(seed + 1))
    return x, gz, gv, lateral


def bench_feedback(repeats: int) -> dict[str, Any]:
    x, gz, gv, lateral = feedback_inputs()
    lg = lateral.clone().requires_grad_()
    times = {}
    for name, fn in (("fused", fused.fused_lif_sequence), ("naive_dense", lif_sequence)):
        t = time_pair(neurodeploy_run(fn, lateral), x, gz, gv, repeats)
        # forward+backward again with the lateral matrix learnable (its gradient too)
        t["forward_backward"] = time_pair(neurodeploy_run(fn, lg), x, gz, gv, repeats,
                                          extra=(lg,))["forward_backward"]
        times[name] = t
    with torch.no_grad():
        rate = fused.fused_lif_sequence(x, P, DT_S, lateral=lateral)[0].mean().item()
    steps, batch, n = FEEDBACK
    return {"T": steps, "B": batch, "N": n, "spike_rate": round(rate, 4),
            "ms": {k: {m: round(v, 2) for m, v in t.items()} for k, t in times.items()},
            "speedup_vs_naive_dense": ratios(times, "fused", "naive_dense")}


def peak_child(impl: str, steps: int, batch: int, n: int, feedback: bool) -> None:
    """Child process: prints the rise of VmHWM (MiB) over one forward+backward."""
    def status_kib(key: str) -> int:
        line = next(text for text in Path("/proc/self/status").read_text().splitlines() if text.startswith(key))
        return int(line.split()[1])
    if feedback:
        x, gz, gv, lateral = feedback_inputs()
        lateral.requires_grad_()
    else:
        (x, gz, gv), lateral = make_inputs(steps, batch, n), None
    fn = fused.fused_lif_sequence if impl == "fused" else lif_sequence
    x.requires_grad_()
    small = fn(x[:2].detach().clone().requires_grad_(), P, DT_S,
               lateral=None if lateral is None else lateral.detach())  # load, initialise
    del small
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark to the current RSS
    before = status_kib("VmRSS:")
    z, v = fn(x, P, DT_S, lateral=lateral)
    grads = torch.autograd.grad([z, v], [x] + ([lateral] if lateral is not None else []), [gz, gv])
    print(json.dumps({"peak_mib": (status_kib("VmHWM:") - before) / 1024, "n": len(grads)}))


def peak_memory(threads: int) -> Optional[dict[str, Any]]:
    if not Path("/proc/self/clear_refs").exists():
        return None
    env = {**os.environ, "NEURODEPLOY_KERNEL_POOL_MB": "0", "OMP_NUM_THREADS": str(threads)}
    out: dict[str, Any] = {}
    cases = [(f"{t}x{b}x{n}", t, b, n, False) for t, b, n in SIZES]
    cases.append(("feedback_{}x{}x{}".format(*FEEDBACK), *FEEDBACK, True))
    for label, t, b, n, fb in cases:
        row = {}
        for impl in ("fused", "naive"):
            cmd = [sys.executable, __file__, "--peak-child", impl, str(t), str(b), str(n), str(int(fb))]
            res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
            row[impl] = round(json.loads(res.stdout.strip().splitlines()[-1])["peak_mib"], 1)
        row["fused_over_naive"] = round(row["fused"] / row["naive"], 3)
        out[label] = row
    return out


def targets(sizes: list[dict], feedback: dict, memory: Optional[dict]) -> dict[str, Any]:
    fb = "forward_backward"
    return {
        "fb_speedup_vs_naive_ge_6": all(s["speedup_vs_naive"][fb] >= 6 for s in sizes),
        "fb_speedup_vs_snntorch_ge_9": all(s["speedup_vs_snntorch"] and s["speedup_vs_snntorch"][fb] >= 9
                                          for s in sizes),
        "fb_within_2x_of_bound": all(s["times_roofline"][fb] <= 2 for s in sizes),
        "feedback_forward_ge_5": feedback["speedup_vs_naive_dense"]["forward"] >= 5,
        "feedback_forward_backward_ge_5": feedback["speedup_vs_naive_dense"][fb] >= 5,
        "peak_memory_le_naive": None if memory is None else all(
            r["fused"] <= r["naive"] for r in memory.values()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--peak-child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.peak_child:
        impl, t, b, n, fb = args.peak_child
        peak_child(impl, int(t), int(b), int(n), bool(int(fb)))
        return
    status = fused.kernel_status()
    if status["path"] != "fused-cpu":
        sys.exit(f"fused kernel unavailable: {status}")
    load_before = os.getloadavg()
    bw = bandwidth_gbps(args.repeats)
    sizes = [bench_size(t, b, n, bw, args.repeats) for t, b, n in SIZES]
    feedback = bench_feedback(args.repeats)
    memory = peak_memory(args.threads)
    result = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "threads": args.threads, "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(), "kernel": status,
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "bandwidth_GBps": round(bw, 2), "sizes": sizes, "feedback": feedback,
        "peak_memory_forward_backward_MiB": memory,
    }
    result["targets_met"] = targets(sizes, feedback, memory)
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['date']}  threads={args.threads}  copy bandwidth {bw:.1f} GB/s  "
          f"load {result['load_average_before_after']}")
    for s in sizes:
        print(f"T={s['T']} B={s['B']} N={s['N']} (spike rate {s['spike_rate']}): ms {s['ms']}")
        print(f"  bound {s['bound_ms']}  times_roofline {s['times_roofline']}")
        for peer in ("naive", "snntorch", "norse"):
            print(f"  speedup_vs_{peer} {s['speedup_vs_' + peer]}")
    print(f"feedback {feedback}")
    print(f"peak memory (MiB) {memory}")
    print(f"targets {result['targets_met']}")


if __name__ == "__main__":
    main()
