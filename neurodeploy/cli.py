"""The ``neurodeploy`` command line: one verb per workflow, thin by design.

Every verb prints a short human summary, or exactly one JSON object with ``--json``. User errors
(bad input, bad usage) print one line on stderr and exit with code 2; anything else that goes
wrong prints one line too and exits with 1. ``--debug`` shows the traceback.
"""

from __future__ import annotations

import json
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Any
from collections.abc import Callable

import click
from tqdm import tqdm

from . import __version__
from .data.fashion_mnist import ENV as FASHION_MNIST_ENV
from .errors import DoesNotFitError, NeurodeployError


# The documented ranges of the verbs' numeric arguments (neurodeploy/validation/arguments.py, where the library
# checks them too; tests/fuzz/test_fuzz_cli.py keeps the two equal). Kept here so that `--help` stays quick.
MAX_EPOCHS = 10_000
MAX_SEED = 2**32 - 1
MAX_WEIGHT_COPIES = 1024
MAX_REPEAT = 1000
MAX_WORKERS = 64
EPOCHS = click.IntRange(1, MAX_EPOCHS)
SEED = click.IntRange(0, MAX_SEED)
WEIGHT_COPIES = click.IntRange(1, MAX_WEIGHT_COPIES)
REPEAT = click.IntRange(1, MAX_REPEAT)
WORKERS = click.IntRange(1, MAX_WORKERS)


class FiniteRange(click.FloatRange):
    """A float in a range, refusing NaN and ±inf (click's ``FloatRange`` lets NaN through: it compares false)."""

    name = "finite float range"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


def _progress(as_json: bool = False) -> bool:
    """Progress bars only for a person at a terminal: in a pipe or log they are noise, and a bar that an
    error closes would stay above the error line."""
    return not as_json and sys.stderr.isatty()


JSON_SCHEMA_VERSION = 1  # of every verb's --json object; docs/json.md lists the fields


def _emit(result: Any, as_json: bool, human: Callable[[Any], str]) -> None:
    """``human(result)``, or with ``--json`` the result as one JSON object that names its schema
    (``"schema": "neurodeploy.VERB/1"``, documented in docs/json.md)."""
    if as_json:
        verb = click.get_current_context().info_name
        click.echo(json.dumps({"schema": f"neurodeploy.{verb}/{JSON_SCHEMA_VERSION}", **result}, default=str))
    else:
        click.echo(human(result))


def _clear_progress_bars() -> None:
    """Remove progress bars still on screen, so that an error is the only line left."""
    for bar in list(getattr(tqdm, "_instances", ())):
        bar.leave = False
        bar.close()


def _error_line(text: str, code: int) -> None:
    _clear_progress_bars()
    click.echo("error: " + " ".join(text.split()), err=True)
    sys.exit(code)


def _fail(error: NeurodeployError) -> None:
    """One line on stderr, exit code 2; the traceback only with ``--debug``."""
    if click.get_current_context().find_root().obj.get("debug"):
        raise error
    _error_line(error.one_line(), 2)


class OneLineErrors(click.Group):
    """A group whose every failure is one line on stderr: usage errors (code 2) and, unless
    ``--debug``, unexpected errors (code 1) as well. Python warnings raised meanwhile (numpy's
    ``RuntimeWarning``, ...) are held back: after success each is one ``warning: ...`` line, after a
    failure the error is the only line."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        argv = list(kwargs.get("args") or (args[0] if args else None) or sys.argv[1:])
        with warnings.catch_warnings(record="--debug" not in argv) as caught:
            code = self._main_one_line(argv, *args, **kwargs)
        for message in dict.fromkeys(" ".join(str(w.message).split()) for w in caught or ()):
            click.echo(f"warning: {message}", err=True)
        sys.exit(code if isinstance(code, int) else 0)

    def _main_one_line(self, argv: list[str], *args: Any, **kwargs: Any) -> Any:
        """Click's ``main``; every failure ends the process here with one line (``sys.exit``)."""
        try:
            return super().main(*args, **{**kwargs, "standalone_mode": False})
        except click.UsageError as error:
            where = error.ctx.command_path if error.ctx else "neurodeploy"
            _error_line(f"{error.format_message()} (fix: see `{where} --help`)", 2)
        except click.ClickException as error:
            _error_line(error.format_message(), error.exit_code)
        except click.Abort:
            _error_line("aborted", 1)
        except NeurodeployError as error:  # raised outside a verb's guard
            if "--debug" in argv:
                raise
            _error_line(error.one_line(), 2)
        except Exception as error:  # noqa: BLE001 - no traceback reaches a user without --debug
            if "--debug" in argv:
                raise
            text = " ".join(str(error).split())
            text = text if len(text) <= 300 else text[:300] + "..."
            _error_line(f"internal error: {type(error).__name__}: {text} (fix: rerun with --debug and report "
                        "the traceback)", 1)


