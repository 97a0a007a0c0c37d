"""Validation at load time (issue 15): model files, recipes, target specs, --data files, the verbs' arguments,
the rule library and the content checksum. Each damaged variant must give one clean error line that names the
field; valid files must still load. Deployments and calibrations: tests/test_validation_deployment.py."""

import copy
import math
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

import neurodeploy as nd
from neurodeploy.cli import main
from neurodeploy.data.datasets import load_npz
from neurodeploy.errors import DataError, FileKindError, NeurodeployError, RecipeError, TargetSpecError
from neurodeploy.modelfile import READABLE_VERSIONS, VERSION, load_model, save_model
from neurodeploy.recipe import load_recipe, recipe_from_dict, recipe_names
from neurodeploy.targets.registry import get_target
from neurodeploy.validation.arguments import MAX_EPOCHS, MAX_SEED
from neurodeploy.validation.checksum import digest
from neurodeploy.validation.common import NO_DATASET
from neurodeploy.validation.rules import Array, Fields, Invalid, ListOf, MapOf, Number, OneOf, Text, show

ROOT = Path(__file__).resolve().parents[1]
NAN, INF = float("nan"), float("inf")


def one_line(error: NeurodeployError, *fragments: str) -> str:
    """The error's CLI line: one line, with a fix, naming every fragment."""
    line = error.one_line()
    assert "\n" not in line and "(fix: " in line, line
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


# The rule library and the checksum ------------------------------------------------------------------------

def test_rules_say_what_they_accept():
    assert Number(lo=1, hi=10, integer=True).describe() == "an integer in 1..10"
    assert Number(lo=0, lo_open=True).describe() == "a finite positive number"
    assert Number(lo=0, hi=1, lo_open=True).describe() == "a finite number in (0, 1]"
    for rule, value in ((Number(integer=True), 1.0), (Number(integer=True), True), (Number(), "1"), (Number(), NAN),
                        (Number(), INF), (Text(), ""), (OneOf(("a",)), "b"), (ListOf(Number(), length=2), [1]),
                        (Fields(required={"a": Number()}), {}), (Fields(), {"b": 1}), (MapOf(Number()), {1: 2}),
                        (Array("int", (2,)), np.zeros(2)), (Array("float", (2,)), np.array([1.0, NAN])),
                        (Array("float", (3,)), np.zeros(2)), (Array("int", lo=0, hi=3), np.array([4]))):
        with pytest.raises(Invalid) as info:
            rule.check(value, "x")
        assert info.value.field.startswith("x") and info.value.problem
    assert Number(lo=0, finite=False).check(INF, "x") == INF
    assert Array("float", allow_inf=True).check(np.array([INF]), "x") is not None
    assert show(10**5000) == "an integer of 16610 bits" and len(show("a" * 1000)) < 50


def test_checksum_is_canonical_and_sensitive():
    payload = {"b": [1, 2.5, NAN, None, True, "x"], "a": {"t": torch.arange(6.0).reshape(2, 3)},
               "n": np.asfortranarray(np.arange(6).reshape(2, 3))}
    same = {"a": {"t": torch.arange(6.0).reshape(2, 3)}, "n": np.arange(6).reshape(2, 3),
            "b": (1, 2.5, NAN, None, True, "x")}
    assert digest(payload) == digest(same) and len(digest(payload)) == 64
    for change in (lambda p: p["b"].__setitem__(0, 2), lambda p: p["b"].__setitem__(4, 1),
                   lambda p: p["a"]["t"].__setitem__((0, 0), 1e-30), lambda p: p.__setitem__("c", None),
                   lambda p: p.__setitem__("n", p["n"].astype(np.int32))):
        changed = copy.deepcopy(payload)
        change(changed)
        assert digest(changed) != digest(payload)


def test_no_dataset_is_the_importers():
    from neurodeploy.interchange import NO_DATASET as IMPORTED
    assert NO_DATASET == IMPORTED


# Model files ---------------------------------------------------------------------------------------------

def _set_path(data, path, value):
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


