"""The valid base files every mutation starts from: made once with the CLI, cached, remade for other formats."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .constants import CONSOLE, ROOT, SMALL_SAMPLES


# ----------------------------------------------------------------------------------------------------
# Base files


@dataclass
class Bases:
    """The valid files every mutation starts from (bytes), made once per cache folder."""

    folder: Path
    files: dict[str, bytes] = field(default_factory=dict)

    def __getitem__(self, name: str) -> bytes:
        return self.files[name]


BASE_NAMES = {  # sandbox file name → how it is made
    "recipe.yaml": "tiny recipe: models/yinyang.yaml with 24 hidden neurons, 1 epoch",
    "model.pt": "train recipe.yaml",
    "dep.npz": "map model.pt --target bss2",
    "xylo.npz": "map model.pt --target xylo",
    "cal.yaml": "calibrate --backend mock:0 --target bss2",
    "small.npz": f"{SMALL_SAMPLES} Yin-Yang test samples",
    "graph.nir": "export model.pt --lossy",
    "bss2.yaml": "targets/bss2.yaml",
    "xylo.yaml": "targets/xylo.yaml",
}


def tiny_recipe_text() -> str:
    import yaml

    data = yaml.safe_load((ROOT / "models" / "yinyang.yaml").read_text())
    data["layers"][0]["size"] = 24
    data["training"]["epochs"] = 1
    return yaml.safe_dump(data, sort_keys=False)


def format_stamp() -> str:
    """The file format versions of this neurodeploy: base files of other versions are remade."""
    sys.path.insert(0, str(ROOT))
    from neurodeploy import __version__, deployment, modelfile
    from neurodeploy.targets.bss2 import calibration_file

    return (f"neurodeploy {__version__}, model {modelfile.VERSION}, deployment {deployment.VERSION}, "
            f"calibration {calibration_file.VERSION}")


def make_bases(folder: Path, fresh: bool = False, log: Callable[[str], None] = print) -> Bases:
    """The base files in ``folder``, made with the CLI where missing (or all, with ``fresh``); each must load."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = format_stamp()
    if fresh or not (folder / "stamp.txt").is_file() or (folder / "stamp.txt").read_text() != stamp:
        for name in BASE_NAMES:
            (folder / name).unlink(missing_ok=True)

    def nd(*args: str, timeout: float = 900) -> None:
        log(f"fuzz: making base file: neurodeploy {' '.join(args)}")
        done = subprocess.run([str(CONSOLE), *args], cwd=folder, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise SystemExit(f"fuzz: could not make a base file: {done.stderr.strip()}")

    if not (folder / "recipe.yaml").is_file():
        (folder / "recipe.yaml").write_text(tiny_recipe_text())
    for name in ("bss2.yaml", "xylo.yaml"):
        if not (folder / name).is_file():
            shutil.copy(ROOT / "targets" / name, folder / name)
    if not (folder / "small.npz").is_file():
        import numpy as np

        sys.path.insert(0, str(ROOT))
        from neurodeploy.data.datasets import load_split

        x, y = load_split("yinyang", "test")
        np.savez(folder / "small.npz", x=x[:SMALL_SAMPLES], y=y[:SMALL_SAMPLES])
    if not (folder / "model.pt").is_file():
        nd("train", "recipe.yaml", "-o", "model.pt", "--epochs", "1")
    if not (folder / "dep.npz").is_file():
        nd("map", "model.pt", "--target", "bss2", "-o", "dep.npz")
    if not (folder / "xylo.npz").is_file():
        nd("map", "model.pt", "--target", "xylo", "-o", "xylo.npz")
    if not (folder / "graph.nir").is_file():
        nd("export", "model.pt", "-o", "graph.nir", "--lossy")
    if not (folder / "cal.yaml").is_file():
        nd("calibrate", "--backend", "mock:0", "--target", "bss2", "-o", "cal.yaml")
    (folder / "stamp.txt").write_text(stamp)
    bases = Bases(folder, {name: (folder / name).read_bytes() for name in BASE_NAMES})
    for path in sorted((ROOT / "tests" / "data" / "nir").glob("*.nir")):
        bases.files[f"golden/{path.name}"] = path.read_bytes()
    return bases
