"""``export --format pynn``: a model file, or a deployment's weights as its chip holds them, as a PyNN script."""

from __future__ import annotations

from pathlib import Path

from ..atomic import atomic_path, check_output
from ..data.datasets import load_data
from ..data.encoding import encode
from ..errors import InterchangeError
from ..graph import Graph
from ..interchange.nir_import import NO_DATASET
from ..interchange.pynn_export import network_description, script_text
from ..modelfile import load_model
from ..validation.arguments import Number, check_argument
from ..validation.loading import load_checked_deployment

SAMPLES = Number(lo=1, hi=100_000, integer=True)
COPIES = 10  # samples the script simulates at once with pyNN's own (per-synapse) connection calls


def export_pynn(source: str | Path, output: str | Path, *, samples: int = 100) -> dict:
    """Write a self-contained PyNN script for ``source`` (a ``.pt`` model or an ``.npz`` deployment): the network
    (:mod:`neurodeploy.interchange.pynn_export`), the first ``samples`` test samples encoded as the model's
    dataset is, and a run that prints the accuracy."""
    check_argument(SAMPLES, samples, "--samples")
    check_output(output, (source,))
    if Path(source).suffix.lower() == ".npz":
        deployment = load_checked_deployment(source)
        from ..backends.pynn import deployment_weights  # the deployment's target dequantises its weights
        meta = deployment.meta
        graph, weights, dt_s = Graph.from_dict(meta["graph"]), deployment_weights(deployment), meta["dt_s"]
        encoding, dataset, loss, kind = meta["encoding"], meta["dataset"], meta["training"].get("loss"), "deployment"
    else:
        model = load_model(source)
        graph, dt_s, encoding, dataset = model.graph, model.dt_s, model.encoding, model.dataset
        weights = {name: w.detach().numpy() for name, w in model.weights.items()}
        loss, kind = model.training.get("loss"), "model"
    if dataset == NO_DATASET or not encoding:
        raise InterchangeError(f"{source} has no dataset and input encoding for the script's spike sources",
                               "import the NIR graph with --like RECIPE")
    net = network_description(graph, weights, dt_s, encoding, loss)
    x, y = load_data(dataset, None)
    x, y = x[:samples], y[:samples]
    title = f"{Path(source).name} ({kind}{', quantised weights' if kind == 'deployment' else ''})"
    text = script_text(net, encode(x, encoding), y, title=title, source=f"{kind} {Path(source).name}",
                       dataset=dataset, name=Path(output).name, copies=COPIES)
    with atomic_path(output) as tmp:
        tmp.write_text(text)
    return {"output": str(output), "dt_s": dt_s, "discretisation": graph.discretisation, "format": "pynn",
            "source": kind, "samples": int(len(y))}