MODEL_DAMAGE = [
    ("missing key", lambda d: d.pop("dt_s"), "dt_s is missing"),
    ("wrong type", lambda d: d.update(seed="zero"), "seed = 'zero'"),
    ("NaN time step", lambda d: d.update(dt_s=NAN), "dt_s = nan"),
    ("negative time step", lambda d: d.update(dt_s=-1e-3), "dt_s = -0.001"),
    ("seed beyond torch", lambda d: d.update(seed=2**70), "seed = an integer of 71 bits"),
    ("NaN weight", lambda d: d["weights"]["input->hidden"].__setitem__((0, 0), NAN), "weights['input->hidden']"),
    ("infinite weight", lambda d: d["weights"]["hidden->output"].__setitem__((1, 2), -INF),
     "weights['hidden->output'] holds NaN or infinite"),
    ("wrong shape", lambda d: d["weights"].update({"input->hidden": torch.zeros(3, 3)}), "has shape [3, 3]"),
    ("integer weights", lambda d: d["weights"].update({"input->hidden": torch.zeros(24, 5, dtype=torch.int64)}),
     "weights['input->hidden'] has dtype int64"),
    ("dropped array", lambda d: d["weights"].pop("hidden->output"), "weights['hidden->output'] is missing"),
    ("extra array", lambda d: d["weights"].update({"x->y": torch.zeros(1, 1)}), "weights['x->y'] names no projection"),
    ("unknown key", lambda d: d.update(extra=1), "extra is not a known key"),
    ("unknown dataset", lambda d: d.update(dataset="mnist"), "dataset = 'mnist' is unknown"),
    ("dataset of other inputs", lambda d: d.update(dataset="digits"), "dataset 'digits' with its encoding gives 65"),
    ("NaN duration", lambda d: d["encoding"].update(duration_s=NAN), "encoding.duration_s = nan"),
    ("huge duration", lambda d: d["encoding"].update(duration_s=1e9), "encoding.duration_s"),
    ("duration beyond float steps", lambda d: d["encoding"].update(duration_s=1e308), "encoding.duration_s = 1e+308"),
    ("unknown encoding key", lambda d: d["encoding"].update(t_erly_s=1.0), "encoding.t_erly_s is not a known key"),
    ("population size 0", lambda d: _set_path(d, ["graph", "populations", 1, "size"], 0),
     "graph.populations[1].size = 0"),
    ("population size text", lambda d: _set_path(d, ["graph", "populations", 1, "size"], "24"),
     "graph.populations[1].size = '24'"),
    ("negative tau", lambda d: _set_path(d, ["graph", "populations", 1, "neuron", "tau_mem_s"], -1.0), "tau_mem_s"),
    ("NaN threshold", lambda d: _set_path(d, ["graph", "populations", 1, "neuron", "v_th"], NAN),
     "graph.populations[1].neuron.v_th = nan"),
    ("infinite refractory", lambda d: _set_path(d, ["graph", "populations", 1, "neuron", "t_ref_s"], INF), "t_ref_s"),
    ("projection to nowhere", lambda d: _set_path(d, ["graph", "projections", 0, "post"], "nowhere"), "graph"),
    ("discretisation", lambda d: d["discretisation"].update(kind="nir-euler"),
     "discretisation 'nir-euler' differs from its graph's 'native'"),
    ("training loss", lambda d: d["training"].update(loss="mse"), "training.loss = 'mse' is unknown"),
    ("training flag", lambda d: d["training"].update(detach_reset="yes"), "training.detach_reset = 'yes'"),
    ("training steepness", lambda d: d["training"].update(surrogate_steepness=NAN), "training.surrogate_steepness"),
    ("delays of an undelayed projection", lambda d: d["delays"].update({"input->hidden": torch.zeros(24, 5)}),
     "delays['input->hidden'] names no projection of the graph with delays"),
    ("metrics not a mapping", lambda d: d.update(metrics=[1, 2]), "metrics"),
    ("checksum not a digest", lambda d: d.update(checksum="abc"), "checksum is not a SHA-256 digest"),
    ("checksum dropped", lambda d: d.pop("checksum"), "checksum is missing"),
    ("edited after writing", lambda d: d["metrics"].update(test_accuracy=1.0), "edited or damaged after writing"),
    ("weight edited after writing", lambda d: d["weights"]["input->hidden"].mul_(2), "edited or damaged after writing"),
    ("version edited after writing", lambda d: d.update(version=4), "recurrent is not a known key"),  # a v5 field
]


