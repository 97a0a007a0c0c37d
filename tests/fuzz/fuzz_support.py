"""What the fuzz tests share: ``scripts/fuzz.py`` as a module (its mutations), base files made in-process, and
the loader of each file kind.

The base files are made without the command line and without training or calibrating from scratch where that
is slow: the model is conftest's ``trained_model``; the calibration is built from nominal codes through the
calibration's own constructors (``calibration_from_result``), so it has every field a measured one has.
"""

from __future__ import annotations

import importlib.util
import os
import random
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def load_fuzz_module() -> Any:
    """``scripts/fuzz.py``, imported once (it is a script, not part of the package)."""
    if "neurodeploy_fuzz" not in sys.modules:
        spec = importlib.util.spec_from_file_location("neurodeploy_fuzz", ROOT / "scripts" / "fuzz.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["neurodeploy_fuzz"] = module
        spec.loader.exec_module(module)
    return sys.modules["neurodeploy_fuzz"]


fuzz = load_fuzz_module()


@contextmanager
def working_directory(path: Path) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def synthetic_calibration(path: Path) -> None:
    """A calibration file of chip mock:0 at nominal codes (no measurement: milliseconds, not a minute)."""
    from neurodeploy.backends.mock.chip import MockChip
    from neurodeploy.calibration.calibrate import SEARCHED, CalibrationResult, calibration_targets
    from neurodeploy.calibration.session import calibration_from_result
    from neurodeploy.targets.bss2.analog import nominal_codes
    from neurodeploy.targets.bss2.calibration_file import save_calibration
    from neurodeploy.targets.bss2.spec import load_bss2_spec

    spec = load_bss2_spec()
    targets = calibration_targets(spec)
    n = spec.total_circuits
    full = lambda v: np.full(n, float(v))  # noqa: E731
    codes = nominal_codes({"v_leak_cadc": full(targets["v_leak_cadc"]), "v_reset_cadc": full(targets["v_reset_cadc"]),
                           "v_th_cadc": full(targets["v_threshold_cadc"]), "tau_mem_s": full(targets["tau_mem_s"]),
                           "tau_syn_s": full(targets["tau_syn_s"]), "t_ref_s": full(targets["t_ref_s"]),
                           "synaptic_gain_cadc_per_lsb": full(targets["synaptic_gain_cadc_per_lsb"])}, spec)
    spread = np.random.default_rng(0).normal(1.0, 0.05, n)
    result = CalibrationResult(
        codes=codes, gain_slope=np.full(n, 0.01), gain_offset_code=np.zeros(n),
        measured={name: full(targets[name]) for name in SEARCHED},
        uncalibrated={name: full(targets[name]) * spread for name in SEARCHED},
        success=np.ones(n, bool), rounds=1, seconds=0.1, madc_gain=1.0, madc_offset=0.0)
    save_calibration(calibration_from_result(result, MockChip(0), spec, targets), path)


def make_bases(folder: Path, model: Path) -> Any:
    """The fuzzer's base files (the names ``scripts/fuzz.py`` uses) in ``folder``, from ``model``."""
    import shutil

    from neurodeploy.data.datasets import load_split
    from neurodeploy.interchange import write_nir
    from neurodeploy.modelfile import load_model
    from neurodeploy.workflows.map import map_model

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(model, folder / "model.pt")
    (folder / "recipe.yaml").write_text(fuzz.tiny_recipe_text())
    for name in ("bss2.yaml", "xylo.yaml"):
        shutil.copy(ROOT / "targets" / name, folder / name)
    x, y = load_split("yinyang", "test")
    np.savez(folder / "small.npz", x=x[:fuzz.SMALL_SAMPLES], y=y[:fuzz.SMALL_SAMPLES])
    map_model(folder / "model.pt", "bss2", folder / "dep.npz")
    map_model(folder / "model.pt", "xylo", folder / "xylo.npz")
    write_nir(load_model(folder / "model.pt"), folder / "graph.nir", lossy=True)
    synthetic_calibration(folder / "cal.yaml")
    bases = fuzz.Bases(folder, {name: (folder / name).read_bytes() for name in fuzz.BASE_NAMES})
    for path in sorted((ROOT / "tests" / "data" / "nir").glob("*.nir")):
        bases.files[f"golden/{path.name}"] = path.read_bytes()
    return bases


def loaders() -> dict[str, Callable[[Path], Any]]:
    """Each file kind's loader, as the verbs use it."""
    from neurodeploy.data.datasets import load_npz
    from neurodeploy.interchange import read_nir
    from neurodeploy.modelfile import load_model
    from neurodeploy.recipe import load_recipe
    from neurodeploy.targets.bss2.calibration_file import load_calibration
    from neurodeploy.targets.registry import get_target
    from neurodeploy.validation.loading import load_checked_deployment

    return {"model": load_model, "dep-bss2": load_checked_deployment, "dep-xylo": load_checked_deployment,
            "recipe": load_recipe, "spec": get_target, "calibration": load_calibration,
            "data": lambda path: load_npz(path, "yinyang"),
            "nir": read_nir}


def place_special(mutant: Any, path: Path) -> None:
    """A directory, FIFO, dangling or self-referencing link at ``path``."""
    if mutant.special == "dir":
        path.mkdir()
    elif mutant.special == "fifo":
        os.mkfifo(path)
    elif mutant.special == "dangling":
        path.symlink_to(path.parent / "no-such-target")
    elif mutant.special == "loop":
        path.symlink_to(path)


def fresh_path(folder: Path, name: str) -> Path:
    """``folder/name``, with whatever a previous example left there removed."""
    path = folder / name
    if path.is_symlink() or path.is_file() or path.is_fifo():
        path.unlink()
    elif path.is_dir():
        import shutil

        shutil.rmtree(path)
    return path


def mutant_for(kind: str, bases: Any, seed: int) -> tuple[str, Any]:
    """The fuzzer's mutation of ``kind`` for ``seed`` (what ``scripts/fuzz.py`` would make)."""
    return fuzz.mutate(kind, bases, random.Random(seed))
