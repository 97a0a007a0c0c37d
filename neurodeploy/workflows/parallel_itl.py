"""``itl --backend mock:0-3 --nproc N``: several chips in the loop, driven by N processes (torch.distributed, gloo).

The chips are dealt round-robin over the ranks; every rank runs its chips' shards of every mini-batch and the
gradients are combined over ranks before each step (:mod:`neurodeploy.itl.chips`), so all ranks hold the same
weights after every step. Rank 0 writes the checkpoint after every epoch and the model at the end, atomically;
with ``resume`` every rank loads the same checkpoint. Each process computes with one thread.

A user error in a rank (a wrong calibration, say) comes back as that error, one line.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any, Optional

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ..atomic import nameless_temporaries
from ..backends.registry import get_backend
from ..errors import NeurodeployError
from ..itl.chips import Ranks
from ..itl.chips_run import train_on_chips
from ..itl.run import Checkpointing
from ..modelfile import load_model, save_model
from ..targets.registry import get_target
from ..training.distributed import Shard


def itl_parallel(model_path: str | Path, output: str | Path, names: list[str],
                 calibrations: list[Optional[str | Path]], nproc: int, *, backend: str, target: str,
                 checkpoint: Checkpointing, trace_dir: Optional[str | Path] = None, **settings: Any) -> dict:
    """Train with the chips ``names`` (each with its ``calibrations`` entry) in ``nproc`` processes and write
    ``output``; returns rank 0's summary. ``trace_dir``: each rank writes ``rank-R.json`` with a checksum of its
    weights after every step. ``settings``: those of :func:`neurodeploy.itl.chips_run.train_on_chips`."""
    if not 2 <= nproc <= len(names):
        raise NeurodeployError(f"--nproc {nproc} is outside 2..{len(names)} (the chips of --backend {backend})",
                               f"use --nproc {len(names)} or fewer")
    with tempfile.TemporaryDirectory() as folder:
        rendezvous = Path(folder) / "rendezvous"
        result, error = Path(folder) / "summary.json", Path(folder) / "error.json"
        job = {"model": str(model_path), "output": str(output), "names": names, "backend": backend,
               "calibrations": [None if c is None else str(c) for c in calibrations], "target": target,
               "checkpoint": [str(checkpoint.path), checkpoint.fingerprint, checkpoint.resume],
               "settings": settings, "trace_dir": None if trace_dir is None else str(trace_dir)}
        quiet = logging.getLogger("torch.multiprocessing.spawn")  # not its line on stopping the other ranks
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            mp.spawn(_rank, args=(nproc, job, rendezvous.as_uri(), str(result), str(error)), nprocs=nproc, join=True)
        except mp.ProcessRaisedException:
            if error.is_file():  # a user error in a rank: the one line it would have printed
                raise NeurodeployError(**json.loads(error.read_text())) from None
            raise
        finally:
            quiet.setLevel(level)
        return json.loads(result.read_text())


def _rank(rank: int, world: int, job: dict, rendezvous: str, result: str, error: str) -> None:
    torch.set_num_threads(1)  # the processes, not their threads, share the cores
    dist.init_process_group("gloo", init_method=rendezvous, rank=rank, world_size=world)
    try:
        shard = Shard(rank, world, record_checksums=job["trace_dir"] is not None)
        path, fingerprint, resume = job["checkpoint"]
        model, summary = train_on_chips(load_model(job["model"]), [get_backend(n) for n in job["names"]],
                                        get_target(job["target"]), job["calibrations"], backend=job["backend"],
                                        progress=job["settings"].pop("progress", False) and rank == 0,
                                        checkpoint=Checkpointing(Path(path), fingerprint, resume),
                                        source=Path(job["model"]).name, ranks=Ranks(shard), **job["settings"])
        if job["trace_dir"] is not None:
            Path(job["trace_dir"], f"rank-{rank}.json").write_text(json.dumps(shard.checksums))
        if rank == 0:
            model.provenance["processes"] = world
            with nameless_temporaries():
                save_model(model, job["output"])
            Path(result).write_text(json.dumps(summary))
        dist.barrier()
    except NeurodeployError as e:
        Path(error).write_text(json.dumps({"message": e.message, "fix": e.fix}))
        raise
    finally:
        dist.destroy_process_group()