def _guarded(function: Callable[[], Any]) -> Any:
    try:
        return function()
    except NeurodeployError as error:
        _fail(error)


def _percent(x: float) -> str:
    return f"{100 * x:.1f}%"


@click.group(name="neurodeploy", cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="neurodeploy")
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False),
              help="Folder of Fashion-MNIST's IDX files (default: /usr/share/datasets/fashion-mnist, Debian's).")
@click.pass_context
def main(ctx: click.Context, debug: bool, data_dir: str | None) -> None:
    """Spiking networks from PyTorch training to neuromorphic chips (BrainScaleS-2, Xylo) and their emulators.

    \b
    neurodeploy train models/yinyang.yaml -o yinyang.pt
    neurodeploy map yinyang.pt --target bss2 -o yinyang.npz
    neurodeploy run yinyang.npz --backend mock:ideal
    """
    ctx.obj = {"debug": debug}
    if data_dir is not None:  # read by neurodeploy.data.fashion_mnist, in this process and the ones it starts
        os.environ[FASHION_MNIST_ENV] = data_dir


@main.command()
@click.argument("recipe", type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(), help="Model file to write (.pt).")
@click.option("--epochs", type=EPOCHS, help="Override the recipe's epochs.")
@click.option("--seed", type=SEED, help="Override the recipe's seed.")
@click.option("--plot", "plot_dir", type=click.Path(), help="Write figures (PNG) into this folder (matplotlib).")
@click.option("--nproc", default=1, show_default=True, type=WORKERS,
              help="Data-parallel processes (torch.distributed, gloo): each a shard of every batch, gradients "
                   "averaged, the same weights on every rank.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def train(recipe: str, output: str, epochs: int | None, seed: int | None, plot_dir: str | None, nproc: int,
          as_json: bool) -> None:
    """Train a recipe and write a model file.

    Example: neurodeploy train models/yinyang.yaml -o yinyang.pt --epochs 60
    """
    from .workflows.train import train as run_training

    metrics = _guarded(lambda: run_training(recipe, output, epochs=epochs, seed=seed, progress=_progress(as_json),
                                            plot_dir=plot_dir, nproc=nproc))
    _emit({**metrics, "output": output}, as_json,
          lambda m: f"test accuracy {_percent(m['test_accuracy'])} on {m['n_test']} samples; "
                    f"{m['epochs']} epochs in {m['training_seconds']:.0f} s → {output}" + _figures_text(m))


