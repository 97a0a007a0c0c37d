"""The model file: exact round trip, weights_only loading, clear errors for damaged files."""

import torch
import pytest

from neurodeploy.errors import FileKindError
from neurodeploy.modelfile import FORMAT, load_model, save_model


def test_round_trip_is_exact(trained_model, tmp_path):
    model = load_model(trained_model)
    raw = torch.load(trained_model, weights_only=True)  # never needs user classes
    assert raw["format"] == FORMAT and raw["discretisation"]["transmission_latency_steps"] == 1
    copy = tmp_path / "copy.pt"
    save_model(model, copy)
    again = load_model(copy)
    assert again.graph == model.graph and again.encoding == model.encoding and again.dt_s == model.dt_s
    for name, w in model.weights.items():
        assert torch.equal(w, again.weights[name])
    assert again.metrics == model.metrics and again.seed == model.seed


def test_truncated_file_is_refused(trained_model, tmp_path):
    data = trained_model.read_bytes()
    broken = tmp_path / "broken.pt"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(FileKindError, match="truncated, corrupted or another kind"):
        load_model(broken)


def test_other_files_are_refused(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(FileKindError):
        load_model(text)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(FileKindError, match="not a neurodeploy model file"):
        load_model(foreign)
    versioned = tmp_path / "future.pt"
    torch.save({"format": FORMAT, "version": 99}, versioned)
    with pytest.raises(FileKindError, match="version 99"):
        load_model(versioned)
