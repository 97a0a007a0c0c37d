"""``run --record``: what a backend did on a few samples, beside what the software model does on them.

``--record WHAT`` takes a comma-separated list (default ``spikes,membrane``):

* ``spikes``: every logical neuron's spikes;
* ``membrane[:NEURONS]``: the membranes of NEURONS (default all; the readout's are always kept) as the chip
  reads them: its **CADC**, all neurons in parallel, 8 bit, one sample per period (about 2 µs), interpolated
  onto the step grid; and the first of NEURONS through the **MADC** (10 bit, every step, one neuron per run),
  where the backend has one;
* ``current[:NEURON]``: NEURON's synaptic input line through the MADC (a second run: one MADC source per run).

NEURONS is a layer (``hidden``), a range in a layer (``hidden/0-9``, ``hidden/3``) or logical neuron ids
(``0-9``, ``12``).

A recording (``.npz``, format ``neurodeploy.recording`` version 2) holds, for the first ``samples`` samples:

* ``spikes`` ``[T, B, N]`` (uint8) on the backend and ``software_spikes`` of the deployment's float network
  on the same samples (the software backend), neurons in the same order;
* ``membrane`` ``[T, B, R]`` of the neurons ``recorded`` ``[R]`` in **model units** (a reading minus the
  rest potential the deployment asked for, divided by its layer's CADC per model unit, plus the layer's
  ``v_leak``) and ``software_membrane`` of the same neurons; ``software_readout`` ``[T, B, C]``;
* ``madc`` ``[T, B]`` (model units) and ``madc_codes`` (raw 10-bit readings, unrounded on the ideal chip) of
  neuron ``madc_neuron``; MADC codes become CADC units with the chip's calibration (``madc`` of the calibration
  file) or, for an uncalibrated deployment, with a straight-line fit of the same run's unclipped, steady CADC
  samples on them (``meta.madc_scale`` says which);
* ``current``, ``current_codes`` and ``software_current`` ``[T, B]``: the synaptic current
  :math:`I_k = \alpha I_{k-1} + x_k` of neuron ``current_neuron`` in model units;
* ``labels``, ``predictions`` (on the backend), ``neuron_layer``;
* ``meta`` (JSON): backend, chip, layers and their kinds, what was recorded, the model time step (every trace
  shares it: the chip's hardware step is the model's divided by the speed-up), counters.

So chip and software can be overlaid step by step (:mod:`neurodeploy.plots`, ``neurodeploy plot``).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, NamedTuple, Optional

import numpy as np
import torch

from .. import __version__
from ..api import for_backend
from ..atomic import atomic_path, check_output
from ..backends.base import ModelUnits, Observations, Recording, model_units, readout_scores
from ..backends.registry import get_backend
from ..backends.retry import Retrying
from ..backends.software import SoftwareBackend
from ..data.datasets import load_data
from ..data.encoding import encode
from ..deployment import Deployment
from ..errors import FileKindError, NeurodeployError
from ..graph import Graph
from ..validation.loading import load_checked_deployment

FORMAT = "neurodeploy.recording"
VERSION = 2
READABLE_VERSIONS = (1, 2)
MAX_SAMPLES = 10_000
DEFAULT_WHAT = "spikes,membrane"
STEADY_MADC_CODES = 10  # about 2.5 CADC LSB: the MADC scale is fitted where the membrane moves less within ±1 step
_WHAT_FIX = "record e.g. spikes,membrane:hidden/0-9,current:hidden/0 (see `neurodeploy run --help`)"


class RecordSpec(NamedTuple):
    """What ``--record`` asked for, neurons as logical ids."""

    spikes: bool
    membrane: Optional[np.ndarray]  # neurons whose membrane is kept; None: no membranes
    current: Optional[int]  # the neuron whose synaptic current the MADC reads; None: none

    @property
    def madc_neuron(self) -> Optional[int]:
        return None if self.membrane is None else int(self.membrane[0])


def _neurons(selection: str, layers: list[str], sizes: list[int]) -> np.ndarray:
    """``LAYER``, ``LAYER/A-B``, ``LAYER/A``, ``A-B`` or ``A`` → logical neuron ids."""
    if "/" in selection:
        layer, _, span = selection.rpartition("/")
    else:
        layer, span = ("", selection) if re.fullmatch(r"[\d-]+", selection) else (selection, "")
    first, count = 0, sum(sizes)
    if layer:
        if layer not in layers:
            raise NeurodeployError(f"--record: no layer '{layer}' (layers: {', '.join(layers)})", _WHAT_FIX)
        index = layers.index(layer)
        first, count = sum(sizes[:index]), sizes[index]
    if not span:
        return np.arange(first, first + count)
    match = re.fullmatch(r"(\d+)(?:-(\d+))?", span)
    if match is None:
        raise NeurodeployError(f"--record: '{selection}' is not LAYER, LAYER/A-B or A-B", _WHAT_FIX)
    low, high = int(match[1]), int(match[2] or match[1])
    if not low <= high < count:
        raise NeurodeployError(f"--record: neurons {low}-{high} are outside 0-{count - 1}"
                               + (f" of layer '{layer}'" if layer else ""), _WHAT_FIX)
    return np.arange(first + low, first + high + 1)


def parse_what(text: str, layers: list[str], sizes: list[int]) -> RecordSpec:
    """``spikes,membrane[:NEURONS],current[:NEURON]`` (see the module docstring) → a :class:`RecordSpec`."""
    spikes, membrane, current = False, None, None
    for item in (part.strip() for part in text.split(",")):
        name, _, selection = item.partition(":")
        if name == "spikes" and not selection:
            spikes = True
        elif name == "membrane":
            membrane = _neurons(selection, layers, sizes) if selection else np.arange(sum(sizes))
        elif name == "current":
            current = int(_neurons(selection, layers, sizes)[0]) if selection else -1
        else:
            raise NeurodeployError(f"--record: unknown '{item}' (known: spikes, membrane[:NEURONS], current[:NEURON])",
                                   _WHAT_FIX)
    if current == -1:  # the MADC's membrane neuron, else the first neuron
        current = int(membrane[0]) if membrane is not None else 0
    return RecordSpec(spikes, membrane, current)


def _madc_scale(deployment: Deployment, codes: np.ndarray, cadc: Optional[np.ndarray]) -> dict:
    """CADC units per MADC code and offset: the calibration's cross-calibration, else a fit on this run."""
    calibrated = (deployment.meta.get("calibration") or {}).get("madc")
    if calibrated:
        return {"per_code": 1.0 / calibrated["gain"], "offset": -calibrated["offset"] / calibrated["gain"],
                "source": "calibration"}
    if cadc is None or float(np.std(cadc)) < 1.0:
        return {"per_code": math.nan, "offset": math.nan, "source": "none: the neuron's CADC trace is flat"}
    # Fit only where the CADC reads the same thing as the MADC: not clipped at its 8-bit ends, and where the
    # membrane moves little within a step either side (the CADC samples every ~2 µs and is interpolated).
    codes = codes.astype(np.float64)
    padded = np.pad(codes, ((1, 1), (0, 0)), mode="edge")
    neighbours = np.stack([padded[:-2], padded[1:-1], padded[2:]])
    steady = (cadc > 0) & (cadc < 255) & (neighbours.max(0) - neighbours.min(0) < STEADY_MADC_CODES)
    if steady.sum() < 20:
        steady = (cadc > 0) & (cadc < 255)
    if steady.sum() < 2 or float(np.std(codes[steady])) == 0:
        return {"per_code": math.nan, "offset": math.nan, "source": "none: no unclipped CADC samples"}
    # The CADC (8 bit, read noise) regressed on the MADC (10 bit): noise in the dependent variable only.
    per_code, offset = np.polyfit(codes[steady], cadc[steady].astype(np.float64), 1)
    return {"per_code": float(per_code), "offset": float(offset), "source": "fit of this run's CADC samples"}


