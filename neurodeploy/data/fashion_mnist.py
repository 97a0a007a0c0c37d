"""Fashion-MNIST (Xiao et al. 2017) from its IDX files, downsampled to 16×16 for a BSS-2-sized network.

The files come from the Debian package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``),
nothing is downloaded; ``$NEURODEPLOY_FASHION_MNIST_DIR`` (the CLI's ``--data-dir``) points elsewhere. Each
28×28 image is averaged over 16×16 areas (``adaptive_avg_pool2d``: the published BSS-2 MNIST work
downscaled to 16×16 as well) and scaled to [0, 1]. Splits: ``train`` (the first 55 000 training images),
``validation`` (the last 5 000), ``test`` (the 10 000 test images).

IDX format: a big-endian header (two zero bytes, a type code, the number of dimensions, then each
dimension as a 32-bit integer) followed by the data; files may be gzip-compressed.
"""

from __future__ import annotations

import functools
import gzip
import os
from pathlib import Path

import numpy as np

from ..errors import DataError

DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
ENV = "NEURODEPLOY_FASHION_MNIST_DIR"
SIDE = 16
VALIDATION = 5000
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
FIX = (f"install the Debian package (sudo apt install dataset-fashion-mnist), or give --data-dir DIR (or ${ENV}) "
       "with the four IDX files")


def data_dir() -> Path:
    return Path(os.environ.get(ENV) or DEFAULT_DIR)


def read_idx(path: Path) -> np.ndarray:
    """The array in an IDX file (gzip-compressed or not); a malformed file is a ``DataError``."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path} cannot be read ({type(exc).__name__})", FIX) from None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in IDX_TYPES or raw[3] == 0:
        raise DataError(f"{path} is not an IDX file (bad header)", FIX)
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)) if len(raw) >= header else ()
    dtype = np.dtype(IDX_TYPES[raw[2]])
    if len(shape) != ndim or len(raw) != header + int(np.prod(shape)) * dtype.itemsize:
        raise DataError(f"{path} is truncated or padded: its header says {list(shape)} of {dtype}", FIX)
    return np.frombuffer(raw, dtype, offset=header).reshape(shape)


def _find(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"Fashion-MNIST file {stem}[.gz] is not in {folder}", FIX)


@functools.lru_cache(maxsize=4)
def _load(folder: Path, part: str) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(_find(folder, FILES[part][0]))
    labels = read_idx(_find(folder, FILES[part][1]))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels) or len(labels) == 0:
        raise DataError(f"Fashion-MNIST in {folder}: images {list(images.shape)} and labels {list(labels.shape)} "
                        "do not belong together", FIX)
    if labels.min() < 0 or labels.max() > 9:
        raise DataError(f"Fashion-MNIST in {folder}: labels outside 0..9", FIX)
    import torch  # here, not at import: the command line reads ENV without loading torch
    import torch.nn.functional as F

    scaled = torch.as_tensor(images.astype(np.float32) / 255.0).unsqueeze(1)
    small = F.adaptive_avg_pool2d(scaled, SIDE).reshape(len(images), SIDE * SIDE).numpy()
    return np.clip(small, 0.0, 1.0).astype(np.float32), labels.astype(np.int64)


def load_fashion_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Features ``[N, 256]`` in [0, 1] (16×16, row-major) and labels ``[N]`` of ``train``, ``validation``, ``test``."""
    x, y = _load(data_dir(), "test" if split == "test" else "train")
    if split == "train":
        return x[:-VALIDATION], y[:-VALIDATION]
    if split == "validation":
        return x[-VALIDATION:], y[-VALIDATION:]
    return x, y
