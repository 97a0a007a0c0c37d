"""Validation at load time (issue 15): deployments of both targets and calibration files. Each damaged variant
gives one clean error line naming the field; every deployment the project writes (BSS-2 with and without
delays, weight copies, a calibration, in-the-loop training; Xylo) and older versions still load."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from neurodeploy.cli import main
from neurodeploy.deployment import READABLE_VERSIONS, VERSION, load_deployment, save_deployment
from neurodeploy.errors import CalibrationError, FileKindError
from neurodeploy.modelfile import ModelFile, load_model, save_model
from neurodeploy.recipe import load_recipe
from neurodeploy.targets.bss2.analog import ChipCodes
from neurodeploy.targets.bss2.calibration_file import Calibration, load_calibration, save_calibration
from neurodeploy.targets.bss2.spec import load_bss2_spec
from neurodeploy.validation import check_deployment, load_checked_deployment
from neurodeploy.workflows.map import map_model
from test_validation import one_line

ROOT = Path(__file__).resolve().parents[1]
NAN, INF = float("nan"), float("inf")
SPEC = load_bss2_spec()


def read_raw(path: Path) -> tuple[dict, dict]:
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    return json.loads(arrays.pop("meta").tobytes()), arrays


def write_raw(path: Path, meta: dict, arrays: dict) -> Path:
    """An archive as the file holds it: the stored checksum stays whatever ``meta`` says."""
    np.savez_compressed(path, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
    return path


def refused(path: Path, *fragments: str) -> str:
    with pytest.raises(FileKindError) as info:
        load_checked_deployment(path)
    return one_line(info.value, str(path), *fragments)


def synthetic_calibration(chip: str = "mock-chip-0") -> Calibration:
    """A calibration file's contents as `calibrate` writes them (codes in range, a gain line per circuit)."""
    n, quadrants = SPEC.total_circuits, SPEC["capmem"]["quadrants"]
    codes = ChipCodes(**{name: np.full(n, 300, np.int32) for name in ("v_leak", "v_reset", "v_threshold",
                                                                       "i_bias_leak", "i_bias_syn_tau",
                                                                       "i_bias_synin_gm")},
                      refractory_counter=np.full(n, 250, np.int32), threshold_enabled=np.ones(n, bool),
                      synapse_dac_bias=np.full(quadrants, 600, np.int32),
                      refractory_scaler=np.zeros(quadrants, np.int32))
    parameters = ("tau_syn_s", "v_threshold_cadc", "synaptic_gain_cadc_per_lsb", "v_leak_cadc", "tau_mem_s",
                  "v_reset_cadc")
    slope = np.full(n, 0.0072)
    slope[7] = np.nan  # a circuit that failed: anything goes there
    success = np.ones(n, bool)
    success[7] = False
    return Calibration(chip=chip, backend="mock:0", target="bss2",
                       targets={k: float(v) for k, v in SPEC["calibration"].items()}, codes=codes,
                       gain_slope=slope, gain_offset_code=np.zeros(n), residuals={p: np.zeros(n) for p in parameters},
                       success=success, spread={p: {"spread_before": 1.0, "spread_after": 0.1, "ratio": 0.1}
                                                for p in parameters},
                       madc={"gain": 4.2, "offset": 58.9}, seconds=1.0, measurement_rounds=10)


@pytest.fixture(scope="module")
def calibration_file(tmp_path_factory) -> Path:
    return_path = tmp_path_factory.mktemp("cal") / "synthetic.yaml"
    save_calibration(synthetic_calibration(), return_path)
    return return_path


# Every deployment the project writes loads -----------------------------------------------------------------

def _delayed_model() -> ModelFile:
    recipe = load_recipe(ROOT / "models" / "delay_task.yaml")
    generator = torch.Generator().manual_seed(1)
    weights = {p.name: torch.randn(recipe.graph.population(p.post).size, recipe.graph.population(p.pre).size,
                                   generator=generator) for p in recipe.graph.projections}
    delays = {"input->hidden": 32 * torch.rand(weights["input->hidden"].shape, generator=generator)}
    return ModelFile(graph=recipe.graph, weights=weights, dt_s=recipe.dt_s, encoding=recipe.encoding,
                     dataset=recipe.dataset, seed=1, delays=delays, delay_sigma_steps={"input->hidden": 0.23})


