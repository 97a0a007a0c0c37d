"""``train --nproc N``: data-parallel training in N processes on one machine (torch.distributed, gloo).

Each process trains on its shard of every mini-batch and averages the gradients with the others
(:mod:`neurodeploy.training.distributed`), so all ranks hold the same weights after every step; rank 0
writes the model file, atomically. Each process computes with one thread.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Optional

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ..atomic import nameless_temporaries
from ..errors import NeurodeployError
from ..modelfile import save_model
from ..recipe import load_recipe
from ..training.distributed import Shard
from ..training.fit import fit

MAX_PROCESSES = 64


def train_parallel(recipe_path: str | Path, output: str | Path, nproc: int, *, epochs: Optional[int] = None,
                   seed: Optional[int] = None, trace_dir: Optional[str | Path] = None) -> dict:
    """Train with ``nproc`` processes and write ``output``; returns rank 0's metrics (plus ``processes``).
    ``trace_dir``: each rank writes ``rank-R.json`` with a checksum of its weights after every step."""
    if not 2 <= nproc <= MAX_PROCESSES:
        raise NeurodeployError(f"--nproc {nproc} is outside 2..{MAX_PROCESSES}",
                               "use --nproc 2 or more, or leave it out")
    recipe = load_recipe(recipe_path)  # bad recipes are refused here, before any process starts
    if recipe.training.get("method") == "asf":
        raise NeurodeployError("training.method: asf trains in one process", "leave out --nproc")
    with tempfile.TemporaryDirectory() as folder:
        rendezvous = Path(folder) / "rendezvous"
        result = Path(folder) / "metrics.json"
        mp.spawn(_rank, args=(nproc, str(recipe_path), str(output), epochs, seed, rendezvous.as_uri(), str(result),
                              None if trace_dir is None else str(trace_dir)), nprocs=nproc, join=True)
        return {**json.loads(result.read_text()), "processes": nproc}


def _rank(rank: int, world: int, recipe_path: str, output: str, epochs: Optional[int], seed: Optional[int],
          rendezvous: str, result: str, trace_dir: Optional[str]) -> None:
    torch.set_num_threads(1)  # the processes, not their threads, share the cores
    dist.init_process_group("gloo", init_method=rendezvous, rank=rank, world_size=world)
    try:
        shard = Shard(rank, world, record_checksums=trace_dir is not None)
        model = fit(load_recipe(recipe_path), epochs=epochs, seed=seed, progress=False,
                    recipe_file=Path(recipe_path).name, shard=shard)
        if trace_dir is not None:
            Path(trace_dir, f"rank-{rank}.json").write_text(json.dumps(shard.checksums))
        if rank == 0:
            model.provenance["processes"] = world
            with nameless_temporaries():
                save_model(model, output)
            Path(result).write_text(json.dumps(model.metrics))
        dist.barrier()
    finally:
        dist.destroy_process_group()
