"""``inspect``: say what a neurodeploy file is and summarise it, whatever its kind."""

from __future__ import annotations

import zipfile
from pathlib import Path

import yaml

from ..errors import FileKindError
from ..modelfile import read_model_dict
from ..multichip import is_multichip, load_multichip, summary as multichip_summary
from ..recipe import load_recipe
from ..safe_yaml import LimitError, load_yaml
from ..targets.registry import all_targets, get_target
from ..validation.loading import load_checked_deployment


def _summary_of_model(path: Path) -> dict:
    data = read_model_dict(path)
    return {"kind": "model", "version": data["version"], "dataset": data["dataset"], "dt_s": data["dt_s"],
            "populations": [(p["name"], p["kind"], p["size"]) for p in data["graph"]["populations"]],
            "weights": {k: list(v.shape) for k, v in data["weights"].items()},
            "encoding": data["encoding"], "seed": data["seed"], "metrics": data["metrics"],
            **({"trained_on": data["mapping"].get("trained_on")} if data.get("mapping") else {}),
            "software_version": data["software_version"]}


def _summary_of_deployment(path: Path) -> dict:
    dep = load_checked_deployment(path)
    report = dep.meta["report"]
    usage = {k: v for k, v in report.items() if isinstance(v, (int, float, str)) and k != "target"}
    return {"kind": "deployment", "version": dep.meta["version"], "target": dep.target,
            "dataset": dep.meta["dataset"], "dt_s": dep.meta["dt_s"], **usage,
            "chip": dep.meta.get("chip"), "layers": report["layers"],
            "arrays": {k: list(v.shape) for k, v in dep.arrays.items()},
            "software_version": dep.meta["software_version"]}


def _summary_of_multichip(path: Path) -> dict:
    """A multi-chip deployment: the whole network's summary, and the partition (chips, blocks, routes, link)."""
    multi = load_multichip(path)
    report = multi.meta["report"]
    usage = {k: v for k, v in report.items() if isinstance(v, (int, float, str)) and k != "target"}
    return {"kind": "multi-chip deployment", "version": multi.meta["version"], "target": multi.target,
            "dataset": multi.meta["dataset"], "dt_s": multi.meta["dt_s"], **usage, **multichip_summary(multi),
            "layers": [{k: row[k] for k in ("name", "kind", "neurons", "fan_in", "chip") if k in row}
                       for row in report["layers"]],
            "software_version": multi.meta["software_version"]}


def _summary_of_yaml(path: Path) -> dict:
    try:
        data = load_yaml(path)
    except (yaml.YAMLError, UnicodeDecodeError, ValueError, RecursionError) as exc:  # ValueError: a 5000-digit int
        reason = str(exc) if isinstance(exc, LimitError) else type(exc).__name__
        raise FileKindError(f"{path} is not readable YAML ({reason})",
                            "give a recipe, target spec, calibration, model or deployment") from None
    raw = data.get("format") if isinstance(data, dict) else None
    fmt = raw if isinstance(raw, str) else ""  # a list or mapping there names no format (and is unhashable)
    if fmt == "neurodeploy.recipe":
        recipe = load_recipe(path)
        return {"kind": "recipe", "name": recipe.name, "dataset": recipe.dataset, "dt_s": recipe.dt_s,
                "populations": [(p.name, p.kind, p.size) for p in recipe.graph.populations],
                "training": recipe.training}
    if fmt == "neurodeploy.target":
        target = get_target(path)
        return {"kind": "target", "name": target.name, "description": target.description, **target.limits()}
    for target in all_targets():  # file kinds a target owns (BSS-2: calibration files)
        if fmt in target.file_formats:
            return target.file_formats[fmt](path)
    raise FileKindError(f"{path} is YAML but not a neurodeploy file (format {raw!r})",
                        "give a recipe, target spec, model or deployment")


def inspect_file(path: str | Path) -> dict:
    """A summary dict of any neurodeploy file; a file of no known kind is a ``FileKindError``."""
    path = Path(path)
    if not path.is_file():
        raise FileKindError(f"{path} does not exist", "give an existing file")
    if path.suffix in (".yaml", ".yml"):
        return {"file": str(path), **_summary_of_yaml(path)}
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                is_npz = any(name == "meta.npy" for name in archive.namelist())
        except (zipfile.BadZipFile, OSError, ValueError, EOFError):  # a damaged archive: let the model reader say so
            is_npz = False
        summary = (_summary_of_multichip(path) if is_npz and is_multichip(path) else
                   _summary_of_deployment(path) if is_npz else _summary_of_model(path))
        return {"file": str(path), **summary}
    raise FileKindError(f"{path} is not a neurodeploy file (not a model, deployment, recipe or target)",
                        "give a file written by neurodeploy")
