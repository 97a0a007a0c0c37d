"""Packaging: an installed neurodeploy works anywhere, not only inside its checkout (docs/packaging.md).

Fast: where the shipped files (targets, recipes, kernel sources, calibrations) are looked up, in a
checkout and in an installed copy; recipes by name; the sdist carrying the whole project and the
wheel (from the sdist, and from the tree as `pip install .` builds it) carrying every shipped
file. The builds run without build isolation (nothing is downloaded), about 3 s.

Slow: that wheel installed into a fresh venv (the same torch as this one first, and a constraint
on it, so that no second torch is pulled), then the command line from a folder outside the
checkout with the fused kernel required: doctor, targets, train by name, map, run on mock:ideal.
About 70-90 s here with a warm pip cache, 25-45 s of it the kernel's first compile.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest
import torch

from neurodeploy import shipped
from neurodeploy.errors import FileKindError
from neurodeploy.recipe import load_recipe, recipe_names

ROOT = Path(__file__).resolve().parents[1]
# Files of the source tree that the sdist need not carry.
NOT_IN_SDIST = {".gitignore"}


def _shipped_globs() -> dict[str, list[str]]:
    """setup.py's SHIPPED (folder → globs), read without running setup.py."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "SHIPPED" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py defines no SHIPPED")


# --- lookup -------------------------------------------------------------------------------------

def test_a_checkout_reads_its_top_level_folders():
    """The editable install (make setup) and the tree on PYTHONPATH read what developers edit."""
    for folder in shipped.FOLDERS:
        assert shipped.shipped_dir(folder) == ROOT / folder
    assert set(_shipped_globs()) == set(shipped.FOLDERS)


def test_an_installed_copy_reads_its_package_data(monkeypatch, tmp_path):
    """Outside a source tree (site-packages has no pyproject.toml beside the package) the copies count."""
    monkeypatch.setattr(shipped, "_CHECKOUT", tmp_path)
    package = Path(shipped.__file__).resolve().parent
    assert shipped.shipped_dir("targets") == package / "_shipped" / "targets"
    assert shipped.shipped_dir("csrc") == package / "_shipped" / "csrc"
    with pytest.raises(ValueError, match="unknown shipped folder"):
        shipped.shipped_dir("docs")


def test_recipes_by_name_and_by_path(tmp_path, monkeypatch):
    assert {"yinyang", "digits", "yinyang_xylo"} <= set(recipe_names())
    assert load_recipe("yinyang").graph == load_recipe(ROOT / "models" / "yinyang.yaml").graph
    monkeypatch.chdir(tmp_path)  # a name needs no models/ folder where it is run
    assert load_recipe("digits").dataset == "digits"
    with pytest.raises(FileKindError, match="no shipped recipe of that name") as error:
        load_recipe("yinyagn")
    assert "yinyang" in error.value.fix  # the fix lists the shipped recipes
    with pytest.raises(FileKindError, match="does not exist"):
        load_recipe("models/yinyagn.yaml")
    own = tmp_path / "yinyang"  # a file of that name wins over the shipped recipe
    own.write_text("format: neurodeploy.target\nversion: 1\n")
    with pytest.raises(FileKindError, match="not a neurodeploy recipe"):
        load_recipe("yinyang")


def test_calibrations_by_name_look_in_the_shipped_folder():
    from neurodeploy.targets.bss2.calibration_file import load_calibration

    with pytest.raises(FileKindError, match=r"calibration/mock-77\.yaml does not exist"):
        load_calibration("mock-77")
    assert shipped.resolve("calibration", "cal/0.yaml") == Path("cal/0.yaml")  # a path stays a path


def test_kernel_sources_are_the_shipped_ones():
    from neurodeploy.core import fused

    assert fused._source_dir() == ROOT / "csrc"
    assert fused.kernel_status()["sources"] == str(ROOT / "csrc")


# --- builds -------------------------------------------------------------------------------------

def _source_files() -> list[str]:
    """The project's files as a fresh clone has them (tracked, plus new files git does not ignore)."""
    try:
        out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                             capture_output=True, check=True).stdout.decode()
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (e.g. an unpacked sdist)
        junk = {".git", ".venv", "build", "dist", "out", "__pycache__", ".hypothesis"}
        return sorted(str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
                      if p.is_file() and not any(part in junk or part.endswith(("_cache", ".egg-info"))
                                                 for part in p.relative_to(ROOT).parts))
    return sorted(f for f in out.split("\0") if f and (ROOT / f).is_file())


def _run(cmd: list, cwd: Path, env: dict | None = None, timeout: float = 900) -> str:
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, (f"{' '.join(map(str, cmd))} exited {result.returncode}:\n"
                                    f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return result.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> dict:
    """A copy of the project, its sdist, the wheel built from that sdist, and the wheel built from the tree."""
    major = int(version("setuptools").split(".")[0])
    assert major >= 77, f"building needs setuptools>=77 (pyproject.toml), this venv has {version('setuptools')}"
    base = tmp_path_factory.mktemp("packaging")
    src, out, tree_out = base / "src", base / "dist", base / "dist-tree"
    files = _source_files()
    for name in files:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, src / name)
    started = time.monotonic()
    sdist = out / _run([sys.executable, "-c", "import sys; from setuptools import build_meta as b; "
                        "print(b.build_sdist(sys.argv[1]))", out], src).strip().splitlines()[-1]
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w"]
    _run([*pip_wheel, out, sdist], base)
    _run([*pip_wheel, tree_out, src], base)  # what `pip install .` builds
    (wheel,) = out.glob("neurodeploy-*.whl")
    (tree_wheel,) = tree_out.glob("neurodeploy-*.whl")
    return {"src": src, "files": files, "sdist": sdist, "wheel": wheel, "tree_wheel": tree_wheel,
            "seconds": time.monotonic() - started}


