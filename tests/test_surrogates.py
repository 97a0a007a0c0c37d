"""The surrogate-gradient registry (issue 16): each kind's derivative in the twin, the recipe key, the model file,
and that old recipes and model files mean what they meant. The fused kernel against the twin for every kind is in
tests/test_fused_kernel.py (``test_every_surrogate_matches_twin``)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
import yaml

from neurodeploy.core.lif import LIFParameters, lif_sequence
from neurodeploy.core.surrogate import KINDS, Surrogate, spike, surrogate_of
from neurodeploy.errors import RecipeError
from neurodeploy.itl.forward import injected_forward
from neurodeploy.modelfile import ModelFile, load_model, save_model
from neurodeploy.models.network import SpikingNetwork
from neurodeploy.recipe import recipe_from_dict
from neurodeploy.training.fit import fit

ROOT = Path(__file__).resolve().parents[1]


# Closed-form antiderivatives in each paper's own parameters, written independently of surrogate.py: the
# surrogate's backward must be their derivative. (superspike: steepness β; arctan: α; triangle: height h,
# width w; slayer: ρ = scale_rho, τ_ρ = tau_rho, ϑ = theta.)
def _primitive(kind: str, p: dict, u: torch.Tensor) -> torch.Tensor:
    if kind == "superspike":
        return u / (p["steepness"] * u.abs() + 1)
    if kind == "arctan":
        return torch.atan(math.pi * p["alpha"] * u / 2) / math.pi
    if kind == "triangle":
        h, w = p["height"], p["width"]
        return h * torch.where(u.abs() < w, u - u * u.abs() / (2 * w), torch.sign(u) * w / 2)
    if kind == "superspike_truncated":  # SuperSpike's primitive inside the band, constant beyond
        b, band = p["steepness"], p["band"]
        return torch.where(u.abs() < band, u / (b * u.abs() + 1), torch.sign(u) * band / (b * band + 1))
    width = p["tau_rho"] * p["theta"]
    return p["scale_rho"] * torch.sign(u) * (1 - torch.exp(-u.abs() / width))


# Each kind at its defaults and at other parameters (SLAYER's own τ_ρ = ρ = 1, Bellec et al.'s triangle).
CASES = [(kind, {}) for kind in KINDS] + [
    ("superspike", {"steepness": 3.0}), ("arctan", {"alpha": 7.0}), ("triangle", {"height": 0.3, "width": 1.0}),
    ("slayer", {"scale_rho": 1.0, "tau_rho": 1.0, "theta": 1.0}), ("slayer", {"scale_rho": 0.5, "tau_rho": 0.3,
                                                                             "theta": 2.5}),
    ("superspike_truncated", {"steepness": 3.0, "band": 1.5}),
]
IDS = [f"{kind}-{'-'.join(f'{k}{v:g}' for k, v in p.items()) or 'defaults'}" for kind, p in CASES]


def _points(surrogate: Surrogate, n: int = 400) -> torch.Tensor:
    """u in [-3, 3], double, away from the points where a primitive's second derivative jumps (0, ±width)."""
    u = 6 * torch.rand(n, generator=torch.Generator().manual_seed(n), dtype=torch.float64) - 3
    kinks = [0.0] + ([surrogate.band, -surrogate.band] if surrogate.sparse else [])  # triangle, truncated
    for kink in kinks:
        u = u[(u - kink).abs() > 1e-3]
    return u


@pytest.mark.parametrize("kind,params", CASES, ids=IDS)
def test_surrogate_is_the_derivative_of_its_primitive(kind, params):
    """gradcheck (double): forward the smooth primitive, backward the spike's surrogate; finite differences of
    the primitive must equal the surrogate the twin (and, through test_fused_kernel, the kernel) uses."""
    surrogate = Surrogate.of(kind, **params)
    p = dict(surrogate.params)

    def smooth_forward_surrogate_backward(u):
        z = spike(u, surrogate=surrogate)  # Heaviside forward, surrogate backward
        return z + (_primitive(kind, p, u) - z).detach()

    u = _points(surrogate).requires_grad_()
    assert torch.autograd.gradcheck(smooth_forward_surrogate_backward, (u,), eps=1e-6, atol=1e-8, rtol=1e-6)
    assert torch.equal(spike(u, surrogate=surrogate), (u > 0).double())  # the forward stays the step