def test_every_kind_of_deployment_the_project_writes_loads(trained_model, deployment_file, xylo_file,
                                                           calibration_file, tmp_path):
    import neurodeploy as nd

    written = [deployment_file, xylo_file]
    for name, options in (("copies.npz", {"weight_copies": 4}), ("calibrated.npz", {"calibration": calibration_file}),
                          ("per-projection.npz", {"weight_scale": "per-projection", "clip_quantile": 0.99})):
        map_model(trained_model, "bss2", tmp_path / name, **options)
        written.append(tmp_path / name)
    save_model(_delayed_model(), tmp_path / "delayed.pt")
    for strategy in ("multi-synapse", "spike-strength", "gradient-only"):
        map_model(tmp_path / "delayed.pt", "bss2", tmp_path / f"{strategy}.npz", delays=strategy)
        written.append(tmp_path / f"{strategy}.npz")
    tuned = nd.itl(load_model(trained_model), "mock:ideal", epochs=1, train_samples=100)
    save_model(tuned, tmp_path / "itl.pt")
    map_model(tmp_path / "itl.pt", "bss2", tmp_path / "itl.npz")
    written.append(tmp_path / "itl.npz")
    for path in written:
        deployment = load_checked_deployment(path)
        assert deployment.meta["version"] == VERSION == 3 and len(deployment.meta["checksum"]) == 64, path
    assert load_checked_deployment(tmp_path / "calibrated.npz").meta["chip"] == "mock-chip-0"
    assert load_checked_deployment(tmp_path / "spike-strength.npz").meta["delays"]["strength_bits"] == 3
    assert READABLE_VERSIONS == (1, 2, 3)


def _imported(tmp_path: Path, hidden, recurrent: bool) -> Path:
    """A NIR graph 5 -> 6 -> 3 imported as a Yin-Yang model (nir-euler), as tests/test_nir_mapping.py builds them."""
    import nir
    from neurodeploy.interchange import import_nir

    n = 6
    nodes = {"in": nir.Input(input_type={"input": np.array([5])}), "w1": nir.Linear(weight=np.ones((n, 5))),
             "h": hidden, "w2": nir.Linear(weight=np.ones((3, n))),
             "ro": nir.CubaLI(tau_syn=np.full(3, 5e-3), tau_mem=np.full(3, 1e-2), r=np.ones(3), v_leak=np.zeros(3)),
             "out": nir.Output(output_type={"output": np.array([3])}), "rec": nir.Linear(weight=np.eye(n))}
    edges = [("in", "w1"), ("w1", "h"), ("h", "w2"), ("w2", "ro"), ("ro", "out")]
    if recurrent:
        edges += [("h", "rec"), ("rec", "h")]
    else:
        del nodes["rec"]
    encoding = load_recipe("yinyang").encoding
    save_model(import_nir(nir.NIRGraph(nodes=nodes, edges=edges), dt_s=1e-3, dataset="yinyang", encoding=encoding),
               tmp_path / "imported.pt")
    return tmp_path / "imported.pt"


def test_deployments_of_imported_models_load(tmp_path):
    import nir

    cuba = nir.CubaLIF(tau_syn=np.full(6, 5e-3), tau_mem=np.full(6, 1e-2), r=np.ones(6), v_leak=np.zeros(6),
                       v_threshold=np.ones(6))
    leaky = nir.LIF(tau=np.full(6, 1e-2), r=np.ones(6), v_leak=np.zeros(6), v_threshold=np.ones(6))
    for hidden, recurrent, target in ((cuba, True, "xylo"), (leaky, False, "bss2"), (cuba, False, "bss2")):
        model = _imported(tmp_path, hidden, recurrent)
        out = tmp_path / f"{target}.npz"
        map_model(model, target, out)
        deployment = load_checked_deployment(out)
        assert deployment.meta["graph"].get("discretisation") == "nir-euler"


def test_saving_a_loaded_deployment_keeps_its_checksum(deployment_file, tmp_path):
    deployment = load_checked_deployment(deployment_file)
    save_deployment(deployment, tmp_path / "again.npz")
    assert read_raw(tmp_path / "again.npz")[0]["checksum"] == deployment.meta["checksum"]


