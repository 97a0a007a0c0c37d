"""``import`` and ``export``: NIR graphs to and from model files (:mod:`neurodeploy.interchange`)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

from ..atomic import check_output, nameless_temporaries
from ..errors import InterchangeError
from ..interchange import InterchangeWarning, read_nir, write_nir
from ..modelfile import load_model, save_model
from ..recipe import load_recipe


def import_model(graph_path: str | Path, output: str | Path, *, dt_s: Optional[float] = None,
                 like: Optional[str] = None, tau_scale: float = 1.0, reset: str = "graph",
                 discretisation: str = "auto", readout: str = "graph") -> dict:
    """Read a ``.nir`` graph and write it as a model file; ``like``: a recipe whose dataset and input
    encoding the model gets (so that ``evaluate``, ``map`` and ``run`` can feed it)."""
    check_output(output, (graph_path,))
    dataset = encoding = None
    if like is not None:
        recipe = load_recipe(like)
        dataset, encoding = recipe.dataset, recipe.encoding
    with warnings.catch_warnings():  # the model's provenance keeps them; the verb prints them
        warnings.simplefilter("ignore", InterchangeWarning)
        model = read_nir(graph_path, dt_s=dt_s, dataset=dataset, encoding=encoding, tau_scale=tau_scale,
                         reset=reset, discretisation=discretisation, readout=readout)
    with nameless_temporaries():
        save_model(model, output)
    return {"output": str(output), "dt_s": model.dt_s, "discretisation": model.graph.discretisation,
            "dataset": model.dataset, "populations": [(p.name, p.kind, p.size) for p in model.graph.populations],
            "projections": [p.name for p in model.graph.projections],
            "warnings": list(model.provenance.get("warnings", []))}


def export_model(model_path: str | Path, output: str | Path, *, lossy: bool = False, fmt: str = "nir",
                 samples: int = 100) -> dict:
    """Write a model file as a ``.nir`` graph (what NIR cannot express is an error unless ``lossy``), or, with
    ``fmt="pynn"``, a model file or a deployment as a PyNN script over ``samples`` test samples
    (:mod:`neurodeploy.interchange.pynn_export`)."""
    if fmt == "pynn":
        from .pynn_script import export_pynn
        return export_pynn(model_path, output, samples=samples)
    if fmt != "nir":
        raise InterchangeError(f"unknown export format '{fmt}'", "use --format nir or --format pynn")
    check_output(output, (model_path,))
    model = load_model(model_path)
    write_nir(model, output, lossy=lossy)
    return {"output": str(output), "dt_s": model.dt_s, "discretisation": model.graph.discretisation}