@pytest.mark.parametrize("name,damage,fragment", MODEL_DAMAGE, ids=[m[0] for m in MODEL_DAMAGE])
def test_damaged_model_files_are_one_line_errors(trained_model, tmp_path, name, damage, fragment):
    data = torch.load(trained_model, weights_only=True)
    damage(data)
    path = tmp_path / "damaged.pt"
    torch.save(data, path)
    with pytest.raises(FileKindError) as info:
        load_model(path)
    one_line(info.value, str(path), fragment)


def test_a_fresh_model_file_round_trips_with_its_checksum(trained_model, tmp_path):
    raw = torch.load(trained_model, weights_only=True)
    assert raw["version"] == VERSION == 5 and READABLE_VERSIONS == (1, 2, 3, 4, 5) and len(raw["checksum"]) == 64
    model = load_model(trained_model)
    save_model(model, tmp_path / "again.pt")
    assert torch.load(tmp_path / "again.pt", weights_only=True)["checksum"] == raw["checksum"]


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_model_files_of_older_versions_still_load(trained_model, tmp_path, version):
    data = torch.load(trained_model, weights_only=True)
    data.pop("checksum")
    data.pop("recurrent")
    data["version"] = version
    if version == 4:
        data["checksum"] = digest(data)
    if version < 3:
        data["discretisation"].pop("kind")
    if version < 2:
        data.pop("delays")
        data.pop("delay_sigma_steps")
    torch.save(data, tmp_path / "old.pt")
    assert load_model(tmp_path / "old.pt").graph == load_model(trained_model).graph


def test_models_with_delays_itl_mappings_and_imports_load(tmp_path, trained_model):
    from neurodeploy.interchange import read_nir

    recipe = load_recipe(ROOT / "models" / "delay_task.yaml")
    generator = torch.Generator().manual_seed(0)
    weights = {p.name: torch.randn(recipe.graph.population(p.post).size, recipe.graph.population(p.pre).size,
                                   generator=generator) for p in recipe.graph.projections}
    delayed = nd.ModelFile(graph=recipe.graph, weights=weights, dt_s=recipe.dt_s, encoding=recipe.encoding,
                           dataset=recipe.dataset, seed=0, delays={"input->hidden": 32 * torch.rand(16, 4)},
                           delay_sigma_steps={"input->hidden": 0.23})
    save_model(delayed, tmp_path / "delayed.pt")
    assert load_model(tmp_path / "delayed.pt").delays["input->hidden"].shape == (16, 4)
    raw = torch.load(tmp_path / "delayed.pt", weights_only=True)
    raw["delays"]["input->hidden"][0, 0] = 33.0  # beyond max_steps 32
    torch.save(raw, tmp_path / "far.pt")
    with pytest.raises(FileKindError) as info:
        load_model(tmp_path / "far.pt")
    one_line(info.value, "delays['input->hidden'] holds 33.0")
    for name, options in (("handmade.nir", {}), ("snntorch_ff.nir", {"dt_s": 1e-4})):
        imported = read_nir(ROOT / "tests" / "data" / "nir" / name, **options)
        save_model(imported, tmp_path / "imported.pt")
        assert load_model(tmp_path / "imported.pt").graph == imported.graph
    tuned = nd.itl(load_model(trained_model), "mock:ideal", epochs=1, train_samples=100)
    save_model(tuned, tmp_path / "itl.pt")
    again = load_model(tmp_path / "itl.pt")
    assert again.mapping["weight_copies"] == 1 and set(again.mapping["weight_scale"]) == {"hidden", "output"}
    raw = torch.load(tmp_path / "itl.pt", weights_only=True)
    raw["mapping"]["weight_scale"]["hidden"][0] = -1.0
    torch.save(raw, tmp_path / "itl_bad.pt")
    with pytest.raises(FileKindError) as info:
        load_model(tmp_path / "itl_bad.pt")
    one_line(info.value, "mapping.weight_scale['hidden'] holds -1.0")