@pytest.mark.parametrize("version", [1, 2])
def test_deployments_of_older_versions_still_load(deployment_file, tmp_path, version):
    meta, arrays = read_raw(deployment_file)
    meta.pop("checksum")
    meta["version"] = version
    if version == 1:  # the spine's deployment: no chip, no codes or scales yet
        for key in ("chip", "calibration", "weight_copies", "clip_quantile", "weight_scale", "trained_on"):
            meta.pop(key)
        arrays = {k: v for k, v in arrays.items() if not k.startswith(("code:", "weight_scale:"))}
    path = write_raw(tmp_path / "old.npz", meta, arrays)
    assert load_checked_deployment(path).meta["version"] == version


def test_a_deployment_of_an_unknown_target_is_refused(deployment_file, tmp_path):
    meta, arrays = read_raw(deployment_file)
    meta["target"] = "loihi9"
    refused(write_raw(tmp_path / "x.npz", meta, arrays), "target 'loihi9', which this neurodeploy does not know")


# BSS-2 ---------------------------------------------------------------------------------------------------

def _set(arrays: dict, name: str, index: tuple, value) -> None:
    arrays[name] = arrays[name].copy()
    arrays[name][index] = value


def _first_used(arrays: dict) -> tuple:
    return tuple(int(i) for i in np.argwhere(arrays["synapse_weight"] > 0)[0])