def _software_current(out: Any, graph: Graph, deployment: Deployment, neuron: int, neuron_layer: np.ndarray,
                      dt_s: float) -> np.ndarray:
    r""":math:`I_k = \alpha I_{k-1} + x_k + (L z_{k-1})_n` of logical neuron ``neuron`` in the float network."""
    layers = deployment.meta["layers"]
    layer = layers[int(neuron_layer[neuron])]
    index = neuron - int(np.flatnonzero(neuron_layer == neuron_layer[neuron])[0])
    x = out.layer_inputs[layer][..., index].double()
    recurrent = graph.recurrent(layer)
    if recurrent is not None:
        lateral = torch.as_tensor(deployment.float_weights()[recurrent.name][index], dtype=torch.float64)
        z = out.spikes[layer].double()
        x = x + torch.cat([torch.zeros_like(z[:1]), z[:-1]]) @ lateral
    tau_syn_s = graph.population(layer).parameters.tau_syn_s
    alpha, current, samples = math.exp(-dt_s / float(tau_syn_s)), torch.zeros_like(x[0]), []
    for x_k in x.unbind(0):
        current = alpha * current + x_k
        samples.append(current)
    return torch.stack(samples).numpy().astype(np.float32)


def record(deployment_path: str | Path, output: str | Path, backend: str = "mock:ideal", data: Optional[str] = None,
           samples: int = 100, calibration: Optional[str | Path] = None, what: str = DEFAULT_WHAT,
           plot_dir: Optional[str | Path] = None) -> dict:
    """Run the first ``samples`` samples on ``backend`` and in software, and write the recording ``output``
    (with ``plot_dir``, and its figures of sample 0, the placement map and the weight codes)."""
    from .figures import check_plot_dir, recording_figure_files, run_figures  # figures read recordings

    check_output(output, (deployment_path, calibration))
    folder = check_plot_dir(plot_dir)
    if not 1 <= samples <= MAX_SAMPLES:
        raise NeurodeployError(f"--record-samples {samples} is outside 1..{MAX_SAMPLES}", "record fewer samples")
    loaded = load_checked_deployment(deployment_path)
    if "graph" not in loaded.meta:
        raise FileKindError(f"{deployment_path} is a chip experiment, not a model's deployment",
                            "record a deployment made by `neurodeploy map`")
    graph = Graph.from_dict(loaded.meta["graph"])
    layers = loaded.meta["layers"]
    sizes = [graph.population(name).size for name in layers]
    spec = parse_what(what, layers, sizes)
    engine = Retrying(get_backend(backend))
    has_madc = "madc" in engine.capabilities
    if spec.current is not None and not has_madc:
        raise NeurodeployError(f"{engine.name} has no MADC to read a synaptic current",
                               "record spikes and membranes only, or use a BSS-2 backend (mock:0, hxtorch)")
    x, y = load_data(loaded.meta["dataset"], data)
    x, y = x[:samples], y[:samples]
    times = encode(x, loaded.meta["encoding"])
    deployment = for_backend(loaded, engine, calibration)
    madc_neuron = spec.madc_neuron if has_madc else None
    obs = engine.run(deployment, times, Recording(
        spikes=True, membrane=True, madc_neuron=None if madc_neuron is None else np.full(len(y), madc_neuron)))
    current_obs = None if spec.current is None else engine.run(deployment, times, Recording(
        spikes=False, membrane=False, madc_neuron=np.full(len(y), spec.current), madc_source="synaptic_input"))
    software = SoftwareBackend()
    reference = software.run(deployment, times, Recording(spikes=True, membrane=True))  # every neuron's membrane
    first, count = deployment.meta["readout_neurons"]
    units = model_units(deployment, obs)
    neuron_layer = units.neuron_layer
    arrays = _membranes(spec, obs, reference, layers, units)
    arrays.update(software_readout=reference.membrane[..., first:first + count].numpy().astype(np.float32),
                  labels=np.asarray(y, np.int64),
                  neuron_layer=neuron_layer.astype(np.int64),
                  predictions=readout_scores(deployment, obs).argmax(1).numpy().astype(np.int64))
    if spec.spikes:
        arrays.update(spikes=obs.spikes.numpy().astype(np.uint8),
                      software_spikes=reference.spikes.numpy().astype(np.uint8))
    madc_scale = None
    if madc_neuron is not None and obs.madc is not None:
        column = int(np.flatnonzero(np.asarray(obs.recorded) == madc_neuron)[0])
        codes = obs.madc.numpy()
        madc_scale = _madc_scale(deployment, codes, obs.membrane[..., column].numpy())
        cadc_units = codes * madc_scale["per_code"] + madc_scale["offset"]
        arrays.update(madc_neuron=np.int64(madc_neuron), madc_codes=codes.astype(np.float32),
                      madc=units.convert(cadc_units[..., None], np.asarray([madc_neuron]),
                                         obs.baseline[column:column + 1])[..., 0])
    if current_obs is not None and current_obs.madc is not None and spec.current is not None:
        neuron = spec.current
        codes = current_obs.madc.numpy()
        if madc_scale is None:
            madc_scale = _madc_scale(deployment, codes, None)
        line = codes * madc_scale["per_code"] + madc_scale["offset"]
        column = int(np.flatnonzero(np.asarray(obs.recorded) == neuron)[0])
        arrays.update(current_neuron=np.int64(neuron), current_codes=codes.astype(np.float32),
                      current=units.convert(line[..., None], np.asarray([neuron]), obs.baseline[column:column + 1],
                                            current=True)[..., 0],
                      software_current=_software_current(software.trace(deployment, times), graph, deployment,
                                                         neuron, neuron_layer, float(deployment.meta["dt_s"])))
    meta = {"format": FORMAT, "version": VERSION, "software_version": __version__, "backend": engine.name,
            "chip": engine.chip_id, "layers": layers, "layer_kinds": deployment.meta["layer_kinds"],
            "time_step_s": float(deployment.meta["dt_s"]), "dataset": deployment.meta["dataset"],
            "samples": int(len(y)), "counters": dict(obs.counters), "deployment": str(deployment_path),
            "what": what, "madc_scale": madc_scale}
    payload: dict[str, Any] = {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays}
    with atomic_path(output) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **payload)
    accuracy = float((arrays["predictions"] == arrays["labels"]).mean())
    summary = {"output": str(output), "backend": engine.name, "samples": int(len(y)), "accuracy": accuracy,
               "spikes": int(obs.spikes.sum()), "software_spikes": int(reference.spikes.sum()),
               "recorded_neurons": int(len(arrays["recorded"])), "madc_neuron": madc_neuron,
               "current_neuron": spec.current, "madc_scale": madc_scale}
    if folder is not None:
        summary["figures"] = recording_figure_files(output, folder) + run_figures(deployment_path, None, folder)
    return summary


