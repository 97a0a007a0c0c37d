"""YAML with limits: no aliases, bounded nesting and size; the shipped files read as plain safe_load does."""

import pytest
import yaml

from neurodeploy import safe_yaml
from neurodeploy.recipe import load_recipe
from neurodeploy.errors import RecipeError
from conftest import ROOT

BOMB = "a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b]\n"


def test_shipped_files_read_as_before():
    for path in [*ROOT.glob("targets/*.yaml"), *ROOT.glob("models/*.yaml")]:
        assert safe_yaml.load_yaml(path) == yaml.safe_load(path.read_text()), path


def test_aliases_depth_and_size_are_refused(tmp_path, monkeypatch):
    with pytest.raises(safe_yaml.LimitError, match="aliases"):
        safe_yaml.load_yaml_text(BOMB)
    with pytest.raises(safe_yaml.LimitError, match="deeper"):
        safe_yaml.load_yaml_text("a: " + "[" * 500 + "]" * 500)
    big = tmp_path / "big.yaml"
    big.write_text("a: " + "x" * 2000)
    monkeypatch.setattr(safe_yaml, "MAX_BYTES", 1000)
    with pytest.raises(safe_yaml.LimitError, match="larger than"):
        safe_yaml.load_yaml(big)


def test_a_recipe_alias_bomb_is_a_one_line_recipe_error(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    with pytest.raises(RecipeError, match="aliases"):
        load_recipe(path)
