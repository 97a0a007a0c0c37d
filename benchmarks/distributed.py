"""Data-parallel training: 1 against N processes measured on this machine, and a model of larger machines
from the measured per-step compute and all-reduce times.

    python benchmarks/distributed.py models/fashion_mnist.yaml --nproc 2

Measures, in one run: (1) seconds per epoch of `train` with 1 process (torch's threads) and with N processes
(one thread each, gloo); (2) one training step's compute on one thread for a batch of b and b/N samples;
(3) the time of one gloo all-reduce of the gradients (their bytes) between N local processes. The model of a
machine with P cores per process and N processes, steps per epoch S:
t_epoch(N) ≈ S · (t_step(b/N) + t_allreduce(N)), against S · t_step(b) for one process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from neurodeploy.data.datasets import load_split
from neurodeploy.data.encoding import encode_dataset
from neurodeploy.models.network import SpikingNetwork, decode
from neurodeploy.recipe import load_recipe
from neurodeploy.training.fit import initial_weights
from neurodeploy.training.loss import task_loss


def epoch_seconds(recipe: str, nproc: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        out = subprocess.run([sys.executable, "-m", "neurodeploy", "train", recipe, "--epochs", "1", "--nproc",
                              str(nproc), "-o", str(Path(folder) / "m.pt"), "--json"],
                             capture_output=True, text=True, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["seconds_per_epoch"])


def step_seconds(recipe_path: str, batch: int, repeats: int = 5) -> tuple[float, int]:
    """Median seconds of one forward+backward on ``batch`` samples, one thread; and the gradient bytes."""
    torch.set_num_threads(1)
    recipe = load_recipe(recipe_path)
    x, y = load_split(recipe.dataset, "train")
    spikes = encode_dataset(x[:batch], recipe.encoding, recipe.dt_s)
    net = SpikingNetwork(recipe.graph, recipe.dt_s, weights=initial_weights(recipe, torch.Generator().manual_seed(0)))
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        out = net(spikes)
        loss = task_loss(decode(out.readout_v, recipe.training["loss"]), torch.as_tensor(y[:batch]), out.spikes,
                         recipe.graph.input.name, recipe.training)
        loss.backward()
        times.append(time.perf_counter() - started)
    grad_bytes = sum(p.numel() * p.element_size() for p in net.parameters())
    return sorted(times)[len(times) // 2], grad_bytes


def _allreduce(rank: int, world: int, numel: int, rendezvous: str, result: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=rendezvous, rank=rank, world_size=world)
    tensor = torch.ones(numel)
    for _ in range(3):
        dist.all_reduce(tensor)
    dist.barrier()
    started = time.perf_counter()
    for _ in range(20):
        dist.all_reduce(tensor)
    seconds = (time.perf_counter() - started) / 20
    if rank == 0:
        Path(result).write_text(str(seconds))
    dist.destroy_process_group()


def allreduce_seconds(nbytes: int, world: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        result = os.path.join(folder, "t")
        mp.spawn(_allreduce, args=(world, nbytes // 4, Path(folder, "rdv").as_uri(), result), nprocs=world)
        return float(Path(result).read_text())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("recipe")
    parser.add_argument("--nproc", type=int, default=2)
    args = parser.parse_args()
    recipe = load_recipe(args.recipe)
    batch = int(recipe.training["batch_size"])
    steps = -(-len(load_split(recipe.dataset, "train")[1]) // batch)
    one, many = epoch_seconds(args.recipe, 1), epoch_seconds(args.recipe, args.nproc)
    full, grad_bytes = step_seconds(args.recipe, batch)
    shard, _ = step_seconds(args.recipe, -(-batch // args.nproc))
    reduce = allreduce_seconds(grad_bytes, args.nproc)
    print(json.dumps({"recipe": args.recipe, "cores": os.cpu_count(), "steps_per_epoch": steps,
                      "epoch_s_1_process": one, f"epoch_s_{args.nproc}_processes": many,
                      "step_s_full_batch_1_thread": full, "step_s_shard_1_thread": shard,
                      "gradient_bytes": grad_bytes, f"allreduce_s_{args.nproc}_processes": reduce,
                      "model_epoch_s_1_process_1_core": steps * full,
                      f"model_epoch_s_{args.nproc}_processes_{args.nproc}_cores": steps * (shard + reduce)}))


if __name__ == "__main__":
    main()