@main.command()
@click.argument("model", type=click.Path())
@click.option("--data", help="Split name (test, train, validation) or a .npz file with x [N, F] and y [N].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def evaluate(model: str, data: str | None, as_json: bool) -> None:
    """Accuracy of a model file in software (float weights).

    Example: neurodeploy evaluate yinyang.pt --data test
    """
    from .workflows.evaluate import evaluate as run_evaluate

    result = _guarded(lambda: run_evaluate(model, data))
    _emit(result, as_json, lambda r: f"{r['backend']}: accuracy {_percent(r['accuracy'])} on {r['n_samples']} samples")


def _map_report_text(r: dict) -> str:
    """The mapping report as text: resources used of available, then one row per layer."""
    usage = [f"{key[:-5].replace('_', ' ')} {r[key]}/{r[key[:-5] + '_available']}"
             for key in r if key.endswith("_used") and key[:-5] + "_available" in r]
    usage += [f"{key.replace('_', ' ')} {value}" for key, value in r.items() if isinstance(value, int)
              and not key.endswith(("_used", "_available"))]
    lines = [f"target {r['target']}: " + ", ".join(usage),
             f"{'layer':<10}{'kind':<5}{'neurons':>8}{'fan-in':>7}{'clipped':>9}"
             f"{'rate float':>12}{'rate chip':>12}  placement"]
    for layer in r["layers"]:
        rate = lambda v: "-" if v is None else f"{v:.1f} Hz"  # noqa: E731
        lines.append(f"{layer['name']:<10}{layer['kind']:<5}{layer['neurons']:>8}{layer['fan_in']:>7}"
                     f"{_percent(layer['clipped_fraction']):>9}{rate(layer['rate_float_hz']):>12}"
                     f"{rate(layer['rate_quantised_hz']):>12}  {layer.get('detail', '')}")
    for strategy, cost in r.get("delays", {}).items():
        lines.append(f"delays ({strategy}): rows {cost['rows']}, labels per driver {cost['labels']}/"
                     f"{cost['labels_available']}, events per input spike <= {cost['events_per_spike']}, "
                     f"FPGA copies {cost['fpga_copies']}, kernel L1 error {cost['kernel_l1_error']:.3g}")
    lines += [f"warning: {w}" for w in r["warnings"]]
    if "output" in r:
        lines.append(f"wrote {r['output']}")
    return "\n".join(lines)


@main.command(name="map")
@click.argument("model", type=click.Path())
@click.option("--target", default="bss2", show_default=True, help="Target name or spec file.")
@click.option("-o", "--output", type=click.Path(), help="Deployment file to write (.npz).")
@click.option("--check", is_flag=True, help="Only check the design rules; report all violations; write nothing.")
@click.option("--clip-quantile", default=1.0, show_default=True, type=FiniteRange(0, 1, min_open=True),
              help="Quantile of |w| that maps to the largest weight (1.0: no clipping).")
@click.option("--weight-scale", type=click.Choice(["per-neuron", "per-projection"]), default="per-neuron",
              show_default=True, help="One quantisation scale per target neuron, or one per layer.")
@click.option("--calibration", type=click.Path(),
              help="Calibration file of the chip to deploy on (codes, failed circuits).")
@click.option("--delays", default=None, metavar="STRATEGY",
              help="How trained delays are realised, one of the target's strategies (`neurodeploy targets`; "
                   "bss2: multi-synapse, spike-strength, gradient-only, the default).")
@click.option("--weight-copies", type=WEIGHT_COPIES,
              help="Spread each weight over up to K synapses on K rows, so that their mismatch averages out "
                   "(K events per spike); each layer uses as many as its free drivers allow. "
                   "Default 1, or what `itl` trained the model with.")
@click.option("--chips", type=int, default=None, metavar="K",
              help="Partition the network over K chips (whole layers per chip, then split layers; spikes between "
                   "chips go through the FPGAs) and write a multi-chip deployment. Default: one chip.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def map_command(model: str, target: str, output: str | None, check: bool, clip_quantile: float,
                weight_scale: str, calibration: str | None, delays: str | None, weight_copies: int | None,
                chips: int | None, as_json: bool) -> None:
    """Map a model onto a target: quantise, place, route; print the report.

    Example: neurodeploy map yinyang.pt --target bss2 -o yinyang.npz
    """
    from .workflows.map import check_model, map_model

    if check:
        result = _guarded(lambda: check_model(model, target, delays, weight_copies, clip_quantile, weight_scale,
                                              calibration, chips))
        _emit(result, as_json, lambda r: "\n".join(
            [f"{v['rule']}: layer '{v['layer']}' needs {v['needed']} {v['what']}, available {v['available']} "
             f"(fix: {v['fix']})" for v in r["violations"]] + [f"warning: {w}" for w in r["warnings"]]
            + [f"fits {r['target']}" if r["fits"] else f"{len(r['violations'])} violation(s)"]))
        sys.exit(0 if result["fits"] else 2)
    try:
        result = map_model(model, target, output, clip_quantile, weight_scale, calibration, delays, weight_copies,
                           chips)
    except NeurodeployError as error:
        if as_json and isinstance(error, DoesNotFitError):
            click.echo(json.dumps({"schema": f"neurodeploy.map/{JSON_SCHEMA_VERSION}", "fits": False,
                                   "violations": [v.to_dict() for v in error.violations]}))
        return _fail(error)
    _emit(result, as_json, _map_report_text)
    if output is None and not as_json:
        click.echo("note: no -o given, nothing was written", err=True)


@main.command()
@click.argument("deployment", type=click.Path())
@click.option("--backend", default="mock:ideal", show_default=True,
              help="software (any target), a BSS-2 one (mock:ideal, mock:CHIP e.g. mock:0 or mock:0:noise=off, "
                   "a range of chips mock:0-4, hxtorch) or another target's (`neurodeploy targets` lists them).")
@click.option("--data", help="Split name (test, train, validation) or a .npz file with x [N, F] and y [N].")
@click.option("--calibration", type=click.Path(),
              help="Use this chip calibration's codes (must be the backend's chip); for a range of chips a "
                   "pattern, e.g. calibration/mock-{chip}.yaml.")
@click.option("--repeat", default=1, show_default=True, type=REPEAT,
              help="Run each chip this many times; with several runs the accuracy is mean ± std and the 95 % "
                   "interval of the mean.")
@click.option("--record", "what", is_flag=False, flag_value="spikes,membrane", default=None, metavar="WHAT",
              help="Record the first samples, with the software model's beside them, into -o FILE (.npz; plot it "
                   "with `neurodeploy plot`). WHAT, comma-separated (alone: spikes,membrane): spikes; "
                   "membrane[:NEURONS] (CADC of NEURONS, the first also by MADC); current[:NEURON] (its synaptic "
                   "input by MADC). NEURONS: a layer (hidden), hidden/0-9, or neuron ids 0-9.")
@click.option("--record-samples", default=100, show_default=True, type=click.IntRange(1, 10_000),
              help="Samples to record.")
@click.option("-o", "--output", type=click.Path(), help="Recording to write (with --record).")
@click.option("--plot", "plot_dir", type=click.Path(),
              help="Write figures (PNG) into this folder: accuracy per chip, placement map, weight codes per layer; "
                   "with --record, the recording's raster and membranes too.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def run(deployment: str, backend: str, data: str | None, calibration: str | None, repeat: int, what: str | None,
        record_samples: int, output: str | None, plot_dir: str | None, as_json: bool) -> None:
    """Run a deployment on a backend and report its accuracy.

    Example: neurodeploy run yinyang.npz --backend mock:0 --calibration calibration/0.yaml
    Example: neurodeploy run yinyang.npz --backend mock:0-4 --calibration calibration/mock-{chip}.yaml --repeat 5
    Example: neurodeploy run yinyang.npz --backend mock:0 --calibration cal.yaml --record -o rec.npz
    Example: neurodeploy run yinyang.npz --backend mock:0 --record spikes,membrane:hidden/0-9,current -o rec.npz
    """
    from .workflows.run import run as run_deployment

    if what is not None or output is not None:
        _record(deployment, backend, data, calibration, repeat, what, record_samples, output, plot_dir, as_json)
        return
    result = _guarded(lambda: run_deployment(deployment, backend, data, progress=_progress(as_json),
                                             calibration=calibration, repeat=repeat, plot_dir=plot_dir))
    _emit(result, as_json, _run_text)
    for warning in result.get("warnings", []):
        click.echo(f"warning: {warning}", err=True)


def _record(deployment: str, backend: str, data: str | None, calibration: str | None, repeat: int,
            what: str | None, samples: int, output: str | None, plot_dir: str | None, as_json: bool) -> None:
    """``run --record -o FILE``: one backend, one run."""
    from .workflows.record import record as record_run

    def checked() -> dict:
        if what is None or output is None:
            raise NeurodeployError("--record and -o go together", "give both: --record -o rec.npz")
        if repeat != 1:
            raise NeurodeployError("--record runs once", "leave out --repeat")
        return record_run(deployment, output, backend, data, samples, calibration, what, plot_dir)

    result = _guarded(checked)
    _emit(result, as_json, lambda r: (f"{r['backend']}: {r['samples']} samples recorded ({r['spikes']} spikes; "
                                      f"software {r['software_spikes']}), accuracy on them "
                                      f"{_percent(r['accuracy'])} → {r['output']}" + _figures_text(r)))


@main.command("plot")
@click.argument("recording", type=click.Path())
@click.option("-o", "--output", "folder", required=True, type=click.Path(), help="Folder for the figures (PNG).")
@click.option("--sample", default=0, show_default=True, type=click.IntRange(min=0), help="Which recorded sample.")
def plot_command(recording: str, folder: str, sample: int) -> None:
    """Draw a recording: spike raster (chip over software), readout and hidden membranes (chip's CADC and MADC
    against software), synaptic current.

    Example: neurodeploy plot rec.npz -o plots/
    """
    from .workflows.figures import recording_figure_files

    draw = lambda: recording_figure_files(recording, Path(folder), sample)  # noqa: E731
    for path in _guarded(draw):
        click.echo(f"wrote {path}")


@main.command("report")
@click.argument("deployment", type=click.Path())
@click.argument("recordings", nargs=-1, type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(), help="HTML page to write (.html).")
@click.option("--run", "runs", multiple=True, type=click.Path(), metavar="RUN.json",
              help="A result of `neurodeploy run ... --json` (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def report_command(deployment: str, recordings: tuple[str, ...], output: str, runs: tuple[str, ...],
                   as_json: bool) -> None:
    """One self-contained HTML page of a deployment: mapping report, resources, design rules, placement map,
    quantisation histograms, and the given recordings (run --record) and run results (run --json).

    Example: neurodeploy report yy.npz rec.npz --run run.json -o report.html
    """
    from .workflows.report import write_report

    result = _guarded(lambda: write_report(deployment, list(recordings), output, list(runs)))
    _emit(result, as_json, lambda r: (f"report of {r['target']} deployment: {len(r['sections'])} sections, "
                                      f"{r['figures']} figures, {r['bytes'] / 1024:.0f} kB → {r['output']}"))


def _figures_text(r: dict) -> str:
    return "".join(f"\nwrote {path}" for path in r.get("figures", []))


def _run_text(r: dict) -> str:
    if "per_backend" not in r:
        return (f"{r['backend']}: accuracy {_percent(r['accuracy'])} on {r['n_samples']} samples; events "
                f"{r['counters']}" + _figures_text(r))
    lines = [f"{r['backend']}, {r['repeat']} run(s) per chip on {r['n_samples']} samples: accuracy {r['summary']}"]
    lines += [f"  {name}: {chip['summary']}" for name, chip in r["per_backend"].items()]
    if "across_chips" in r:
        lines.append(f"across chips (chip means): {r['across_chips']['summary']}")
    return "\n".join(lines) + _figures_text(r)


@main.command("calibrate")
@click.option("--backend", required=True,
              help="The chip: mock:CHIP (e.g. mock:0) or hxtorch; a range of chips, e.g. mock:0-15, with -o and --plot "
                   "patterns containing {chip}.")
@click.option("--target", default="bss2", show_default=True, help="Target name or spec file.")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE",
              help="Override a target (hardware units), e.g. --set tau_mem_s=6e-6; repeatable.")
