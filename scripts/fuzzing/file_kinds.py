"""One damaged file of a kind: its base file and the mutation of that kind."""

from __future__ import annotations

import random

from .bases import Bases
from .data_files import mutate_data
from .model_files import mutate_deployment, mutate_model
from .mutations import Mutant, _Skip
from .nir_files import mutate_nir
from .yaml_files import mutate_yaml


def mutate(kind: str, bases: Bases, rng: random.Random) -> tuple[str, Mutant]:
    """One damaged file of ``kind``: (the base it came from, the mutant). Retries inapplicable mutations."""
    for _ in range(50):
        if kind == "nir":
            base_name = rng.choice(["graph.nir"] * 3 + sorted(n for n in bases.files if n.startswith("golden/")))
        else:
            base_name = {"model": "model.pt", "dep-bss2": "dep.npz", "dep-xylo": "xylo.npz", "recipe": "recipe.yaml",
                         "spec": rng.choice(["bss2.yaml", "xylo.yaml"]), "calibration": "cal.yaml",
                         "data": "small.npz"}[kind]
        base = bases[base_name]
        try:
            if kind == "model":
                return base_name, mutate_model(base, bases, rng)
            if kind in ("dep-bss2", "dep-xylo"):
                return base_name, mutate_deployment(base, bases, rng, "bss2" if kind == "dep-bss2" else "xylo")
            if kind in ("recipe", "spec", "calibration"):
                return base_name, mutate_yaml(base, bases, rng, kind)
            if kind == "data":
                return base_name, mutate_data(base, bases, rng)
            return base_name, mutate_nir(base, bases, rng)
        except _Skip:
            continue
    raise RuntimeError(f"no applicable mutation of {kind}")
