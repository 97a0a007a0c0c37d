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
from .fashion_mnist import load_fashion_mnist
from .randman import RANDOM_MANIFOLDS, load_random_manifolds
from .temporal_patterns import CHANNELS, CLASSES, load_temporal_patterns
from .yinyang import load_yinyang

N_FEATURES = {"yinyang": 4, "digits": 64, "digits_4x4": 16, "temporal_patterns": CHANNELS,
              "random_manifolds": RANDOM_MANIFOLDS.channels, "fashion_mnist": 256}
N_CLASSES = {"yinyang": 3, "digits": 10, "digits_4x4": 10, "temporal_patterns": CLASSES,
             "random_manifolds": RANDOM_MANIFOLDS.classes, "fashion_mnist": 10}
# [channels, height, width] of image datasets
IMAGE_SHAPES = {"digits": (1, 8, 8), "digits_4x4": (1, 4, 4), "fashion_mnist": (1, 16, 16)}
SPLITS = {"yinyang": ("train", "validation", "test"), "digits": ("train", "test"), "digits_4x4": ("train", "test"),
          "temporal_patterns": ("train", "test"), "random_manifolds": ("train", "validation", "test"),
          "fashion_mnist": ("train", "validation", "test")}


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
    if name == "random_manifolds":
        return load_random_manifolds(split)
    if name == "digits_4x4":
        return load_digits_4x4_split(split)
    if name == "fashion_mnist":
        return load_fashion_mnist(split)
    return load_yinyang(split) if name == "yinyang" else load_digits_split(split)


MAX_NPZ_BYTES = 4 * 2**30  # a --data file's arrays, uncompressed (MNIST's training set is 0.2 GiB)


def check_samples(x: Any, y: Any, dataset: str, source: str = "the data") -> tuple[np.ndarray, np.ndarray]:
    """Features ``[N, F]`` (finite, in [0, 1] as the built-in splits and the encoders take them) and integer
    labels ``[N]`` of ``dataset``'s classes, N >= 1; returned as float32 and int64, else a ``DataError``."""
    want = N_FEATURES[dataset]
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype.kind not in "iuf" or x.ndim != 2 or x.shape[1] != want:
        raise DataError(f"{source}: x has shape {list(x.shape)} ({x.dtype}), the model's dataset '{dataset}' needs "
                        f"[N, {want}] numbers", f"give {want} raw feature columns per sample")
    if x.shape[0] == 0:
        raise DataError(f"{source}: x has no samples (shape {list(x.shape)})", "give at least one sample")
    if not np.isfinite(x).all():
        row = int(np.argwhere(~np.isfinite(x))[0, 0])
        raise DataError(f"{source}: x holds NaN or infinite values (first in row {row})", "give finite features")
    if x.min() < 0 or x.max() > 1:
        raise DataError(f"{source}: x holds values outside [0, 1] ({float(x.min()):g}..{float(x.max()):g}); the "
                        "encoders take features scaled to [0, 1]",
                        "scale the features to [0, 1], as the built-in splits are")
    if y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{source}: y must be integer labels of shape [{x.shape[0]}], got {y.dtype} {list(y.shape)}",
                        "save integer class labels, one per row of x")
    if y.min() < 0 or y.max() >= N_CLASSES[dataset]:
        raise DataError(f"{source}: labels outside 0..{N_CLASSES[dataset] - 1}",
                        f"dataset '{dataset}' has {N_CLASSES[dataset]} classes")
    return x.astype(np.float32), y.astype(np.int64)


def load_npz(path: str | Path, dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """A user's ``.npz`` file: readable (no pickle, at most :data:`MAX_NPZ_BYTES` unpacked), with ``x`` and ``y``
    as :func:`check_samples` requires for the model's dataset; other arrays are ignored."""
    path = Path(path)
    fix = "save it with np.savez(path, x=features, y=labels)"
    if not path.is_file():
        raise DataError(f"data file {path} does not exist", "give an existing .npz file")
    if path.stat().st_size == 0:
        raise DataError(f"data file {path} is empty (0 bytes)", fix)
    check_dataset_name(dataset)
    try:
        with np.load(path, allow_pickle=False) as archive:
            size = sum(info.file_size for info in archive.zip.infolist())
            if size > MAX_NPZ_BYTES:
                raise DataError(f"{path} unpacks to {size / 2**30:.1f} GiB, more than {MAX_NPZ_BYTES // 2**30} GiB",
                                "split the data into smaller files")
            if "x" not in archive or "y" not in archive:
                raise DataError(f"{path} lacks arrays 'x' and 'y' (has {sorted(archive.files)})", fix)
            x, y = archive["x"], archive["y"]
    except DataError:
        raise
    except Exception as exc:  # zip, zlib or format errors of every kind
        raise DataError(f"{path} is not a readable .npz file ({type(exc).__name__})", fix) from None
    return check_samples(x, y, dataset, str(path))


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
