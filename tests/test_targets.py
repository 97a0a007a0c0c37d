"""The target interface: registry, entry-point plug-ins, options a target refuses, backend contract."""

import json
import subprocess
import sys
import textwrap

import pytest

from neurodeploy.backends.registry import get_backend
from neurodeploy.errors import BackendError, NeurodeployError, TargetSpecError
from neurodeploy.targets.base import MapOptions, Target
from neurodeploy.targets.registry import get_target, target_names
from conftest import ROOT

PLUGIN = '''
from pathlib import Path

from neurodeploy.targets.base import CheckResult, Target

class ToyTarget(Target):
    """A third-party target: its own folder, no edit of neurodeploy."""
    name = "toy"
    spec_file = Path(__file__).with_name("toy.yaml")

    def limits(self):
        return {"neurons": self.spec["neurons"]}

    def check(self, model, options=None):
        return CheckResult([], [])

    def backend(self, name):
        return None
'''


def _install_plugin(folder):
    """A package with a ``neurodeploy.targets`` entry point, found on sys.path like an installed one."""
    (folder / "toy_target.py").write_text(textwrap.dedent(PLUGIN))
    dist = folder / "toy_target-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-target\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[neurodeploy.targets]\ntoy = toy_target:ToyTarget\n")
    (folder / "toy.yaml").write_text("format: neurodeploy.target\nversion: 1\nname: toy\n"
                                     "description: a toy chip\nneurons: 7\n")


def test_builtin_targets_and_their_backends():
    assert target_names()[:2] == ["bss2", "xylo"]
    assert get_backend("mock:ideal").target == "bss2" and get_backend("xylo-sim").target == "xylo"
    software = get_backend("software")
    assert software.target is None and software.chip_id is None and not software.uses_codes
    chip = get_backend("mock:3")
    assert chip.chip_id == "mock-chip-3" and chip.uses_codes and "madc" in chip.capabilities


def test_unknown_names_list_the_known_ones():
    with pytest.raises(TargetSpecError, match="unknown target 'loihi9'") as error:
        get_target("loihi9")
    assert "bss2" in error.value.fix and "xylo" in error.value.fix
    with pytest.raises(BackendError, match="unknown backend 'nope'") as error:
        get_backend("nope")
    assert "xylo-sim" in error.value.fix and "mock:ideal" in error.value.fix


def test_a_target_from_an_entry_point_needs_no_edit_of_neurodeploy(tmp_path):
    """A separate process with the plug-in on its path lists it next to the built-in targets."""
    _install_plugin(tmp_path)
    env_path = f"{tmp_path}:{ROOT}"
    code = ("import json; from neurodeploy.workflows.targets import list_targets; "
            "print(json.dumps([(t['name'], t['limits']) for t in list_targets()]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"})
    listed = dict(json.loads(out.stdout))
    assert listed["toy"] == {"neurons": 7}


def test_a_target_refuses_options_it_does_not_honour(trained_model):
    from neurodeploy.workflows.map import map_model

    with pytest.raises(NeurodeployError, match="target 'xylo' does not support --weight-copies"):
        map_model(trained_model, "xylo", weight_copies=3)
    with pytest.raises(NeurodeployError, match="does not support --calibration"):
        map_model(trained_model, "xylo", calibration="whatever.yaml")


def test_optional_hooks_say_what_a_target_lacks():
    xylo = get_target("xylo")
    with pytest.raises(NeurodeployError, match="no calibration"):
        xylo.calibrate(get_backend("xylo-sim"), {})
    with pytest.raises(NeurodeployError, match="does not support in-the-loop training"):
        xylo.itl_session(None, get_backend("xylo-sim"), None, 1)


def test_a_backend_runs_only_its_targets_deployments(trained_model, deployment_file, tmp_path):
    from neurodeploy.workflows.map import map_model
    from neurodeploy.workflows.run import run

    with pytest.raises(BackendError, match="runs target 'xylo' deployments, this one is for 'bss2'"):
        run(deployment_file, "xylo-sim")
    xylo_file = tmp_path / "x.npz"
    map_model(trained_model, "xylo", xylo_file)
    with pytest.raises(BackendError, match="runs target 'bss2' deployments, this one is for 'xylo'"):
        run(xylo_file, "mock:ideal")
    assert run(xylo_file, "software")["target"] == "xylo"  # the float reference runs any target's deployment


def test_spec_files_are_validated_by_their_target(tmp_path):
    spec = tmp_path / "bss2_broken.yaml"
    spec.write_text("format: neurodeploy.target\nversion: 1\nname: bss2\ndescription: x\ngeometry: {}\n")
    with pytest.raises(TargetSpecError, match="lacks sections"):
        get_target(spec)
    assert isinstance(get_target(ROOT / "targets" / "xylo.yaml"), Target)


def test_map_options_are_the_cli_options():
    assert set(MapOptions._fields) == {"clip_quantile", "weight_scale", "calibration", "delays", "weight_copies",
                                       "probe_inputs"}


def test_the_architecture_contracts_name_every_module():
    """Each module of the package is a source of the BSS-2 contract or BSS-2's own, so none escapes it."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    sources, forbidden = set(config[0]["source_modules"]), set(config[0]["forbidden_modules"])
    package = ROOT / "neurodeploy"
    modules = {"neurodeploy." + ".".join(p.relative_to(package).with_suffix("").parts)
               for p in package.rglob("*.py") if p.name != "__init__.py"}
    covered = lambda m: any(m == s or m.startswith(s + ".") for s in sources | forbidden)  # noqa: E731
    assert sorted(m for m in modules if not covered(m)) == []