@pytest.mark.parametrize("kind", list(KINDS))
def test_defaults_match_superspikes_peak_and_area(kind):
    """The stated defaults: peak 1 everywhere; area 2/β = 0.2 for triangle and slayer (arctan: area 1 for any α;
    superspike_truncated: SuperSpike's area inside the band, 2/β · βB/(βB + 1) = 0.2 · 5/6)."""
    surrogate = Surrogate.of(kind)
    u = torch.linspace(-200, 200, 4_000_001, dtype=torch.float64)
    d = surrogate.derivative(u)
    assert d.max().item() == pytest.approx(1.0) and surrogate.derivative(torch.zeros(1)).item() == 1.0
    area = torch.trapezoid(d, u).item()
    expected = {"superspike": 0.2, "arctan": 1.0, "triangle": 0.2, "slayer": 0.2,
                "superspike_truncated": 0.2 * 5 / 6}[kind]
    assert area == pytest.approx(expected, rel=5e-3)
    assert (d >= 0).all() and torch.equal(d, surrogate.derivative(-u))  # non-negative and symmetric


def test_superspike_is_the_old_surrogate_bit_for_bit():
    """The default kind computes exactly what the pre-registry spike() computed: grad / (β|u| + 1)^2."""
    u = torch.randn(1000, generator=torch.Generator().manual_seed(1))
    g = torch.randn(1000, generator=torch.Generator().manual_seed(2))
    for steepness in (10.0, 7.0, 1e12):
        ui = u.clone().requires_grad_()
        (grad,) = torch.autograd.grad(spike(ui, steepness), ui, g)
        assert torch.equal(grad, g / (steepness * u.abs() + 1.0) ** 2)
    assert Surrogate() == Surrogate.of() == Surrogate.superspike(10.0)


def test_codes_match_the_kernel_enum():
    """surrogate.py's codes are csrc/lif_core.h's SurrogateKind values (the kernel switches on them)."""
    header = (ROOT / "csrc" / "lif_core.h").read_text()
    enum = re.search(r"enum class SurrogateKind : int32_t \{([^}]*)\}", header).group(1)
    codes = {name.lower(): int(code) for name, code in re.findall(r"k(\w+) = (\d+)", enum)}
    assert codes == {name.replace("_", ""): kind.code for name, kind in KINDS.items()}  # kSuperSpikeTruncated
    assert f"kSurrogateKinds = {len(KINDS)};" in header


def test_surrogate_api_refuses_what_it_cannot_compute():
    for kind, params, fragment in [("sigmoid", {}, "unknown surrogate kind"), ("arctan", {"steepness": 3.0}, "no "
                                   "parameter 'steepness'"), ("triangle", {"width": 0.0}, "width = 0.0"),
                                   ("slayer", {"theta": math.inf}, "theta = inf"),
                                   ("slayer", {"tau_rho": 1e-200, "theta": 1e-200}, "over- or underflows")]:
        with pytest.raises(ValueError, match=fragment):
            Surrogate.of(kind, **params)


# Recipes ---------------------------------------------------------------------------------------------------

def _recipe(name: str = "yinyang", **training) -> dict:
    data = yaml.safe_load((ROOT / "models" / f"{name}.yaml").read_text())
    data["training"].pop("surrogate_steepness")
    data["training"].update(training)
    return data


def test_recipe_surrogate_key_fills_defaults():
    assert recipe_from_dict(_recipe()).training["surrogate"] == {"kind": "superspike", "steepness": 10.0}
    assert recipe_from_dict(_recipe(surrogate_steepness=7)).training["surrogate"] == {
        "kind": "superspike", "steepness": 7.0}
    training = recipe_from_dict(_recipe(surrogate={"kind": "triangle", "width": 0.5})).training
    assert training["surrogate"] == {"kind": "triangle", "height": 1.0, "width": 0.5}
    assert "surrogate_steepness" not in training  # the older key means SuperSpike only
    training = recipe_from_dict(_recipe(surrogate={"kind": "superspike", "steepness": 4})).training
    assert training["surrogate"] == {"kind": "superspike", "steepness": 4.0} and training["surrogate_steepness"] == 4.0