@click.option("-o", "--output", type=click.Path(), help="Calibration file to write (.yaml).")
@click.option("--seed", default=0, show_default=True, type=SEED, help="Seed of the searches' random start offsets.")
@click.option("--plot", "plot_dir", type=click.Path(), help="Write before/after histograms (PNG) here.")
@click.option("--workers", default=1, show_default=True, type=WORKERS,
              help="With a range of chips: calibrate this many at once, each in its own process.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def calibrate_command(backend: str, target: str, sets: tuple[str, ...], output: str | None, seed: int,
                      plot_dir: str | None, workers: int, as_json: bool) -> None:
    """Calibrate every neuron of a chip (leak, reset, threshold, time constants, synaptic strength, refractory).

    Example: neurodeploy calibrate --backend mock:0 --target bss2 -o calibration/0.yaml
    Example: neurodeploy calibrate --backend mock:0-15 -o 'calibration/mock-{chip}.yaml' --workers 2
    """
    from .workflows.calibrate import calibrate_chips, parse_sets

    result = _guarded(lambda: calibrate_chips(backend, target, parse_sets(sets), output, seed, plot_dir, workers,
                                              progress=_progress(as_json)))
    if "chips" in result:
        _emit(result, as_json, lambda r: "\n".join(_calibration_text(chip) for chip in r["chips"])
              + f"\n{len(r['chips'])} chips in {r['seconds']:.1f} s with {r['workers']} worker(s)")
        return
    _emit(result, as_json, _calibration_text)
    if output is None and not as_json and not result.get("nothing_to_calibrate"):
        click.echo("note: no -o given, nothing was written", err=True)