def test_reading_a_model_dict_checks_it_too(trained_model, tmp_path):
    from neurodeploy.modelfile import read_model_dict

    data = torch.load(trained_model, weights_only=True)
    data.pop("graph")
    torch.save(data, tmp_path / "nograph.pt")
    with pytest.raises(FileKindError, match="graph is missing"):
        read_model_dict(tmp_path / "nograph.pt")
    assert read_model_dict(trained_model)["dataset"] == "yinyang"


def test_tensors_that_require_a_gradient_load_as_plain_tensors(trained_model, tmp_path):
    import dataclasses

    model = load_model(trained_model)
    weights = {k: torch.nn.Parameter(v.clone()) for k, v in model.weights.items()}
    save_model(dataclasses.replace(model, weights=weights), tmp_path / "grad.pt")
    again = load_model(tmp_path / "grad.pt")
    assert not any(w.requires_grad for w in again.weights.values())
    assert nd.map(again, "xylo", probe=False).target == "xylo"


def test_the_cli_refuses_a_damaged_model_in_one_line(trained_model, tmp_path):
    data = torch.load(trained_model, weights_only=True)
    data["weights"]["input->hidden"][2, 3] = NAN
    torch.save(data, tmp_path / "nan.pt")
    result = CliRunner().invoke(main, ["evaluate", str(tmp_path / "nan.pt")])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "weights['input->hidden'] holds NaN" in result.stderr


# Recipes -------------------------------------------------------------------------------------------------

def _recipe():
    return yaml.safe_load((ROOT / "models" / "yinyang.yaml").read_text())


RECIPE_DAMAGE = [
    (lambda d: d["training"].update(epochs=10**6), f"training.epochs = 1000000 must be an integer in 1..{MAX_EPOCHS}"),
    (lambda d: d["training"].update(epochs=60.0), "training.epochs = 60.0"),
    (lambda d: d["training"].update(seed=-1), f"training.seed = -1 must be an integer in 0..{MAX_SEED}"),
    (lambda d: d["training"].update(seed=10**30), "training.seed = an integer of 100 bits"),
    (lambda d: d["training"].update(seed="abc"), "training.seed = 'abc'"),
    (lambda d: d["training"].update(learning_rate=INF), "training.learning_rate = inf"),
    (lambda d: d["training"].update(weight_noise="x"), "training.weight_noise = 'x'"),
    (lambda d: d["training"].update(weight_decay=NAN), "training.weight_decay = nan"),
    (lambda d: d["training"].update(batch_size=0), "training.batch_size = 0"),
    (lambda d: d["training"].update(select_on_validation=1), "training.select_on_validation = 1"),
    (lambda d: d.update(dt_s=INF), "dt_s = inf"),
    (lambda d: d.update(dt_s=NAN), "dt_s = nan"),
    (lambda d: d.update(dt_s="1ms"), "dt_s = '1ms'"),
    (lambda d: d.update(name=[1, 2]), "name = [1, 2]"),
    (lambda d: d["encoding"].update(duration_s=NAN), "encoding.duration_s = nan"),
    (lambda d: d["encoding"].update(duration_s=1e9), "encoding.duration_s = 1000000000.0 is 1e+12 steps"),
    (lambda d: d["encoding"].update(t_early_s="abc"), "encoding.t_early_s = 'abc'"),
    (lambda d: d["layers"][0]["neuron"].update(t_ref_s=INF), "t_ref_s = inf"),
    (lambda d: d["layers"][0]["neuron"].update(v_th=NAN), "layers[0].neuron.v_th = nan is not finite"),
    (lambda d: d["layers"][0].update(neuron=5), "layers[0].neuron = 5"),
    (lambda d: d["layers"][1]["neuron"].update(tau_syn_s=True), "layers[1].neuron.tau_syn_s = True is not a number"),
    (lambda d: d["layers"][1]["neuron"].update(tau_syn_s="5 ms"), "layers[1].neuron.tau_syn_s = '5 ms'"),
    (lambda d: d["layers"][0].update(init={"mean": NAN}), "layers[0].init.mean = nan"),
    (lambda d: d["layers"][0].update(init={"std": -1.0}), "layers[0].init.std = -1.0"),
    (lambda d: d["layers"][0].update(init=[0.3, 1.5]), "layers[0].init"),
    (lambda d: d["layers"][0].update(size=True), "layers[0].size = True"),
    (lambda d: d["layers"][0].update(delays={"max_steps": 30, "learning_rate": INF}),
     "layers[0].delays.learning_rate = inf"),
    (lambda d: d["layers"][1].update(name="hidden"), "share a name"),
]