def test_slayer_theta_is_the_layers_threshold_above_rest():
    data = _recipe(surrogate={"kind": "slayer"})
    data["layers"][0]["neuron"].update(v_th=2.5, v_leak=0.5)
    assert recipe_from_dict(data).training["surrogate"]["theta"] == 2.0
    data["training"]["surrogate"]["theta"] = 1.5  # given: used as given
    assert recipe_from_dict(data).training["surrogate"]["theta"] == 1.5


BAD_SURROGATES = [
    ({"kind": "sigmoid"}, "training.surrogate.kind = 'sigmoid' is unknown"),
    ({"steepness": 5}, "training.surrogate.kind is missing"),
    ("arctan", "training.surrogate = 'arctan' must be a mapping"),
    ({"kind": "arctan", "steepness": 5}, "training.surrogate.steepness is not a known key"),
    ({"kind": "triangle", "width": -0.2}, "training.surrogate.width = -0.2 must be a finite number in [1e-06, 1e+06]"),
    ({"kind": "triangle", "width": 0}, "training.surrogate.width = 0"),
    ({"kind": "slayer", "tau_rho": float("nan")}, "training.surrogate.tau_rho = nan"),
    ({"kind": "slayer", "theta": True}, "training.surrogate.theta = True"),
    ({"kind": "arctan", "alpha": "2"}, "training.surrogate.alpha = '2'"),
    ({"kind": "superspike", "steepness": 1e9}, "training.surrogate.steepness = 1000000000.0"),
    ({"kind": 3}, "training.surrogate.kind = 3 is unknown"),
]


@pytest.mark.parametrize("surrogate,fragment", BAD_SURROGATES, ids=[f[1].split(" ")[0] + str(i)
                                                                   for i, f in enumerate(BAD_SURROGATES)])
def test_bad_surrogates_are_one_line_recipe_errors(tmp_path, surrogate, fragment):
    with pytest.raises(RecipeError) as info:
        recipe_from_dict(_recipe(surrogate=surrogate))
    line = info.value.one_line()
    assert fragment in line and "\n" not in line and "(fix: " in line, line
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_recipe(surrogate=surrogate)))
    from neurodeploy.recipe import load_recipe
    with pytest.raises(RecipeError, match=re.escape(str(path))):
        load_recipe(path)


def test_both_surrogate_keys_are_refused():
    with pytest.raises(RecipeError) as info:
        recipe_from_dict(_recipe(surrogate={"kind": "arctan"}, surrogate_steepness=10.0))
    assert "training.surrogate and training.surrogate_steepness are both given" in info.value.one_line()


def test_slayer_without_a_single_threshold_needs_theta():
    """Two spiking layers with different v_th - v_leak: SLAYER's ϑ must be given."""
    data = _recipe("yinyang", surrogate={"kind": "slayer"})
    second = {**data["layers"][0], "name": "hidden2", "size": 10}
    second["neuron"] = {**second["neuron"], "v_th": 2.0}
    data["layers"].insert(1, second)
    with pytest.raises(RecipeError) as info:
        recipe_from_dict(data)
    assert "training.surrogate.theta is missing" in info.value.one_line() and "1, 2" in info.value.one_line()
    data["training"]["surrogate"]["theta"] = 1.0
    assert recipe_from_dict(data).training["surrogate"]["theta"] == 1.0


# Training, model files, itl, deployments ------------------------------------------------------------------

def _digits(epochs: int = 1, **training) -> dict:
    data = _recipe("digits", **training)
    data["training"]["epochs"] = epochs
    return data


def test_old_and_new_spellings_train_identical_weights():
    """surrogate_steepness: 10 (as in every shipped recipe), nothing, and {kind: superspike, steepness: 10} train
    bit-identical weights; another kind trains other weights (the recipe's surrogate is the one used)."""
    old = yaml.safe_load((ROOT / "models" / "digits.yaml").read_text())
    old["training"]["epochs"] = 1
    runs = [fit(recipe_from_dict(data), progress=False) for data in (
        old, _digits(), _digits(surrogate={"kind": "superspike", "steepness": 10.0}),
        _digits(surrogate={"kind": "arctan"}))]
    for model in runs[1:3]:
        assert all(torch.equal(model.weights[k], runs[0].weights[k]) for k in runs[0].weights)
    assert not torch.equal(runs[3].weights["hidden->output"], runs[0].weights["hidden->output"])
    assert runs[3].training["surrogate"] == {"kind": "arctan", "alpha": 2.0}
    assert surrogate_of(runs[3].training) == Surrogate.of("arctan")