def _calibration_text(r: dict) -> str:
    if r.get("nothing_to_calibrate"):
        return r["message"]
    lines = [f"chip {r['chip']} ({r['backend']}): {r['calibrated']}/{r['neurons']} neurons calibrated in "
             f"{r['seconds']:.1f} s, {r['measurement_rounds']} measurement rounds",
             f"{'parameter':28s} {'target':>10s} {'spread before':>14s} {'after':>10s} {'ratio':>7s}"]
    for name, row in r["parameters"].items():
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.3f}"
        lines.append(f"{name:28s} {r['targets'][name]:>10.4g} {row['spread_before']:>14.4g} "
                     f"{row['spread_after']:>10.4g} {ratio:>7s}")
    lines.append("spread: std in CADC LSB for potentials, std/mean for time constants and gain (5 % trimmed)")
    if r["output"]:
        lines.append(f"wrote {r['output']}")
    return "\n".join(lines)


@main.command("itl")
@click.argument("model", type=click.Path())
@click.option("--backend", required=True, help="The chip: mock:CHIP (e.g. mock:0), hxtorch, or software; "
                                                "several chips at once: mock:0-3.")
@click.option("--target", default="bss2", show_default=True, help="Target name or spec file.")
@click.option("--calibration", type=click.Path(),
              help="Calibration file of the backend's chip; for several chips a pattern, cal/mock-{chip}.yaml.")
