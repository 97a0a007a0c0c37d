r"""A model (or a deployment's weights as its chip holds them) as a PyNN network, and as a self-contained script.

**Units.** A model potential :math:`v` (dimensionless) is the PyNN membrane :math:`V = V_0 + u\,v` with
:math:`V_0` = :data:`V0_MV` and :math:`u` = :data:`MV_PER_UNIT`; times are ms. The model's LIF
(:mod:`neurodeploy.core.lif`), :math:`\tau_m \dot v = -(v - v_{leak}) + I` with the current :math:`I` in voltage
units, is PyNN's ``IF_curr_exp``, :math:`c_m \dot V = c_m (V_{rest} - V)/\tau_m + i_{syn}`, with
:math:`V_{rest} = V_0 + u\,v_{leak}` and :math:`I = (\tau_m / c_m)\, i_{syn} / u`. Choosing

.. math:: c_m = \tau_m / u \quad (\text{nF} = \text{ms} / (\text{mV per unit}\cdot \text{M}\Omega)),

one nA of PyNN current is one model unit of :math:`I` (10 ms and 20 mV per unit: 0.5 nF).

**Weights.** The model steps with the current held at its end-of-step value over each step,
:math:`I_k = \alpha I_{k-1} + x_k`, :math:`v_k = v_{leak} + \beta(v_{k-1} - v_{leak}) + (1-\beta) I_k`: a weight
:math:`w` arriving at step :math:`k` is the staircase current :math:`w \alpha^j` over step :math:`k + j`. PyNN's
exponential current :math:`w_{nA} e^{-t/\tau_{syn}}` has the same mean over every step when

.. math:: w_{nA} = w \, \frac{\Delta t / \tau_{syn}}{1 - e^{-\Delta t/\tau_{syn}}},

and so the same charge and stationary membrane; within a step the two differ at second order in
:math:`\Delta t/\tau` (docs/pynn.md measures it). Signs split the weights: positive ones on an ``excitatory``
projection, negative ones (kept negative, as PyNN wants for current-based synapses) on an ``inhibitory`` one.

**Timing.** The model delivers a spike of step :math:`n` to the next layer at step :math:`n + 1`, i.e. as a
current that starts at :math:`t = n \Delta t`; a continuous-time neuron crosses its threshold somewhere in
:math:`((n-1)\Delta t, n\Delta t]`. Input spikes are rounded to the model's step grid (as the model bins them)
and sent one simulator step early, so that with the input projections' delay of one simulator step
:math:`h` their current starts at :math:`n \Delta t`; projections between layers take :math:`\Delta t/2`, the
mean wait from a crossing to the end of its step. Refractoriness: ``tau_refrac`` :math:`= t_{ref}`; the
model clamps :math:`\mathrm{round}(t_{ref}/\Delta t)` steps, the same time.

**Readout.** The ``li`` readout is ``IF_curr_exp`` with a threshold no membrane reaches
(:data:`UNREACHABLE_MV`); its membrane is recorded every :math:`\Delta t` and decoded as the model's
``training.loss`` says (maximum or mean over time).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional
from collections.abc import Mapping

import numpy as np

from ..errors import InterchangeError
from ..graph import Graph

V0_MV = -65.0  # the PyNN membrane of model potential 0
MV_PER_UNIT = 20.0  # mV per model potential unit (threshold 1 → 20 mV above rest)
UNREACHABLE_MV = 1.0e4  # the readout's threshold, far above any membrane it reaches
SIM_STEPS_PER_MODEL_STEP = 10  # the simulator's time step h = Δt / 10


def weight_factor(dt_s: float, tau_syn_s: float) -> float:
    r""":math:`(\Delta t/\tau_{syn}) / (1 - e^{-\Delta t/\tau_{syn}})`: model weight → PyNN nA (module docstring)."""
    ratio = dt_s / tau_syn_s
    return ratio / -math.expm1(-ratio)


def check_exportable(graph: Graph) -> None:
    """Refuse what this exporter does not translate, naming it: delays, recurrence, a non-native discretisation,
    per-neuron parameters, biases, a reset by subtraction."""
    if graph.discretisation != "native":
        raise InterchangeError(f"the PyNN export covers models in the native discretisation, this one is "
                               f"'{graph.discretisation}'", "import the NIR graph with --discretisation native")
    for proj in graph.projections:
        if proj.recurrent:
            raise InterchangeError(f"projection '{proj.name}' is recurrent: the PyNN export has no lateral term",
                                   "export a feed-forward model")
        if proj.max_delay_steps > 0:
            raise InterchangeError(f"projection '{proj.name}' has trained delays: the PyNN export writes none",
                                   "export a model without learned delays")
    for pop in graph.populations[1:]:
        p = pop.parameters
        if p.per_neuron or p.i_bias != 0.0 or p.reset != "value" or p.model != "cuba":
            raise InterchangeError(f"population '{pop.name}' has per-neuron parameters, a bias, a reset by "
                                   "subtraction or a non-CUBA neuron: IF_curr_exp has one value per population",
                                   "export a model with plain LIF/LI layers")


def cell_parameters(graph: Graph, name: str) -> dict[str, float]:
    """``IF_curr_exp`` parameters (ms, mV, nF) of population ``name`` (module docstring)."""
    pop = graph.population(name)
    p = pop.parameters
    tau_m_ms = 1e3 * p.tau_mem_s
    spiking = pop.kind == "lif"
    return {"tau_m": tau_m_ms, "cm": tau_m_ms / MV_PER_UNIT, "tau_syn_E": 1e3 * p.tau_syn_s,
            "tau_syn_I": 1e3 * p.tau_syn_s, "v_rest": V0_MV + MV_PER_UNIT * p.v_leak,
            "v_reset": V0_MV + MV_PER_UNIT * (p.v_reset if spiking else p.v_leak),
            "v_thresh": V0_MV + MV_PER_UNIT * p.v_th if spiking else UNREACHABLE_MV,
            "tau_refrac": 1e3 * p.t_ref_s if spiking else 0.0, "i_offset": 0.0}


def network_description(graph: Graph, weights: Mapping[str, Any], dt_s: float, encoding: Mapping[str, Any],
                        loss: Optional[str]) -> dict:
    """The network in PyNN units (what :mod:`neurodeploy.interchange.pynn_runtime` builds): ``weights`` are
    model-unit ``[post, pre]`` arrays per projection (float, or a deployment's dequantised ones)."""
    check_exportable(graph)
    dt_ms = 1e3 * dt_s
    h_ms = dt_ms / SIM_STEPS_PER_MODEL_STEP
    layers = [{"name": pop.name, "size": pop.size, "kind": pop.kind, "cell_type": "IF_curr_exp",
               "parameters": cell_parameters(graph, pop.name)} for pop in graph.populations[1:]]
    projections = []
    for proj in graph.projections:
        tau_syn_s = graph.population(proj.post).parameters.tau_syn_s
        w = np.asarray(weights[proj.name], dtype=np.float64) * weight_factor(dt_s, tau_syn_s)
        projections.append({"pre": proj.pre, "post": proj.post, "weights_na": np.round(w, 9).tolist(),
                            "delay_ms": h_ms if proj.pre == graph.input.name else dt_ms / 2})
    steps = int(round(encoding["duration_s"] / dt_s))
    return {"dt_ms": dt_ms, "timestep_ms": h_ms, "steps": steps, "v0_mv": V0_MV, "mv_per_unit": MV_PER_UNIT,
            "input": {"name": graph.input.name, "size": graph.input.size}, "layers": layers,
            "projections": projections, "decode": loss or "max_over_time"}


def source_times_ms(times_s: np.ndarray, net: dict) -> np.ndarray:
    """Encoded spike times ``[B, channels]`` (s, NaN: none) → the input population's (ms): on the model's step
    grid, one simulator step early (module docstring); spikes outside the run are dropped (NaN)."""
    dt_ms = net["dt_ms"]
    with np.errstate(invalid="ignore"):
        step = np.round(np.asarray(times_s, np.float64) * 1e3 / dt_ms)
        inside = np.isfinite(step) & (step >= 0) & (step < net["steps"])
    out = np.where(inside, step * dt_ms - net["timestep_ms"], np.nan)
    return np.where(inside & (out < net["timestep_ms"]), net["timestep_ms"], out)


SCRIPT_HEAD = '''#!/usr/bin/env python
"""{title} as a PyNN network: {samples} {dataset} samples, accuracy printed.

Written by `neurodeploy export --format pynn` from {source}. Runs as it is with PyNN 0.13 on Brian2
(`python {name}`). The conversion (model units -> mV, nF, nA; weights; delays) is in
neurodeploy/interchange/pynn_export.py and docs/pynn.md.

On BrainScaleS-2, change only the import line to `import pynn_brainscales.brainscales2 as sim`. What then
differs (NOT tested here: pynn_brainscales is not installable from the package registry):
* cells: the chip has no IF_curr_exp, and this script stops there saying so (it does not guess hardware
  values). The chip's cell is `CalibHXNeuronCuba`, whose PyNN-style parameters calix calibrates on the first
  run: tau_m, tau_syn, tau_refrac in hardware microseconds (the model's times / 1000), potentials in CADC
  units (v_rest, v_reset 50-160, v_thresh 50-220: NET's mV mapped linearly), cm 0-63; or `HXNeuron` with
  a calibration (`initial_config`). neurodeploy's `map --target bss2` computes those hardware settings and
  `neurodeploy run --backend mock:0` emulates them.
* weights: integers 0..63 per synapse (larger values use several synapses); the weights here are nA and
  must be rescaled to the calibrated synaptic gain (a deployment's `quantised_weight:*` arrays are those
  integers).
* delays: pynn_brainscales takes delay 0 only; the chip's routing adds its own latency (~1 us hardware).
* recording: spikes of all neurons, but the membrane (`v`) through the MADC one neuron at a time, in ADC
  units: the readout then needs one run per readout neuron (or CADC recording via the plasticity processor).
* run time is hardware time: `sim.run` takes ms of hardware time, 1000x faster than the model's ms.
"""

import numpy as np

import pyNN.brian2 as sim  # on BrainScaleS-2: import pynn_brainscales.brainscales2 as sim

'''

SCRIPT_TAIL = '''

NET = json.loads(r"""{net}""")
INPUT_TIMES_MS = np.array(json.loads("""{times}"""), dtype=np.float64)  # [samples, channels], NaN: no spike
LABELS = np.array({labels})
COPIES = {copies}  # samples simulated at once, as disjoint copies of the network (1 on a chip)

if __name__ == "__main__":
    if sim.__name__ == "pyNN.brian2":
        import brian2
        brian2.prefs.codegen.target = "numpy"  # no C compiler needed
        brian2.BrianLogger.log_level_warn()
    CELL_TYPE = "IF_curr_exp" if hasattr(sim, "IF_curr_exp") else "CalibHXNeuronCuba"
    if CELL_TYPE != "IF_curr_exp":
        raise SystemExit("this simulator has no IF_curr_exp: convert NET's parameters to its units first "
                         "(see the module docstring)")
    sim.setup(timestep=NET["timestep_ms"], min_delay=NET["timestep_ms"])
    copies = min(COPIES, len(LABELS))
    handles = build(sim, NET, copies)
    spikes, readout = run_samples(sim, NET, handles, INPUT_TIMES_MS)
    predicted = decode(readout, NET["decode"]).argmax(axis=1)
    for name, s in spikes.items():
        print(f"{{name}}: {{s.sum() / len(LABELS):.1f}} spikes per sample")
    print(f"accuracy {{100 * float((predicted == LABELS).mean()):.1f}}% on {{len(LABELS)}} samples")
    sim.end()
'''


def runtime_source() -> str:
    """The text of :mod:`neurodeploy.interchange.pynn_runtime`, which every exported script embeds."""
    text = Path(__file__).with_name("pynn_runtime.py").read_text()
    return text.split("from __future__ import annotations\n", 1)[1]


def script_text(net: dict, times_s: np.ndarray, labels: np.ndarray, *, title: str, source: str, dataset: str,
                name: str, copies: int = 100) -> str:
    """A self-contained PyNN script that runs ``net`` on ``times_s`` (encoded samples) and prints the accuracy."""
    times = source_times_ms(times_s, net)
    rows = [[None if not np.isfinite(t) else round(float(t), 6) for t in row] for row in times]
    head = SCRIPT_HEAD.format(title=title, samples=len(labels), dataset=dataset, source=source, name=name)
    tail = SCRIPT_TAIL.format(net=json.dumps(net), times=json.dumps(rows).replace("null", "NaN"),
                              labels=[int(v) for v in labels], copies=copies)
    body = runtime_source().replace("from typing import Any\n\nimport numpy as np\n", "from typing import Any\n")
    return head.replace("import numpy as np\n\n", "import json\nfrom typing import Any\n\nimport numpy as np\n\n") + \
        "\n" + body.replace("from typing import Any\n", "", 1).lstrip("\n") + tail