def test_model_files_record_the_surrogate_and_old_ones_still_mean_superspike(tmp_path):
    model = fit(recipe_from_dict(_digits(surrogate={"kind": "slayer", "tau_rho": 0.2})), epochs=1, progress=False)
    save_model(model, tmp_path / "slayer.pt")
    loaded = load_model(tmp_path / "slayer.pt")
    assert surrogate_of(loaded.training) == Surrogate.of("slayer", tau_rho=0.2)
    # A model file written before the registry: surrogate_steepness only.
    training = {k: v for k, v in model.training.items() if k != "surrogate"} | {"surrogate_steepness": 7.0}
    old = ModelFile(**{**model.__dict__, "training": training})
    save_model(old, tmp_path / "old.pt")
    assert surrogate_of(load_model(tmp_path / "old.pt").training) == Surrogate.superspike(7.0)
    from neurodeploy.models.delayed import network_from_model
    assert network_from_model(load_model(tmp_path / "old.pt")).surrogate == Surrogate.superspike(7.0)
    assert network_from_model(loaded).surrogate == Surrogate.of("slayer", tau_rho=0.2)


@pytest.mark.parametrize("kind", list(KINDS))
def test_itl_injected_forward_uses_the_models_surrogate(kind):
    """Without measurements, itl's injected forward is the network's forward: same spikes, same gradients
    with the same surrogate (and other gradients with another one)."""
    from neurodeploy.recipe import recipe_from_dict as load
    recipe = load(_recipe())
    g = torch.Generator().manual_seed(3)
    weights = {name: (0.4 + torch.randn(shape, generator=g)).requires_grad_() for name, shape in
               (("input->hidden", (120, 5)), ("hidden->output", (3, 120)))}
    spikes = (torch.rand(40, 8, 5, generator=g) < 0.2).float()
    surrogate = Surrogate.of(kind)
    net = SpikingNetwork(recipe.graph, recipe.dt_s, weights=weights, surrogate=surrogate, detach_reset=True)
    out = net(spikes, weights=weights)
    injected = injected_forward(recipe.graph, weights, spikes, recipe.dt_s, {}, surrogate=surrogate)
    assert torch.equal(out.spikes["hidden"], injected.spikes["hidden"])
    grad_net = torch.autograd.grad(out.readout_v.amax(0).sum(), list(weights.values()))
    grad_itl = torch.autograd.grad(injected.readout_v.amax(0).sum(), list(weights.values()))
    for a, b in zip(grad_net, grad_itl):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    other = Surrogate.of("arctan" if kind != "arctan" else "triangle")
    injected = injected_forward(recipe.graph, weights, spikes, recipe.dt_s, {}, surrogate=other)
    grad_other = torch.autograd.grad(injected.readout_v.amax(0).sum(), list(weights.values()))
    assert not torch.allclose(grad_other[0], grad_itl[0])


def test_twin_sequence_takes_every_surrogate():
    x = 0.3 + torch.rand(30, 2, 6, generator=torch.Generator().manual_seed(4))
    grads = {}
    for kind in KINDS:
        xi = x.clone().requires_grad_()
        z, v = lif_sequence(xi, LIFParameters(), 1e-3, surrogate=Surrogate.of(kind))
        (grads[kind],) = torch.autograd.grad(v.sum() + z.sum(), xi)
        assert torch.isfinite(grads[kind]).all()
    assert len({tuple(g.flatten().tolist()) for g in grads.values()}) == len(KINDS)


def test_deployment_meta_records_the_surrogate(tmp_path):
    from neurodeploy.api import load_deployment
    from neurodeploy.targets.registry import get_target
    from neurodeploy.deployment import save_deployment

    model = fit(recipe_from_dict(_digits(surrogate={"kind": "triangle"})), epochs=1, progress=False)
    deployment = get_target("bss2").map(model).deployment
    assert deployment.meta["training"]["surrogate"] == {"kind": "triangle", "height": 1.0, "width": 0.2}
    assert deployment.meta["training"]["surrogate_steepness"] is None
    save_deployment(deployment, tmp_path / "d.npz")
    assert load_deployment(tmp_path / "d.npz").meta["training"]["surrogate"]["kind"] == "triangle"
