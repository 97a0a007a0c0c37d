"""Shared fixtures: a tiny recipe, a quickly trained model and its deployment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]


def tiny_recipe(tmp_path: Path, **changes) -> Path:
    """models/yinyang.yaml with 24 hidden neurons and 2 epochs (or ``changes`` per dotted key)."""
    return changed_recipe("yinyang", tmp_path, "tiny.yaml", **{"layers.0.size": 24, "training.epochs": 2, **changes})


def changed_recipe(name: str, tmp_path: Path, filename: str, **changes) -> Path:
    """models/NAME.yaml with ``changes`` per dotted key (``layers.0.size``), written to ``tmp_path / filename``."""
    data = yaml.safe_load((ROOT / "models" / f"{name}.yaml").read_text())
    for dotted, value in changes.items():
        node = data
        *path, last = dotted.split(".")
        for key in path:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[last] = value
    path = tmp_path / filename
    path.write_text(yaml.safe_dump(data))
    return path


def dequantised(deployment) -> dict:
    """The weights a deployment's chip holds, in model units: each integer weight times its neuron's scale."""
    out = {}
    for key, q in deployment.arrays.items():
        if key.startswith("quantised_weight:"):
            name = key.split(":", 1)[1]
            scale = torch.as_tensor(deployment[f"weight_scale:{name.split('->')[1]}"])
            out[name] = torch.as_tensor(q.astype(np.float32)) * scale[:, None]
    return out


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory) -> Path:
    from neurodeploy.workflows.train import train

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model")
    output = folder / "tiny.pt"
    train(tiny_recipe(folder), output, progress=False)
    return output


def _mapped(model: Path, target: str, folder: Path, name: str) -> Path:
    from neurodeploy.workflows.map import map_model

    output = folder / name
    map_model(model, target, output)
    return output


@pytest.fixture(scope="session")
def deployment_file(trained_model, tmp_path_factory) -> Path:
    """The tiny model on BSS-2."""
    return _mapped(trained_model, "bss2", tmp_path_factory.mktemp("deployment"), "tiny.npz")


@pytest.fixture(scope="session")
def xylo_file(trained_model, tmp_path_factory) -> Path:
    """The tiny model on Xylo."""
    return _mapped(trained_model, "xylo", tmp_path_factory.mktemp("xylo"), "tiny.xylo.npz")


@pytest.fixture(scope="session")
def excitatory_model(trained_model, tmp_path_factory) -> Path:
    """The tiny model with non-negative input weights (a plasticity program rewrites excitatory synapses)."""
    import dataclasses

    from neurodeploy.modelfile import load_model, save_model

    model = load_model(trained_model)
    weights = {**model.weights, "input->hidden": model.weights["input->hidden"].abs()}
    path = tmp_path_factory.mktemp("plastic") / "excitatory.pt"
    save_model(dataclasses.replace(model, weights=weights), path)
    return path


@pytest.fixture
def twin_mock(monkeypatch):
    """The mock chip on its PyTorch twin (``NEURODEPLOY_MOCK=twin``): for tests of the twin's own internals."""
    monkeypatch.setenv("NEURODEPLOY_MOCK", "twin")
