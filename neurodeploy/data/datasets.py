"""Dataset lookup by name, and user-provided ``.npz`` files with ``x`` ``[N, F]`` and ``y`` ``[N]``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError, RecipeError
from .encoding import encode_dataset
from .digits import load_digits_4x4_split, load_digits_split
from .temporal_patterns import CHANNELS, CLASSES, load_temporal_patterns
from .yinyang import load_yinyang

N_FEATURES = {"yinyang": 4, "digits": 64, "digits_4x4": 16, "temporal_patterns": CHANNELS}
N_CLASSES = {"yinyang": 3, "digits": 10, "digits_4x4": 10, "temporal_patterns": CLASSES}
SPLITS = {"yinyang": ("train", "validation", "test"), "digits": ("train", "test"), "digits_4x4": ("train", "test"),
          "temporal_patterns": ("train", "test")}


def check_dataset_name(name: str) -> None:
    if name not in N_FEATURES:
        raise RecipeError(f"unknown dataset {name!r}", f"use one of {sorted(N_FEATURES)}")


def load_split(name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Features ``[N, F]`` float32 and labels ``[N]`` int64 of a built-in dataset split."""
    check_dataset_name(name)
    if split not in SPLITS[name]:
        raise DataError(f"dataset {name!r} has no split {split!r}",
                        f"use one of {list(SPLITS[name])}")
    if name == "temporal_patterns":
        return load_temporal_patterns(split)
    if name == "digits_4x4":
        return load_digits_4x4_split(split)
    return load_yinyang(split) if name == "yinyang" else load_digits_split(split)


def load_npz(path: str | Path, dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """A user's ``.npz`` file: checked against the features and classes the model expects."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {path} does not exist", "give an existing .npz file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "x" not in archive or "y" not in archive:
                raise DataError(f"{path} lacks arrays 'x' and 'y' (has {sorted(archive.files)})",
                                "save it with np.savez(path, x=features, y=labels)")
            x, y = np.asarray(archive["x"], np.float32), np.asarray(archive["y"])
    except DataError:
        raise
    except Exception as exc:  # zip or format errors of every kind
        raise DataError(f"{path} is not a readable .npz file ({type(exc).__name__})",
                        "save it with np.savez(path, x=features, y=labels)") from None
    want = N_FEATURES[dataset]
    if x.ndim != 2 or x.shape[1] != want:
        raise DataError(f"{path}: x has shape {x.shape}, the model's dataset '{dataset}' needs [N, {want}]",
                        f"give {want} raw feature columns per sample")
    if y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: y must be integer labels of shape [{x.shape[0]}], got {y.dtype} {y.shape}",
                        "save integer class labels, one per row of x")
    if y.size and (y.min() < 0 or y.max() >= N_CLASSES[dataset]):
        raise DataError(f"{path}: labels outside 0..{N_CLASSES[dataset] - 1}",
                        f"dataset '{dataset}' has {N_CLASSES[dataset]} classes")
    return x, y.astype(np.int64)


def load_data(dataset: str, data: str | None, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """``data`` is ``None`` (the built-in ``split``), a split name, or a ``.npz`` path."""
    if data is None:
        return load_split(dataset, split)
    if data in SPLITS.get(dataset, ()):
        return load_split(dataset, data)
    return load_npz(data, dataset)


def training_probe(dataset: str, encoding: Mapping[str, Any], dt_s: float, samples: int = 500) -> torch.Tensor:
    """The first ``samples`` training samples, encoded ``[T, B, C]``: what mappers measure rates and ranges on
    (never the test set)."""
    x, _ = load_split(dataset, "train")
    return encode_dataset(x[:samples], encoding, dt_s)