def _stray_weight(arrays: dict) -> None:
    unplaced = int(np.flatnonzero(~arrays["circuit_enabled"])[-1])
    h, r, _ = _first_used(arrays)
    _set(arrays, "synapse_weight", (unplaced // 256, r, unplaced % 256), 5)


def _route_to_disabled_row(arrays: dict) -> None:
    disabled = int(np.flatnonzero((arrays["row_mode"][0, 0::2] == 0) & (arrays["row_mode"][0, 1::2] == 0))[0])
    _set(arrays, "input_routes", (0, 2), disabled)
    _set(arrays, "input_routes", (0, 1), 0)


def _readout_route(meta: dict, arrays: dict) -> None:
    _set(arrays, "neuron_routes", (0, 0), meta["readout_neurons"][0])


def _duplicate_circuit(arrays: dict) -> None:
    _set(arrays, "neuron_circuits", (1, 0), int(arrays["neuron_circuits"][0, 0]))


def _same_label(arrays: dict) -> None:
    first = arrays["input_routes"][0]
    _set(arrays, "input_routes", (1, slice(1, 4)), first[1:])


BSS2_DAMAGE = [
    ("missing meta key", lambda m, a: m.pop("dt_s"), "meta.dt_s is missing"),
    ("meta wrong type", lambda m, a: m.update(dt_s="1ms"), "meta.dt_s = '1ms'"),
    ("meta NaN", lambda m, a: m.update(dt_s=NAN), "meta.dt_s = nan"),
    ("meta negative", lambda m, a: m.update(speedup=-1000.0), "meta.speedup = -1000.0"),
    ("meta unknown key", lambda m, a: m.update(bogus=1), "meta.bogus is not a known key"),
    ("meta layers", lambda m, a: m.update(layers=["hidden", "out"]), "meta.layers"),
    ("meta layer kinds", lambda m, a: m.update(layer_kinds=["lif", "lif"]), "meta.layer_kinds"),
    ("meta readout neurons", lambda m, a: m.update(readout_neurons=[0, 3]), "meta.readout_neurons = [0, 3]"),
    ("meta readout layer", lambda m, a: m.update(readout_layer="hidden"), "meta.readout_layer = 'hidden'"),
    ("meta unknown loss", lambda m, a: m["training"].update(loss="mse"), "meta.training.loss = 'mse' is unknown"),
    ("meta graph", lambda m, a: m["graph"]["populations"][1].update(size=-1), "meta.graph.populations[1].size = -1"),
    ("meta dataset", lambda m, a: m.update(dataset="mnist"), "meta.dataset = 'mnist' is unknown"),
    ("meta encoding", lambda m, a: m["encoding"].update(duration_s=-1.0), "meta.encoding.duration_s = -1.0"),
    ("meta clip quantile", lambda m, a: m.update(clip_quantile=2.0), "meta.clip_quantile = 2.0"),
    ("meta weight copies", lambda m, a: m.update(weight_copies=0), "meta.weight_copies = 0"),
    ("meta calibration", lambda m, a: m.update(calibration={"chip": 3, "checksum": "c", "created": ""}),
     "meta.calibration.chip = 3"),
    ("meta calibration of another chip",
     lambda m, a: m.update(calibration={"chip": "c", "checksum": "c", "created": ""}),
     "meta.chip = None is not the chip of its calibration 'c'"),
    ("meta report", lambda m, a: m.update(report=[]), "meta.report"),
    ("meta delays without delays", lambda m, a: m.update(delays={}), "meta.delays.strategy is missing"),
    ("float weight NaN", lambda m, a: _set(a, "float_weight:input->hidden", (0, 0), NAN),
     "array 'float_weight:input->hidden' holds NaN or infinite values"),
    ("float weight shape", lambda m, a: a.update({"float_weight:hidden->output": np.zeros((2, 24), np.float32)}),
     "array 'float_weight:hidden->output' has shape [2, 24]"),
    ("float weight float16", lambda m, a: a.update({"float_weight:hidden->output": np.zeros((3, 24), np.float16)}),
     "array 'float_weight:hidden->output' has dtype float16, it must be an array of float32"),
    ("float weight dropped", lambda m, a: a.pop("float_weight:input->hidden"),
     "array 'float_weight:input->hidden' is missing"),
    ("float weight of nothing", lambda m, a: a.update({"float_weight:a->b": np.zeros((1, 1), np.float32)}),
     "array 'float_weight:a->b' names no projection"),
    ("dropped array", lambda m, a: a.pop("synapse_label"), "array 'synapse_label' is missing"),
    ("dropped code", lambda m, a: a.pop("code:v_leak"), "array 'code:v_leak' is missing"),
    ("extra array", lambda m, a: a.update(bogus=np.zeros(3)), "array 'bogus' is not part of a BSS-2 deployment"),
    ("weight beyond 6 bits", lambda m, a: _set(a, "synapse_weight", _first_used(a), 64),
     "array 'synapse_weight' holds 64"),
    ("weights as floats", lambda m, a: a.update(synapse_weight=a["synapse_weight"].astype(float)),
     "array 'synapse_weight' has dtype float64"),
    ("synapse array shape", lambda m, a: a.update(synapse_label=a["synapse_label"][:, :128]),
     "array 'synapse_label' has shape [2, 128, 256]"),
    ("label beyond 6 bits", lambda m, a: _set(a, "synapse_label", (0, 0, 0), 64), "array 'synapse_label' holds 64"),
    ("row mode 3", lambda m, a: _set(a, "row_mode", (1, 5), 3), "array 'row_mode' holds 3"),
    ("weight on an unplaced circuit", lambda m, a: _stray_weight(a), "whose circuit is not placed"),
    ("weight on a disabled row", lambda m, a: _set(a, "row_mode", (0, _first_used(a)[1]), 0), "on disabled row"),
    ("circuit beyond the chip", lambda m, a: _set(a, "neuron_circuits", (0, 0), 512),
     "array 'neuron_circuits' holds 512"),
    ("circuit placed twice", lambda m, a: _duplicate_circuit(a), "places circuit"),
    ("placement mask", lambda m, a: _set(a, "circuit_enabled", (511,), True), "array 'circuit_enabled' differs"),
    ("neuron layer", lambda m, a: _set(a, "neuron_layer", (0,), 1), "array 'neuron_layer'"),
    ("route beyond the drivers", lambda m, a: _set(a, "input_routes", (0, 2), 128),
     "array 'input_routes' row 0 has driver 128, outside 0..127"),
    ("route from no input", lambda m, a: _set(a, "input_routes", (0, 0), 5), "has source 5, outside 0..4"),
    ("route to disabled rows", lambda m, a: _route_to_disabled_row(a), "whose rows are disabled"),
    ("route from the readout", _readout_route, "which does not spike"),
    ("two sources one label", lambda m, a: _same_label(a), "could not tell them apart"),
    ("a route dropped", lambda m, a: a.update(neuron_routes=a["neuron_routes"][1:]), "which no route carries there"),
    ("routes shape", lambda m, a: a.update(input_routes=a["input_routes"][:, :3]), "array 'input_routes' has shape"),
    ("circuit setting NaN", lambda m, a: _set(a, "circuit_tau_mem_s", (0,), NAN),
     "array 'circuit_tau_mem_s' holds NaN"),
    ("time constant zero", lambda m, a: _set(a, "circuit_tau_syn_s", (int(a["neuron_circuits"][0, 0]),), 0.0),
     "array 'circuit_tau_syn_s' holds 0.0 at placed circuit"),
    ("time constant beyond the chip", lambda m, a: _set(a, "circuit_tau_syn_s", (int(a["neuron_circuits"][0, 0]),),
                                                         1e300), "outside the chip's range"),
    ("threshold beyond the CADC", lambda m, a: _set(a, "circuit_v_th_cadc", (int(a["neuron_circuits"][0, 0]),), 300.0),
     "array 'circuit_v_th_cadc' holds 300.0 at placed circuit"),
    ("settings as float16", lambda m, a: a.update(circuit_tau_mem_s=a["circuit_tau_mem_s"].astype(np.float16)),
     "array 'circuit_tau_mem_s' has dtype float16"),
    ("a setting on an unplaced circuit", lambda m, a: _set(a, "circuit_v_reset_cadc", (511,), 1e30),
     "holds 1e+30 at circuit 511, which is not placed"),
    ("negative gain", lambda m, a: _set(a, "circuit_synaptic_gain_cadc_per_lsb", (3,), -1.0),
     "circuit_synaptic_gain_cadc_per_lsb"),
    ("threshold -inf", lambda m, a: _set(a, "circuit_v_th_cadc", (0,), -INF), "holds -inf"),
    ("code beyond 10 bits", lambda m, a: _set(a, "code:v_leak", (0,), 1023), "array 'code:v_leak' holds 1023"),
    ("refractory scaler", lambda m, a: _set(a, "code:refractory_scaler", (0,), 16), "code:refractory_scaler"),
    ("threshold switch", lambda m, a: _set(a, "code:threshold_enabled", (0,), False), "code:threshold_enabled"),
    ("quantised weight beyond 63", lambda m, a: _set(a, "quantised_weight:input->hidden", (0, 0), 64),
     "array 'quantised_weight:input->hidden' holds 64"),
    ("weight scale negative", lambda m, a: _set(a, "weight_scale:hidden", (0,), -1.0), "array 'weight_scale:hidden'"),
    ("checksum dropped", lambda m, a: m.pop("checksum"), "meta.checksum is missing"),
    ("checksum not a digest", lambda m, a: m.update(checksum="x" * 64), "meta.checksum is not a SHA-256 digest"),
    ("edited after writing", lambda m, a: _set(a, "synapse_weight", _first_used(a), 1), "edited or damaged after"),
    ("report edited after writing", lambda m, a: m["report"].update(rows_used=1), "edited or damaged after"),
]


@pytest.mark.parametrize("name,damage,fragment", BSS2_DAMAGE, ids=[d[0] for d in BSS2_DAMAGE])
def test_damaged_bss2_deployments_are_one_line_errors(deployment_file, tmp_path, name, damage, fragment):
    meta, arrays = read_raw(deployment_file)
    damage(meta, arrays)
    refused(write_raw(tmp_path / "damaged.npz", meta, arrays), fragment)


def test_delay_deployments_are_checked(tmp_path):
    save_model(_delayed_model(), tmp_path / "delayed.pt")
    map_model(tmp_path / "delayed.pt", "bss2", tmp_path / "d.npz", delays="spike-strength")
    for damage, fragment in (
            (lambda m, a: _set(a, "delay_copies", (0, 1), 40),
             "array 'delay_copies' row 0 has delay 40, outside 0..32"),
            (lambda m, a: _set(a, "delay_copies", (0, 2), 8), "has strength 8, outside 0..7"),
            (lambda m, a: a.update(delay_copies=a["delay_copies"][1:]), "array 'delay_copies' has shape"),
            (lambda m, a: a.pop("float_delay:input->hidden"), "array 'float_delay:input->hidden' is missing"),
            (lambda m, a: _set(a, "float_delay:input->hidden", (0, 0), -1.0), "float_delay:input->hidden' holds -1.0"),
            (lambda m, a: m["delays"].update(strategy="teleport"), "meta.delays.strategy = 'teleport' is unknown"),
            (lambda m, a: m["delays"].update(max_delay_steps={"input->hidden": 99}), "meta.delays.max_delay_steps"),
            (lambda m, a: m["delays"].update(address_bits=6), "address and 3 strength bits"),
            (lambda m, a: m.pop("input_channels"), "meta.input_channels and meta.delays come together"),
            (lambda m, a: (m.pop("input_channels"), m.pop("delays")), "meta.delays is missing")):
        meta, arrays = read_raw(tmp_path / "d.npz")
        damage(meta, arrays)
        refused(write_raw(tmp_path / "damaged.npz", meta, arrays), fragment)


def test_the_cli_refuses_a_damaged_deployment_in_one_line(deployment_file, tmp_path):
    meta, arrays = read_raw(deployment_file)
    _set(arrays, "float_weight:input->hidden", (1, 1), INF)
    path = write_raw(tmp_path / "inf.npz", meta, arrays)
    result = CliRunner().invoke(main, ["run", str(path), "--backend", "software"])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "float_weight:input->hidden' holds NaN or infinite values" in result.stderr


def test_an_oversized_or_empty_archive_is_refused(tmp_path, monkeypatch):
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    with pytest.raises(FileKindError, match="is empty"):
        load_deployment(empty)
    monkeypatch.setattr("neurodeploy.deployment.MAX_BYTES", 1000)
    write_raw(tmp_path / "big.npz", {"format": "neurodeploy.deployment", "version": 3}, {"x": np.zeros(1000)})
    with pytest.raises(FileKindError) as info:
        load_deployment(tmp_path / "big.npz")
    one_line(info.value, "unpacks to")


# Xylo ----------------------------------------------------------------------------------------------------

XYLO_DAMAGE = [
    ("input weights shape", lambda m, a: a.update(weights_in=a["weights_in"][:4]), "array 'weights_in' has shape [4"),
    ("weights as int16", lambda m, a: (a.update(weights_in=a["weights_in"].astype(np.int16)),
                                       _set(a, "weights_in", (0, 0, 0), 200)), "array 'weights_in' holds 200"),
    ("negative threshold", lambda m, a: _set(a, "threshold", (0,), -5), "array 'threshold' holds -5"),
    ("decay shift 16", lambda m, a: _set(a, "dash_mem", (0,), 16), "array 'dash_mem' holds 16"),
    ("bias beyond 16 bits", lambda m, a: _set(a, "bias_out", (0,), 40000), "array 'bias_out' holds 40000"),
    ("bank 2", lambda m, a: _set(a, "neuron_bank", (0,), 2), "array 'neuron_bank' holds 2"),
    ("configuration wider than the placement", lambda m, a: a.update(
        dash_mem_out=np.zeros(4, np.int64), dash_syn_out=np.zeros(4, np.int64), threshold_out=np.zeros(4, np.int64),
        bias_out=np.zeros(4, np.int64), weights_out=np.zeros((24, 4), np.int8)),
     "places 3 neurons on the 4 output neurons"),
    ("two neurons on one", lambda m, a: _set(a, "neuron_index", (1,), int(a["neuron_index"][0])),
     "places two neurons on one hidden neuron"),
    ("index beyond the bank", lambda m, a: _set(a, "neuron_index", (26,), 5), "places a neuron at output neuron 5"),
    ("layer split over banks", lambda m, a: _set(a, "neuron_bank", (0,), 1),
     "array 'neuron_bank' splits layer 'hidden' over the hidden and output neurons"),
    ("zero state scale", lambda m, a: _set(a, "state_scale", (0,), 0.0), "array 'state_scale' holds 0.0"),
    ("dropped bias", lambda m, a: a.pop("bias"), "array 'bias' is missing"),
    ("BSS-2 array", lambda m, a: a.update({"code:v_leak": np.zeros(3, np.int32)}), "is not part of a Xylo deployment"),
    ("quantised weight beyond 127", lambda m, a: _set(a, "quantised_weight:input->hidden", (0, 0), 200),
     "holds 200"),
    ("weight shift 16", lambda m, a: m["weight_shift"].update({"in": 16}), "meta.weight_shift.in = 16"),
    ("a chip", lambda m, a: m.update(chip="mock-chip-0"), "meta.chip = 'mock-chip-0'"),
    ("unknown meta key", lambda m, a: m.update(speedup=1000.0), "meta.speedup is not a known key"),
    ("edited after writing", lambda m, a: _set(a, "threshold", (0,), int(a["threshold"][0]) + 1), "edited or damaged"),
]


@pytest.mark.parametrize("name,damage,fragment", XYLO_DAMAGE, ids=[d[0] for d in XYLO_DAMAGE])
def test_damaged_xylo_deployments_are_one_line_errors(xylo_file, tmp_path, name, damage, fragment):
    meta, arrays = read_raw(xylo_file)
    damage(meta, arrays)
    refused(write_raw(tmp_path / "damaged.npz", meta, arrays), fragment)


def test_the_api_loads_deployments_checked(xylo_file, tmp_path):
    from neurodeploy import api

    assert api.load_deployment(xylo_file).target == "xylo"
    meta, arrays = read_raw(xylo_file)
    _set(arrays, "dash_syn", (0, 0), 99)
    with pytest.raises(FileKindError, match="array 'dash_syn' holds 99"):
        api.load_deployment(write_raw(tmp_path / "x.npz", meta, arrays))


def test_an_in_memory_deployment_can_be_checked(xylo_file):
    deployment = load_deployment(xylo_file)
    check_deployment(deployment)
    deployment.arrays["dash_syn"] = deployment["dash_syn"][:, :1]
    with pytest.raises(FileKindError, match="array 'dash_syn' has shape"):
        check_deployment(deployment)


# Calibration files -----------------------------------------------------------------------------------------

CALIBRATION_DAMAGE = [
    ("code beyond 10 bits", lambda d: d["codes"]["v_leak"].__setitem__(0, 2000), "codes.v_leak holds 2000"),
    ("codes too short", lambda d: d["codes"]["v_leak"].pop(), "codes.v_leak has shape [511]"),
    ("codes as text", lambda d: d["codes"]["i_bias_leak"].__setitem__(3, "x"), "codes.i_bias_leak is not a list"),
    ("a switch among codes", lambda d: d["codes"]["v_threshold"].__setitem__(383, True),
     "codes.v_threshold mixes true/false with numbers"),
    ("switches as integers", lambda d: d["codes"].update(threshold_enabled=[1] * 512),
     "codes.threshold_enabled has dtype int64"),
    ("success as integers", lambda d: d.update(success=[1] * 512), "success has dtype int64"),
    ("negative slope on a calibrated circuit", lambda d: d["gain_line"]["slope"].__setitem__(0, -0.1),
     "gain_line.slope (calibrated circuits) holds -0.1"),
    ("NaN residual on a calibrated circuit", lambda d: d["residuals"]["tau_mem_s"].__setitem__(0, NAN),
     "residuals.tau_mem_s (calibrated circuits) holds NaN"),
    ("target outside the chip", lambda d: d["targets"].update(tau_mem_s=1.0), "targets.tau_mem_s = 1.0 lies outside"),
    ("target missing", lambda d: d["targets"].pop("t_ref_s"), "targets.t_ref_s is missing"),
    ("MADC gain", lambda d: d["madc"].update(gain=-1.0), "madc.gain = -1.0"),
    ("chip missing", lambda d: d.pop("chip"), "chip is missing"),
    ("unknown key", lambda d: d.update(bogus=1), "bogus is not a known key"),
    ("negative rounds", lambda d: d.update(measurement_rounds=-3), "measurement_rounds = -3"),
    ("checksum missing", lambda d: d.pop("checksum"), "checksum = None"),
    ("edited after writing", lambda d: d["codes"]["v_leak"].__setitem__(0, 301), "edited or damaged after writing"),
]


@pytest.mark.parametrize("name,damage,fragment", CALIBRATION_DAMAGE, ids=[d[0] for d in CALIBRATION_DAMAGE])
def test_damaged_calibrations_are_one_line_errors(calibration_file, tmp_path, name, damage, fragment):
    data = yaml.safe_load(calibration_file.read_text())
    damage(data)
    path = tmp_path / "damaged.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(CalibrationError) as info:
        load_calibration(path)
    one_line(info.value, str(path), fragment)


def test_a_synthetic_calibration_loads(calibration_file):
    cal = load_calibration(calibration_file)
    assert cal.chip == "mock-chip-0" and int(cal.success.sum()) == SPEC.total_circuits - 1


@pytest.mark.slow
def test_a_real_calibration_and_its_deployments_load(trained_model, tmp_path):
    from neurodeploy.workflows.calibrate import calibrate_chip
    from neurodeploy.workflows.run import run

    path = tmp_path / "mock-1.yaml"
    calibrate_chip("mock:1", output=path, progress=False)
    assert load_calibration(path).chip == "mock-chip-1"
    for copies in (None, 25):
        out = tmp_path / f"c{copies}.npz"
        map_model(trained_model, "bss2", out, calibration=path, weight_copies=copies)
        assert load_checked_deployment(out).meta["chip"] == "mock-chip-1"
        assert run(out, "mock:1", progress=False)["accuracy"] > 0.3
