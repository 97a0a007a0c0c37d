"""Fashion-MNIST from IDX files: the reader, the splits, --data-dir, and one-line errors for missing or damaged
files. The files are tiny ones written here (the real ones come from the Debian package)."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from click.testing import CliRunner

from neurodeploy.cli import main
from neurodeploy.data import fashion_mnist
from neurodeploy.data.datasets import load_split
from neurodeploy.errors import DataError
from conftest import ROOT

N_TRAIN = fashion_mnist.VALIDATION + 6


def idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture
def idx_dir(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    for part, n, compress in (("train", N_TRAIN, True), ("t10k", 7, False)):
        images = rng.integers(0, 256, size=(n, 28, 28))
        labels = np.arange(n) % 10
        for stem, array in ((f"{part}-images-idx3-ubyte", images), (f"{part}-labels-idx1-ubyte", labels)):
            data = idx(array)
            (tmp_path / (stem + ".gz" if compress else stem)).write_bytes(gzip.compress(data) if compress else data)
    monkeypatch.setenv(fashion_mnist.ENV, str(tmp_path))
    fashion_mnist._load.cache_clear()
    yield tmp_path
    fashion_mnist._load.cache_clear()


def test_splits_are_16x16_in_unit_range_with_their_labels(idx_dir):
    x_train, y_train = load_split("fashion_mnist", "train")
    x_val, y_val = load_split("fashion_mnist", "validation")
    x_test, y_test = load_split("fashion_mnist", "test")
    assert x_train.shape == (6, 256) and x_val.shape == (5000, 256) and x_test.shape == (7, 256)
    assert list(y_train) == [0, 1, 2, 3, 4, 5] and list(y_test) == list(range(7))
    assert 0 <= x_train.min() and x_train.max() <= 1 and x_train.dtype == np.float32
    raw = fashion_mnist.read_idx(idx_dir / "t10k-images-idx3-ubyte")
    # each 16x16 pixel averages its share of the 28x28 image: the mean brightness is kept
    assert x_test.mean(1) == pytest.approx(raw.reshape(7, -1).mean(1) / 255, abs=0.02)


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "t10k-labels-idx1-ubyte").unlink(), "is not in"),
    (lambda d: (d / "t10k-images-idx3-ubyte").write_bytes(b"\0\0\x08\x03" + b"\0" * 20), "truncated or padded"),
    (lambda d: (d / "t10k-images-idx3-ubyte").write_bytes(b"PK\x03\x04not idx"), "not an IDX file"),
    (lambda d: (d / "t10k-labels-idx1-ubyte").write_bytes(idx(np.arange(6))), "do not belong together"),
    (lambda d: (d / "t10k-labels-idx1-ubyte").write_bytes(idx(np.full(7, 12))), "labels outside 0..9"),
])
def test_damaged_or_missing_files_are_one_line_errors_with_the_fix(idx_dir, damage, message):
    damage(idx_dir)
    with pytest.raises(DataError) as info:
        load_split("fashion_mnist", "test")
    assert message in info.value.message and "apt install dataset-fashion-mnist" in info.value.fix


def test_without_the_package_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv(fashion_mnist.ENV, str(tmp_path / "nowhere"))
    fashion_mnist._load.cache_clear()
    out = tmp_path / "fm.pt"
    result = CliRunner().invoke(main, ["train", str(ROOT / "models" / "fashion_mnist.yaml"), "-o", str(out)])
    fashion_mnist._load.cache_clear()
    assert result.exit_code == 2 and not out.exists()
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "sudo apt install dataset-fashion-mnist" in lines[0], result.output


def test_data_dir_option_trains_the_shipped_recipe(idx_dir, tmp_path, monkeypatch):
    monkeypatch.delenv(fashion_mnist.ENV)
    out = tmp_path / "fm.pt"
    result = CliRunner().invoke(main, ["--data-dir", str(idx_dir), "train", str(ROOT / "models" / "fashion_mnist.yaml"),
                                       "-o", str(out), "--epochs", "1", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["n_test"] == 7 and out.is_file()