def _membranes(spec: RecordSpec, obs: Observations, reference: Observations, layers: list[str],
               units: ModelUnits) -> dict[str, np.ndarray]:
    """The selected neurons' membranes on the backend (model units) and in the float network."""
    wanted = spec.membrane if spec.membrane is not None else np.arange(0)
    readout = np.flatnonzero(units.neuron_layer == len(layers) - 1)  # kept always: the readout overlay and predictions
    wanted = np.concatenate([wanted, readout[~np.isin(readout, wanted)]])
    available = np.asarray(obs.recorded, np.int64)
    recorded = wanted[np.isin(wanted, available)]
    columns = np.searchsorted(available, recorded) if np.all(np.diff(available) > 0) else \
        np.asarray([int(np.flatnonzero(available == n)[0]) for n in recorded], np.int64)
    return {"recorded": recorded.astype(np.int64),
            "membrane": units.convert(obs.membrane[..., columns], recorded, obs.baseline[columns]),
            "software_membrane": reference.membrane[..., recorded].numpy().astype(np.float32)}


def load_recording(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """``(meta, arrays)`` of a recording; anything else is a ``FileKindError``."""
    path = Path(path)
    fix = "write one with `neurodeploy run DEPLOYMENT --record -o rec.npz`"
    if not path.is_file():
        raise FileKindError(f"recording {path} does not exist", fix)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        meta = json.loads(bytes(arrays.pop("meta")).decode())
    except Exception as exc:  # zip, zlib, JSON or a missing entry: a damaged or foreign file
        raise FileKindError(f"{path} is not a readable recording ({type(exc).__name__})", fix) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") not in READABLE_VERSIONS:
        raise FileKindError(f"{path} is not a neurodeploy recording (versions {READABLE_VERSIONS})", fix)
    missing = {"membrane", "recorded", "neuron_layer", "labels"} - set(arrays)
    if missing:
        raise FileKindError(f"recording {path} lacks {sorted(missing)}", fix)
    return meta, arrays