@pytest.mark.parametrize("damage,fragment", RECIPE_DAMAGE, ids=[f[1].split(" ")[0] + str(i)
                                                               for i, f in enumerate(RECIPE_DAMAGE)])
def test_damaged_recipes_are_one_line_errors(tmp_path, damage, fragment):
    data = _recipe()
    damage(data)
    with pytest.raises(RecipeError) as info:
        recipe_from_dict(data)
    one_line(info.value, fragment)
    path = tmp_path / "damaged.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    one_line(info.value, str(path))


def test_a_recipe_with_a_huge_number_is_refused(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text((ROOT / "models" / "yinyang.yaml").read_text().replace("seed: 0", "seed: " + "9" * 5000))
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    one_line(info.value, str(path))


def test_numbers_yaml_reads_as_text_are_numbers(tmp_path):
    text = (ROOT / "models" / "yinyang.yaml").read_text().replace("dt_s: 1.0e-3", "dt_s: 1e-3")
    text = text.replace("tau_mem_s: 10.0e-3", "tau_mem_s: 10e-3")
    assert "dt_s: 1e-3" in text and "tau_mem_s: 10e-3" in text
    (tmp_path / "r.yaml").write_text(text)
    recipe = load_recipe(tmp_path / "r.yaml")
    assert recipe.dt_s == 1e-3 and recipe.graph.populations[1].parameters.tau_mem_s == 10e-3
    spec = (ROOT / "targets" / "xylo.yaml").read_text()
    spec = spec.replace("tau_warn_relative_error: 0.10", "tau_warn_relative_error: 1e-1")
    (tmp_path / "xylo.yaml").write_text(spec)
    assert get_target(tmp_path / "xylo.yaml").spec["quantisation"]["tau_warn_relative_error"] == 0.1


def test_every_shipped_recipe_loads():
    assert len(recipe_names()) >= 9
    for name in recipe_names():
        assert load_recipe(name).graph.readout.kind == "li"


# Target specs --------------------------------------------------------------------------------------------

SPEC_DAMAGE = [
    ("bss2", ["geometry", "hemispheres"], 0, "geometry.hemispheres = 0 must be a positive integer"),
    ("bss2", ["synapse", "weight_bits"], "six", "synapse.weight_bits = 'six'"),
    ("bss2", ["geometry", "hemisphers"], 2, "geometry.hemisphers is not a known key"),
    ("bss2", ["neuron", "tau_mem_s", "limits"], [2e-3, 1e-7], "tau_mem_s.limits = [0.002, 1e-07] runs backwards"),
    ("bss2", ["neuron", "tau_mem_s", "recommended"], [1e-7, 1.0], "neuron.tau_mem_s.recommended = 1.0 lies outside"),
    ("bss2", ["capmem", "code_max"], 5000, "capmem.code_max = 5000"),
    ("bss2", ["calibration", "tau_mem_s"], 1.0, "calibration.tau_mem_s = 1.0 lies outside the chip's range"),
    ("bss2", ["time", "speedup"], NAN, "time.speedup = nan"),
    ("bss2", ["geometry", "drivers_per_bus"], 16, "geometry.synapse_drivers_per_hemisphere != buses x drivers per bus"),
    ("bss2", ["delays", "strength_bits"], 6, "delays.strength_bits = 6 leaves no address bits"),
    ("bss2", ["name"], "BSS 2", "name = 'BSS 2' is not a lower-case identifier"),
    ("xylo", ["weights", "bits"], 0, "weights.bits = 0"),
    ("xylo", ["quantisation", "threshold_max"], 40000, "quantisation.threshold_max = 40000"),
    ("xylo", ["state", "reset"], "value", "state.reset = 'value': Xylo resets only by subtracting"),
    ("xylo", ["geometry", "output_sources"], "input", "geometry.output_sources = 'input' is unknown"),
    ("xylo", ["spikes_per_step", "hidden"], -1, "spikes_per_step.hidden = -1"),
]


@pytest.mark.parametrize("target,path,value,fragment", SPEC_DAMAGE,
                         ids=[f"{s[0]}-{'.'.join(s[1])}" for s in SPEC_DAMAGE])
def test_damaged_target_specs_are_one_line_errors(tmp_path, target, path, value, fragment):
    data = yaml.safe_load((ROOT / "targets" / f"{target}.yaml").read_text())
    _set_path(data, path, value)
    spec = tmp_path / f"{target}.yaml"
    spec.write_text(yaml.safe_dump(data))
    with pytest.raises(TargetSpecError) as info:
        get_target(spec)
    one_line(info.value, str(spec), fragment)


def test_shipped_target_specs_load():
    assert [get_target(ROOT / "targets" / f"{name}.yaml").name for name in ("bss2", "xylo")] == ["bss2", "xylo"]


# --data files --------------------------------------------------------------------------------------------

def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def _zlib_damaged(path):
    np.savez_compressed(path, x=np.random.rand(50, 4), y=np.zeros(50, int))
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF  # inside the compressed x
    path.write_bytes(bytes(data))
    return path


DATA_DAMAGE = [
    ("empty file", lambda p: (p.write_bytes(b""), p)[1], "is empty (0 bytes)"),
    ("zlib-corrupted", _zlib_damaged, "is not a readable .npz file"),
    ("not a zip", lambda p: (p.write_bytes(zlib.compress(b"x" * 100)), p)[1], "is not a readable .npz file"),
    ("pickled objects", lambda p: _npz(p, x=np.array([{}], dtype=object), y=np.zeros(1, int)), "not a readable"),
    ("no labels", lambda p: _npz(p, x=np.random.rand(3, 4)), "lacks arrays 'x' and 'y'"),
    ("no samples", lambda p: _npz(p, x=np.zeros((0, 4)), y=np.zeros(0, int)), "x has no samples"),
    ("NaN feature", lambda p: _npz(p, x=np.array([[0.1, NAN, 0.2, 0.3]]), y=np.zeros(1, int)), "NaN or infinite"),
    ("feature beyond 1", lambda p: _npz(p, x=np.full((2, 4), 16.0), y=np.zeros(2, int)), "outside [0, 1]"),
    ("text features", lambda p: _npz(p, x=np.array([["a"] * 4]), y=np.zeros(1, int)), "x has shape [1, 4] (<U1)"),
    ("wrong columns", lambda p: _npz(p, x=np.random.rand(2, 5), y=np.zeros(2, int)), "needs [N, 4]"),
    ("float labels", lambda p: _npz(p, x=np.random.rand(2, 4), y=np.zeros(2)), "y must be integer labels"),
    ("short labels", lambda p: _npz(p, x=np.random.rand(2, 4), y=np.zeros(1, int)), "y must be integer labels"),
    ("label 3", lambda p: _npz(p, x=np.random.rand(2, 4), y=np.array([0, 3])), "labels outside 0..2"),
]


@pytest.mark.parametrize("name,make,fragment", DATA_DAMAGE, ids=[d[0] for d in DATA_DAMAGE])
def test_damaged_data_files_are_one_line_errors(tmp_path, name, make, fragment):
    path = make(tmp_path / "data.npz")
    with pytest.raises(DataError) as info:
        load_npz(path, "yinyang")
    one_line(info.value, fragment)


def test_good_data_files_load(tmp_path):
    x, y = load_npz(_npz(tmp_path / "d.npz", x=np.random.rand(7, 4), y=np.arange(7) % 3, notes=np.ones(2)), "yinyang")
    assert x.dtype == np.float32 and y.dtype == np.int64 and len(y) == 7


# The verbs' arguments ------------------------------------------------------------------------------------

@pytest.fixture()
def no_work(monkeypatch):
    """Fail the test if any work starts (data loaded, a chip run)."""
    def refuse(*_, **__):
        raise AssertionError("work started before the arguments were checked")
    monkeypatch.setattr("neurodeploy.training.fit.load_split", refuse)
    monkeypatch.setattr("neurodeploy.api.train_in_the_loop", refuse)
    monkeypatch.setattr("neurodeploy.api.training_probe", refuse)


@pytest.mark.parametrize("kwargs,fragment", [
    ({"epochs": 10**6}, "--epochs 1000000 is outside its range: it must be an integer in 1..10000"),
    ({"epochs": 0}, "--epochs 0"), ({"epochs": NAN}, "--epochs nan"), ({"epochs": True}, "--epochs True"),
    ({"seed": 10**5000}, "--seed an integer of 16610 bits"), ({"seed": -1}, "--seed -1"), ({"seed": 0.5}, "--seed 0.5"),
])
def test_train_arguments_have_ranges(no_work, kwargs, fragment):
    with pytest.raises(NeurodeployError) as info:
        nd.train("yinyang", **kwargs)
    one_line(info.value, fragment)


@pytest.mark.parametrize("kwargs,fragment", [
    ({"clip_quantile": NAN}, "--clip-quantile nan"), ({"clip_quantile": 0}, "--clip-quantile 0"),
    ({"clip_quantile": 1.5}, "must be a finite number in (0, 1]"), ({"clip_quantile": "0.9"}, "--clip-quantile '0.9'"),
    ({"weight_scale": "per-nueron"}, "--weight-scale 'per-nueron'"), ({"weight_copies": 10**6}, "--weight-copies"),
    ({"weight_copies": 2.5}, "--weight-copies 2.5"),
])
def test_map_arguments_have_ranges(no_work, trained_model, kwargs, fragment):
    with pytest.raises(NeurodeployError) as info:
        nd.map(load_model(trained_model), "bss2", **kwargs)
    one_line(info.value, fragment)


@pytest.mark.parametrize("kwargs,fragment", [
    ({"epochs": 10**6}, "--epochs 1000000"), ({"learning_rate": NAN}, "--learning-rate nan"),
    ({"learning_rate": 5.0}, "--learning-rate 5.0"), ({"learning_rate": -1e-3}, "--learning-rate -0.001"),
    ({"train_samples": 2.5}, "--train-samples 2.5"), ({"train_samples": 0}, "--train-samples 0"),
    ({"seed": 10**5000}, "--seed"), ({"weight_copies": 10**6}, "--weight-copies 1000000"),
])
def test_itl_arguments_have_ranges(no_work, trained_model, kwargs, fragment):
    with pytest.raises(NeurodeployError) as info:
        nd.itl(load_model(trained_model), "mock:ideal", **kwargs)
    one_line(info.value, fragment)


def test_check_arguments_have_ranges(trained_model):
    with pytest.raises(NeurodeployError, match="--weight-copies 0.5"):
        nd.check(load_model(trained_model), "bss2", weight_copies=0.5)


def test_evaluate_checks_the_samples_it_is_given(trained_model):
    model = load_model(trained_model)
    with pytest.raises(DataError) as info:
        nd.evaluate(model, (np.full((3, 4), NAN), np.zeros(3, int)))
    one_line(info.value, "NaN")
    assert 0 <= nd.evaluate(model, (np.random.rand(5, 4), np.arange(5) % 3)) <= 1
    assert math.isfinite(nd.evaluate(model))
