"""``neurodeploy report``: one self-contained HTML page about a deployment, its recordings and its runs.

The page holds everything it shows: figures are embedded as ``data:image/png;base64`` URIs, the style is
inline, there is no script and no link to anything outside the file, so it can be mailed, archived or
opened offline. Sections:

* the deployment: file, target, dataset, encoding, calibration, checksum;
* resources used against the target's limits (bars), and the other numbers of the mapping report;
* the per-layer table of the mapping report (neurons, fan-in, clipped weights, rates, placement detail);
* design rules and checks: the target's checks of the file (re-run here, at load), and the mapping's warnings;
* the placement map and the quantisation histograms (:mod:`neurodeploy.deployment_plots`);
* per recording (``run --record``): backend, chip, accuracy on the recorded samples, counters, raster and
  readout figures (:func:`neurodeploy.plots.recording_figures`, first sample);
* per run result (``run --json``): accuracy with its spread, per chip, and the per-chip figure.

Every string read from a file is HTML-escaped. The page is written atomically (nothing is left behind on
failure), and bad inputs are refused before any figure is drawn.
"""

from __future__ import annotations

import base64
import html
import json
import math
import tempfile
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..atomic import atomic_path, check_output
from ..deployment import Deployment
from ..errors import FileKindError
from ..plots import require_matplotlib
from ..targets.registry import get_target
from ..validation.loading import load_checked_deployment
from .record import load_recording