def test_sdist_carries_the_whole_project(dist):
    with tarfile.open(dist["sdist"]) as tar:
        members = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    missing = sorted(set(dist["files"]) - members - NOT_IN_SDIST)
    assert not missing, f"the sdist lacks {missing}: add them to MANIFEST.in"
    assert {"LICENSE", "setup.py", "pyproject.toml", "docs/packaging.md", "csrc/lif_ops.cpp",
            "targets/bss2.yaml", "models/yinyang.yaml", "calibration/README.md"} <= members


def test_wheel_carries_every_shipped_file(dist):
    names = set(zipfile.ZipFile(dist["wheel"]).namelist())
    expected = {f"neurodeploy/{shipped.PACKAGED}/{folder}/{p.relative_to(dist['src'] / folder).as_posix()}"
                for folder, globs in _shipped_globs().items()
                for pattern in globs for p in (dist["src"] / folder).glob(pattern) if p.is_file()}
    assert expected and expected <= names, sorted(expected - names)
    assert {"neurodeploy/_shipped/csrc/lif_core.h", "neurodeploy/_shipped/targets/xylo.yaml",
            "neurodeploy/_shipped/models/yinyang.yaml", "neurodeploy/_shipped/models/programs/seed003_event.yaml",
            "neurodeploy/_shipped/calibration/README.md",
            "neurodeploy/shipped.py"} <= names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert not any(n.startswith(("tests/", "csrc/", "targets/", "models/")) for n in names)
    assert set(zipfile.ZipFile(dist["tree_wheel"]).namelist()) == names  # `pip install .` gets the same


# --- installed ----------------------------------------------------------------------------------

@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_checkout(dist, tmp_path):
    timings = {"sdist + wheels": dist["seconds"]}

    def step(name: str, cmd: list, cwd: Path, env: dict | None = None) -> str:
        started = time.monotonic()
        out = _run(cmd, cwd, env)
        timings[name] = time.monotonic() - started
        return out

    venv, work = tmp_path / "venv", tmp_path / "elsewhere"
    work.mkdir()
    python, pip = venv / "bin" / "python", [venv / "bin" / "python", "-m", "pip", "install", "-q"]
    torch_pin = f"torch=={torch.__version__}"  # this venv's torch (the Makefile's TORCH_SPEC): no download
    constraints = tmp_path / "constraints.txt"
    constraints.write_text(torch_pin + "\n")
    step("venv", [sys.executable, "-m", "venv", venv], tmp_path)
    step("pip install torch", [*pip, torch_pin], tmp_path)
    step("pip install wheel", [*pip, "-c", constraints, dist["wheel"]], tmp_path)
    packages = json.loads(_run([python, "-c", "import json, importlib.metadata as m; print(json.dumps(sorted("
                                "d.metadata['Name'].lower() for d in m.distributions())))"], work))
    assert packages.count("torch") == 1 and not [p for p in packages if p.startswith("nvidia")], packages
    assert _run([python, "-c", "import torch; print(torch.__version__)"], work).strip() == torch.__version__

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "NEURODEPLOY_", "VIRTUAL_ENV", "TORCH_EXTENSIONS_DIR"))}
    extensions = tmp_path / "torch_extensions"
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", TORCH_EXTENSIONS_DIR=str(extensions),
               NEURODEPLOY_REQUIRE_FUSED="1", NEURODEPLOY_KERNEL="fused")  # fused: a fallback is an error
    site = Path(_run([python, "-c", "import neurodeploy, pathlib; "
                      "print(pathlib.Path(neurodeploy.__file__).parent)"], work, env).strip())
    assert site.is_relative_to(venv), f"neurodeploy imported from {site}, not the fresh venv"
    nd = venv / "bin" / "neurodeploy"

    def cli(name: str, *args) -> dict:
        out = step(name, [nd, *args, "--json"], work, env)
        return json.loads(out)

    doctor = cli("doctor (compiles the kernel)", "doctor")
    kernel = doctor["kernel"]
    assert kernel["path"] == "fused-cpu" and kernel["mode"] == "fused", kernel
    assert kernel["sources"] == str(site / "_shipped" / "csrc"), kernel
    assert {"bss2", "xylo"} <= set(doctor["targets"])
    assert list(extensions.glob("neurodeploy_lif*/*.so")), "no kernel was built in TORCH_EXTENSIONS_DIR"
    assert {"bss2", "xylo"} <= {t["name"] for t in cli("targets", "targets")["targets"]}
    trained = cli("train yinyang", "train", "yinyang", "-o", "m.pt", "--epochs", "1")
    assert trained["epochs"] == 1 and (work / "m.pt").is_file()
    assert cli("map", "map", "m.pt", "--target", "bss2", "-o", "d.npz")["target"] == "bss2"
    ran = cli("run", "run", "d.npz", "--backend", "mock:ideal")
    assert ran["backend"] == "mock:ideal" and ran["n_samples"] == 1000 and ran["accuracy"] > 0.4, ran
    print("packaging timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
          + f"; total {sum(timings.values()):.0f} s")