@click.option("-o", "--output", required=True, type=click.Path(), help="Model file to write (.pt).")
@click.option("--epochs", default=2, show_default=True, type=EPOCHS, help="Epochs over the training samples.")
@click.option("--train-samples", type=click.IntRange(min=1), help="Use the first N training samples (default: all).")
@click.option("--learning-rate", default=3e-3, show_default=True, type=FiniteRange(0, 1, min_open=True),
              help="AdamW step size (model weight units).")
@click.option("--weight-copies", type=WEIGHT_COPIES,
              help="Map with up to K synapses per weight, as `map --weight-copies` (kept in the output model). "
                   "Default: what the model was trained in the loop with before, else 1.")
@click.option("--delays", default=None, metavar="STRATEGY",
              help="How the model's learned delays are realised, as `map --delays` (kept in the output model).")
@click.option("--uncalibrated", is_flag=True,
              help="Train on a chip with analog mismatch without --calibration, on purpose (otherwise refused).")
@click.option("--method", type=click.Choice(["surrogate", "asf"]), default="surrogate", show_default=True,
              help="surrogate: the chip's spikes and membranes in the model's forward pass, surrogate gradients; "
                   "asf: the chip's spike counters only, Accumulated Spiking Flow's gradients (docs/asf.md).")
@click.option("--resume", is_flag=True, help="Continue from OUTPUT.checkpoint after an interruption.")
@click.option("--nproc", default=1, show_default=True, type=click.IntRange(min=1),
              help="Processes driving the chips of a --backend range (mock:0-3), at most one per chip.")
@click.option("--plot", "plot_dir", type=click.Path(), help="Write figures (PNG) into this folder (matplotlib).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def itl_command(model: str, backend: str, target: str, calibration: str | None, output: str, epochs: int,
                train_samples: int | None, learning_rate: float, weight_copies: int | None, delays: str | None,
                uncalibrated: bool, method: str, resume: bool, nproc: int, plot_dir: str | None,
                as_json: bool) -> None:
    """Fine-tune a model with the chip in the loop (forward on the chip, gradients from the model).

    Example: neurodeploy itl yinyang.pt --target bss2 --backend mock:0 --calibration cal/0.yaml -o yy-0.pt

    Several chips at once, one set of weights: --backend mock:0-3 --calibration 'cal/mock-{chip}.yaml'.
    """
    from .workflows.itl import itl

    result = _guarded(lambda: itl(model, output, backend=backend, target=target, calibration=calibration,
                                  epochs=epochs, train_samples=train_samples, learning_rate=learning_rate,
                                  weight_copies=weight_copies, delays=delays, uncalibrated=uncalibrated,
                                  resume=resume, plot_dir=plot_dir, method=method, nproc=nproc,
                                  progress=_progress(as_json)))
    _emit(result, as_json, _itl_text)