MAX_RUN_BYTES = 64 * 2**20  # a run result is a few kB; a run of 1000 repeats on 64 chips is well below this
RUN_FIX = "write one with `neurodeploy run DEPLOYMENT --backend B --json > run.json`"

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 70em; padding: 0 1.5em; color: #1d1d1f; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ccc;
     padding-bottom: 0.2em; margin-top: 1.8em; } h3 { font-size: 1.05em; margin-top: 1.4em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #d5d5d5; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f2f2f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.bar { width: 14em; height: 0.9em; background: #ececec; border-radius: 3px; overflow: hidden; }
.bar span { display: block; height: 100%; background: #1f77b4; }
.bar span.full { background: #d62728; }
.ok { color: #207a2b; font-weight: 600; } .warn { color: #a05a00; }
.note { color: #555; font-size: 0.92em; } code, pre { font-family: ui-monospace, Menlo, Consolas, monospace; }
pre { background: #f6f6f8; padding: 0.5em; overflow-x: auto; font-size: 0.85em; }
img { max-width: 100%; height: auto; border: 1px solid #e3e3e3; margin: 0.4em 0; }
"""


def _e(value: Any) -> str:
    """HTML-escaped text of anything read from a file."""
    return html.escape(str(value), quote=True)


def _number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _percent(value: Any) -> str:
    return "-" if not isinstance(value, (int, float)) or isinstance(value, bool) else f"{100 * value:.1f} %"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[int] = ()) -> str:
    """A table; cells are escaped, except :class:`_Html` ones."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            text = cell.text if isinstance(cell, _Html) else _e(cell)
            cells.append(f"<td class=\"num\">{text}</td>" if i in numeric else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    head = f"<thead><tr>{head}</tr></thead>" if any(header) else ""  # a two-column list of facts has none
    return f"<table>{head}<tbody>{''.join(body)}</tbody></table>"


class _Html:
    """Markup made here (already escaped where it holds file text)."""

    def __init__(self, text: str) -> None:
        self.text = text


def _bar(used: float, available: float) -> _Html:
    share = used / available if available else 0.0
    width = max(0.0, min(share, 1.0)) * 100
    full = " class=\"full\"" if share >= 0.9 else ""
    return _Html(f"<div class=\"bar\" title=\"{share * 100:.1f} %\"><span{full} style=\"width: {width:.1f}%\">"
                 "</span></div>")


def _image(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f"<img alt=\"{_e(alt)}\" src=\"data:image/png;base64,{data}\">"


# -- inputs ---------------------------------------------------------------------------------------------------
def _load_deployment(path: str | Path) -> Deployment:
    deployment = load_checked_deployment(path)
    if "graph" not in deployment.meta or "report" not in deployment.meta:
        raise FileKindError(f"{path} is a chip experiment, not a model's deployment",
                            "report on a deployment made by `neurodeploy map`")
    return deployment


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _chip_ok(chip: Any) -> bool:
    """One entry of a run result's ``per_backend``: a numeric mean, optional std and 95 % interval."""
    if not isinstance(chip, dict) or not _is_number(chip.get("mean")):
        return False
    interval = chip.get("interval95")
    return (chip.get("std") is None or _is_number(chip["std"])) and (interval is None or (
        isinstance(interval, list) and len(interval) == 2 and all(_is_number(v) for v in interval)))


def _load_run(path: str | Path, deployment: Deployment) -> dict:
    """A ``neurodeploy run --json`` result, checked as far as the report uses it."""
    path = Path(path)
    if not path.is_file():
        raise FileKindError(f"run result {path} does not exist", RUN_FIX)
    if path.stat().st_size > MAX_RUN_BYTES:
        raise FileKindError(f"run result {path} is larger than {MAX_RUN_BYTES // 2**20} MiB: not a run result",
                            RUN_FIX)
    try:
        result = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise FileKindError(f"run result {path} is not text (not UTF-8): not a run result", RUN_FIX) from None
    except json.JSONDecodeError as exc:
        raise FileKindError(f"run result {path} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                            f"{exc.msg})", RUN_FIX) from None
    except RecursionError:
        raise FileKindError(f"run result {path} is nested too deeply: not a run result", RUN_FIX) from None
    accuracy = result.get("accuracy") if isinstance(result, dict) else None
    if not isinstance(accuracy, (int, float)) or isinstance(accuracy, bool) or not 0 <= accuracy <= 1:  # NaN too
        raise FileKindError(f"{path} is not a run result (no 'accuracy' between 0 and 1)", RUN_FIX)
    per_backend = result.get("per_backend")
    if per_backend is not None:
        if not (isinstance(per_backend, dict) and per_backend and all(_chip_ok(c) for c in per_backend.values())):
            raise FileKindError(f"run result {path} has a malformed 'per_backend' (each chip needs a numeric mean)",
                                RUN_FIX)
    for key in ("target", "dataset"):
        if key in result and result[key] != deployment.meta.get(key):
            raise FileKindError(f"run result {path} is of {key} {str(result[key])[:40]!r}, the deployment's is "
                                f"{deployment.meta.get(key)!r}", "give the run results of this deployment")
    return result


def _check_recording(path: str | Path, meta: dict, arrays: dict, deployment: Deployment) -> None:
    if meta.get("layers") != deployment.meta["layers"] or meta.get("dataset") != deployment.meta["dataset"]:
        raise FileKindError(f"recording {path} is of another network (layers {meta.get('layers')}, dataset "
                            f"{meta.get('dataset')!r}) than the deployment",
                            "give the recordings of this deployment (neurodeploy run DEPLOYMENT --record)")
    samples = meta.get("samples")
    if not isinstance(samples, int) or samples < 1 or any(key not in arrays for key in ("predictions", "labels")):
        raise FileKindError(f"recording {path} lacks samples or predictions",
                            "record again with `neurodeploy run DEPLOYMENT --record -o rec.npz`")


# -- sections -------------------------------------------------------------------------------------------------
def _header(path: Path, deployment: Deployment) -> str:
    meta = deployment.meta
    encoding = meta.get("encoding") or {}
    rows = [("file", path.name), ("target", f"{meta['target']} — {get_target(meta['target']).description}"),
            ("dataset", meta.get("dataset")), ("layers", " → ".join(f"{n} ({k})" for n, k in
                                                                   zip(meta["layers"], meta["layer_kinds"]))),
            ("input encoding", encoding.get("kind", "-")), ("model time step", f"{meta.get('dt_s')} s"),
            ("weight scale", meta.get("weight_scale", "-")), ("clip quantile", meta.get("clip_quantile", "-")),
            ("calibration", meta.get("calibration") or "none (nominal)"), ("chip", meta.get("chip") or "any"),
            ("written by", f"neurodeploy {meta.get('software_version', '?')}"),
            ("checksum (SHA-256)", meta.get("checksum", "-"))]
    if "weight_copies" in meta:
        rows.insert(7, ("weight copies", meta["weight_copies"]))
    if meta.get("trained_on"):
        rows.append(("trained in the loop on", json.dumps(meta["trained_on"], default=str)))
    return (f"<h1>Deployment report: {_e(path.name)}</h1>"
            f"<p class=\"note\">target <b>{_e(meta['target'])}</b>, dataset <b>{_e(meta.get('dataset'))}</b>; "
            f"made by neurodeploy {_e(__version__)} on "
            f"{_e(datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC'))}</p>"
            + _table(("", ""), rows))


def _resources(deployment: Deployment) -> str:
    report = deployment.meta["report"]
    pairs = [key[:-5] for key in report if key.endswith("_used") and f"{key[:-5]}_available" in report]
    rows = []
    for name in pairs:
        used, available = report[f"{name}_used"], report[f"{name}_available"]
        if isinstance(used, (int, float)) and isinstance(available, (int, float)):
            rows.append((name.replace("_", " "), used, available, _bar(used, available),
                         _percent(used / available if available else 0)))
    text = "<h2>Resources</h2>" + _table(("resource", "used", "available", "", "share"), rows, numeric=(1, 2, 4))
    skip = {*(f"{n}_used" for n in pairs), *(f"{n}_available" for n in pairs), "target", "layers", "warnings"}
    other = [(key.replace("_", " "), _Html(f"<code>{_e(json.dumps(value, default=str))}</code>")
              if isinstance(value, (dict, list)) else _number(value))
             for key, value in report.items() if key not in skip]
    if other:
        text += "<h3>Other numbers of the mapping</h3>" + _table(("", ""), other)
    limits = get_target(deployment.target).limits()
    text += (f"<h3>Limits of target {_e(deployment.target)}</h3>"
             + _table(("limit", "value"), [(k, ", ".join(map(str, v)) if isinstance(v, list) else v)
                                           for k, v in limits.items()]))
    return text


def _layers(deployment: Deployment) -> str:
    rate = lambda v: "-" if not isinstance(v, (int, float)) else f"{v:.2f} Hz"  # noqa: E731
    rows = [(layer.get("name"), layer.get("kind"), layer.get("neurons"), layer.get("fan_in"),
             _percent(layer.get("clipped_fraction")), rate(layer.get("rate_float_hz")),
             rate(layer.get("rate_quantised_hz")), layer.get("detail", ""))
            for layer in deployment.meta["report"].get("layers", []) if isinstance(layer, dict)]
    return ("<h2>Layers</h2>"
            + _table(("layer", "kind", "neurons", "fan-in", "clipped weights", "rate (float)", "rate (quantised)",
                      "placement"), rows, numeric=(2, 3, 4, 5, 6))
            + "<p class=\"note\">Rates: spikes per neuron and second of model time on probe samples, the float "
              "model against the quantised one; clipped: the share of weights beyond the largest code.</p>")


def _rules(deployment: Deployment) -> str:
    warnings = [str(w) for w in deployment.meta["report"].get("warnings", [])]
    items = []
    for warning in warnings:
        rule, colon, rest = warning.partition(":")
        items.append(f"<li><b>{_e(rule)}</b>:{_e(rest)}</li>" if colon and rule.replace("-", "").isalnum()
                     and rule.upper() == rule else f"<li>{_e(warning)}</li>")
    text = ("<h2>Design rules and checks</h2><ul>"
            f"<li><span class=\"ok\">passed</span>: target {_e(deployment.target)}'s checks of every array and "
            "meta field of the file, and its SHA-256 checksum (run again for this report).</li>"
            "<li><span class=\"ok\">no rule violated</span>: <code>neurodeploy map</code> writes a deployment only "
            "when every design rule of the target holds (<code>neurodeploy map MODEL --check</code> lists them "
            "for a model).</li></ul>")
    if items:
        text += f"<h3 class=\"warn\">Warnings of the mapping ({len(items)})</h3><ul>{''.join(items)}</ul>"
    else:
        text += "<p>The mapping raised no warnings.</p>"
    return text


def _quantisation_table(deployment: Deployment) -> str:
    rows = []
    for key, values in deployment.arrays.items():
        if key.startswith("quantised_weight:"):
            codes = np.asarray(values).astype(np.int64).ravel()
            rows.append((key.split(":", 1)[1], "×".join(map(str, np.shape(values))), int(codes.size),
                         int(np.count_nonzero(codes)), int(len(np.unique(codes))),
                         int(codes.min(initial=0)), int(codes.max(initial=0))))
    limits = get_target(deployment.target).weight_code_range()
    note = "" if limits is None else \
        f"<p class=\"note\">Integer weight codes of the target: {limits[0]}..{limits[1]}.</p>"
    return _table(("projection", "shape", "weights", "non-zero", "codes used", "smallest", "largest"), rows,
                  numeric=(2, 3, 4, 5, 6)) + note


def _recording(index: int, path: Path, meta: dict, arrays: dict, folder: Path) -> tuple[str, int]:
    from ..plots import recording_figures

    accuracy = float(np.mean(arrays["predictions"] == arrays["labels"])) if len(arrays["labels"]) else 0.0
    rows = [("backend", meta.get("backend")), ("chip", meta.get("chip") or "-"), ("dataset", meta.get("dataset")),
            ("samples recorded", meta.get("samples")), ("accuracy on them", _percent(accuracy))]
    if "spikes" in arrays and "software_spikes" in arrays:  # optional from recording version 2 (--record WHAT)
        rows.append(("spikes (backend / software)",
                     f"{int(arrays['spikes'].sum())} / {int(arrays['software_spikes'].sum())}"))
    rows += [("recorded membranes", int(len(arrays["recorded"]))),
             ("written by", f"neurodeploy {meta.get('software_version', '?')}")]
    counters = meta.get("counters") or {}
    text = f"<h3>Recording {index + 1}: {_e(path.name)}</h3>" + _table(("", ""), rows)
    if isinstance(counters, dict) and counters:
        text += "<p>Counters of the backend:</p>" + _table(("counter", "value"), [
            (k, _number(v)) for k, v in counters.items()], numeric=(1,))
    figures = recording_figures(meta, arrays, folder / f"recording{index}", 0)
    text += "<p class=\"note\">Sample 0, in model units on the model's time axis: the backend against the " \
            "software model (spikes: dots over rings; membranes: solid against dashed).</p>"
    text += "".join(_image(figure, f"{figure.stem} of recording {path.name}") for figure in figures)
    return text, len(figures)


def _run(index: int, path: Path, result: dict, folder: Path) -> str:
    from ..deployment_plots import accuracy_per_chip

    rows: list[tuple[Any, Any]] = [("backend", result.get("backend")), ("data", result.get("data", "-")),
                                   ("samples", result.get("n_samples", "-"))]
    if isinstance(result.get("accuracy_std"), (int, float)):
        rows.append(("accuracy (mean ± std over runs)",
                     f"{_percent(result['accuracy'])} ± {_percent(result['accuracy_std'])}"))
        interval = result.get("accuracy_interval95")
        if isinstance(interval, list) and len(interval) == 2:
            rows.append(("95 % interval of the mean", f"{_percent(interval[0])} – {_percent(interval[1])}"))
        rows.append(("runs", result.get("n_runs", "-")))
    else:
        rows.append(("accuracy", _percent(result["accuracy"])))
    if result.get("retried_runs"):
        rows.append(("runs repeated after a lost chip", result["retried_runs"]))
    text = f"<h3>Run {index + 1}: {_e(path.name)}</h3>" + _table(("", ""), rows)
    per_backend = result.get("per_backend")
    if isinstance(per_backend, dict):
        chips = []
        for name, chip in per_backend.items():
            interval = chip.get("interval95")
            chips.append((name, _percent(chip["mean"]), _percent(chip.get("std")),
                          "-" if not interval else f"{_percent(interval[0])} – {_percent(interval[1])}",
                          chip.get("n_runs", "-")))
        text += _table(("chip", "mean", "std", "95 % interval of the mean", "runs"), chips, numeric=(1, 2, 4))
    warnings = [w for w in result.get("warnings") or [] if isinstance(w, str)]
    if warnings:
        text += "<ul>" + "".join(f"<li class=\"warn\">{_e(w)}</li>" for w in warnings) + "</ul>"
    figure = accuracy_per_chip(result, folder / f"run{index}.png")
    return text + _image(figure, f"accuracy per chip of {path.name}")


# -- the page -------------------------------------------------------------------------------------------------
def write_report(deployment_path: str | Path, recordings: Sequence[str | Path] = (),
                 output: str | Path = "report.html", runs: Sequence[str | Path] = ()) -> dict:
    """Write the HTML report of ``deployment_path`` with its ``recordings`` and ``runs`` (``run --json`` files)
    to ``output``; returns the output, its sections, the number of figures and its size in bytes."""
    check_output(output, (deployment_path, *recordings, *runs))
    require_matplotlib()
    from ..deployment_plots import placement_map, quantisation_histograms

    deployment = _load_deployment(deployment_path)
    loaded = []
    for path in recordings:
        meta, arrays = load_recording(path)
        _check_recording(path, meta, arrays, deployment)
        loaded.append((Path(path), meta, arrays))
    results = [(Path(path), _load_run(path, deployment)) for path in runs]

    sections = ["deployment", "resources", "layers", "design rules", "placement", "quantisation"]
    figures = 0
    with tempfile.TemporaryDirectory(prefix="neurodeploy-report-") as scratch:
        folder = Path(scratch)
        parts = [_header(Path(deployment_path), deployment), _resources(deployment), _layers(deployment),
                 _rules(deployment)]
        parts.append("<h2>Placement</h2>")
        if get_target(deployment.target).placement(deployment):
            parts.append(_image(placement_map(deployment, folder / "placement.png"), "placement map"))
            figures += 1
        else:
            parts.append(f"<p class=\"note\">Placement map: not available for target {_e(deployment.target)} "
                         "(the target describes no placement grid).</p>")
        parts.append("<h2>Quantisation</h2>" + _quantisation_table(deployment)
                     + _image(quantisation_histograms(deployment, folder / "quantisation.png"),
                              "quantisation histograms"))
        figures += 1
        if loaded:
            sections.append("recordings")
            parts.append("<h2>Recordings</h2>")
            for index, (path, meta, arrays) in enumerate(loaded):
                text, count = _recording(index, path, meta, arrays, folder)
                parts.append(text)
                figures += count
        if results:
            sections.append("runs")
            parts.append("<h2>Runs</h2>")
            for index, (path, result) in enumerate(results):
                parts.append(_run(index, path, result, folder))
                figures += 1
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>neurodeploy report: {_e(Path(deployment_path).name)}</title>"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")
    data = page.encode("utf-8")
    with atomic_path(output) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
    return {"output": str(output), "target": deployment.target, "sections": sections, "figures": figures,
            "recordings": len(loaded), "runs": len(results), "bytes": len(data)}