def _itl_text(r: dict) -> str:
    chips = [f"  {c['backend']}: test accuracy {_percent(c['test_accuracy_before'])} → "
             f"{_percent(c['test_accuracy_after'])}, validation {_percent(c['validation_accuracy_before'])} → "
             f"{_percent(c['validation_accuracy_after'])}" for c in r.get("chips", [])]
    spread = ("" if "chips" not in r else f" (mean of {len(r['chips'])} chips; spread "
              f"{_percent(r['test_accuracy_spread_before'])} → {_percent(r['test_accuracy_spread_after'])})")
    return "\n".join(chips + [
        f"{r['backend']}: validation accuracy on the chip {_percent(r['validation_accuracy_before'])} → "
        f"{_percent(r['validation_accuracy_after'])} (epoch {r['kept_epoch']} of {r['epochs']} kept); "
        f"test accuracy before {_percent(r['test_accuracy_before'])}, after {_percent(r['test_accuracy_after'])}"
        f"{spread} → {r['output']}" + _figures_text(r)])


@main.command("learn")
@click.argument("model", type=click.Path())
@click.option("--program", required=True, type=click.Path(),
              help="Plasticity program (YAML, format neurodeploy.plasticity; docs/plasticity.md).")
@click.option("--backend", required=True, help="The chip: mock:CHIP (e.g. mock:0) or mock:ideal.")
@click.option("--target", default="bss2", show_default=True, help="Target name or spec file.")
@click.option("--calibration", type=click.Path(), help="Calibration file of the backend's chip.")
@click.option("-o", "--output", required=True, type=click.Path(), help="Model file to write (.pt).")
@click.option("--epochs", default=1, show_default=True, type=EPOCHS, help="Passes over the training samples.")
@click.option("--train-samples", type=click.IntRange(min=1), help="Use the first N training samples (default: all).")
@click.option("--weight-copies", type=WEIGHT_COPIES, help="Synapses per weight, as `map --weight-copies`.")
@click.option("--seed", default=0, show_default=True, type=SEED, help="Seed of the program's random numbers.")
@click.option("--uncalibrated", is_flag=True, help="Learn on a chip with mismatch without --calibration.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def learn_command(model: str, program: str, backend: str, target: str, calibration: str | None, output: str,
                  epochs: int, train_samples: int | None, weight_copies: int | None, seed: int, uncalibrated: bool,
                  as_json: bool) -> None:
    """Learn on the chip: a plasticity program rewrites the weights between time slices (as a PPU would).

    Example: neurodeploy learn net.pt --program stdp.yaml --backend mock:0 --calibration cal.yaml -o learned.pt
    """
    from .workflows.learn import learn

    result = _guarded(lambda: learn(model, program, output, backend=backend, target=target, calibration=calibration,
                                    epochs=epochs, train_samples=train_samples, weight_copies=weight_copies,
                                    seed=seed, uncalibrated=uncalibrated, progress=_progress(as_json)))
    _emit(result, as_json, lambda r: (
        f"{r['backend']}: {r['slices']} slices of {r['program']} on {', '.join(r['projections'])}, "
        f"{r['synapses_rewritten']} synapse writes in {r['seconds']:.0f} s; mean weight (LSB) "
        + ", ".join(f"{k} {r['mean_weight_lsb_before'][k]:.1f} → {v:.1f}"
                    for k, v in r["mean_weight_lsb_after"].items()) + f" → {r['output']}"))


@main.command("import")
@click.argument("graph", type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(), help="Model file to write (.pt).")
@click.option("--dt-s", type=FiniteRange(min=0, min_open=True),
              help="Seconds per step (default: the graph's metadata, else 1e-3).")
@click.option("--like", metavar="RECIPE", help="Take dataset and input encoding from this recipe (name or file).")
@click.option("--tau-scale", default=1.0, show_default=True, type=FiniteRange(min=0, min_open=True),
              help="Multiply every time constant (Norse 1.1 writes them 1000x too small: 1000).")
@click.option("--reset", type=click.Choice(["graph", "subtract"]), default="graph", show_default=True,
              help="subtract: spiking neurons subtract the threshold (snnTorch 1.0's default, written as v_reset=0).")
@click.option("--discretisation", type=click.Choice(["auto", "nir-euler", "native"]), default="auto",
              show_default=True, help="How the model simulates the graph (docs/nir.md).")
@click.option("--readout", type=click.Choice(["graph", "membrane"]), default="graph", show_default=True,
              help="membrane: a spiking last layer becomes a readout scored by its membrane (snnTorch writes no LI).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def import_command(graph: str, output: str, dt_s: float | None, like: str | None, tau_scale: float, reset: str,
                   discretisation: str, readout: str, as_json: bool) -> None:
    """Import a NIR graph (snnTorch, Norse, Sinabs, Rockpool, lava-dl, ...) as a model file.

    Example: neurodeploy import net.nir -o net.pt --like yinyang
    """
    from .workflows.interchange import import_model

    result = _guarded(lambda: import_model(graph, output, dt_s=dt_s, like=like, tau_scale=tau_scale, reset=reset,
                                           discretisation=discretisation, readout=readout))
    _emit(result, as_json, lambda r: f"{' -> '.join(f'{n} ({k} {s})' for n, k, s in r['populations'])}; "
                                     f"dt {r['dt_s']:g} s, {r['discretisation']} → {r['output']}")
    for warning in result["warnings"]:
        click.echo(f"warning: {warning}", err=True)


@main.command("export")
@click.argument("model", type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(), help="NIR graph (.nir) or PyNN script (.py).")
@click.option("--lossy", is_flag=True, help="Drop what NIR cannot express (refractory period, ...) instead of failing.")
@click.option("--format", "fmt", default="nir", show_default=True,
              help="nir: a NIR graph of a model file; pynn: a PyNN script of a model file or a deployment (.npz).")
@click.option("--samples", default=100, show_default=True, type=int,
              help="--format pynn: test samples in the script (1..100000).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def export_command(model: str, output: str, lossy: bool, fmt: str, samples: int, as_json: bool) -> None:
    """Export a model file as a NIR graph, or a model or deployment as a PyNN script (docs/pynn.md).

    Example: neurodeploy export yy.pt -o yy.nir; neurodeploy export yy.npz --format pynn -o yy_pynn.py
    """
    from .workflows.interchange import export_model

    def export() -> dict:
        if fmt == "pynn" and lossy:
            raise NeurodeployError("--lossy applies to --format nir", "leave --lossy out for --format pynn")
        return export_model(model, output, lossy=lossy, fmt=fmt, samples=samples)

    result = _guarded(export)
    _emit(result, as_json, lambda r: f"wrote {r['output']} (dt {r['dt_s']:g} s, {r['discretisation']})")


@main.command()
@click.argument("file", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def inspect(file: str, as_json: bool) -> None:
    """Say what a file is (recipe, model, deployment, target) and summarise it.

    Example: neurodeploy inspect yinyang.pt
    """
    from .workflows.inspect import inspect_file

    result = _guarded(lambda: inspect_file(file))
    _emit(result, as_json, lambda r: "\n".join(f"{k}: {v}" for k, v in r.items()))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def targets(as_json: bool) -> None:
    """List the targets and their limits.

    Example: neurodeploy targets
    """
    from .workflows.targets import list_targets

    rows = _guarded(list_targets)
    _emit({"targets": rows}, as_json, lambda r: "\n\n".join(
        f"{t['name']}: {t['description']}\n" + "\n".join(f"  {k}: {v}" for k, v in t["limits"].items())
        + f"\n  backends: {', '.join(t['backends'])}" for t in r["targets"]))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def doctor(as_json: bool) -> None:
    """Report versions, which LIF kernel path runs and why, and the available backends.

    Example: neurodeploy doctor
    """
    from .workflows.doctor import doctor as run_doctor

    _emit(_guarded(run_doctor), as_json, lambda r: "\n".join(f"{k}: {v}" for k, v in r.items()))


if __name__ == "__main__":
    main()
