#!/usr/bin/env python
"""Yin-Yang inference written for pynn_brainscales, run on neurodeploy's emulated BrainScaleS-2.

    python examples/pynn_yinyang.py                                   # train 10 epochs, mock:ideal
    python examples/pynn_yinyang.py --model yy.pt --calibration cal.yaml --samples 200   # mock:0 (the cal's chip)

Two parts. **Preparation** (neurodeploy): a trained Yin-Yang model (``--model``, or trained here from
models/yinyang.yaml) is mapped onto BSS-2 (with the chip's calibration if given); the deployment's integer
synapse weights (0..63, the sign is the row's) and each neuron's synaptic input strength code (``i_bias_synin_gm``)
are what a hardware user takes from a mapping. **The PyNN script** (:func:`pynn_inference`) uses only the
pynn_brainscales API: ``HXNeuron`` populations (hidden: spiking; readout: ``threshold_enable=False``, its membrane
recorded), ``SpikeSourceArray`` inputs, ``FromListConnector`` projections with ``StaticSynapse`` and
``receptor_type``, ``run`` in hardware ms, ``get_data``, ``reset``. It runs on ``neurodeploy.pynn`` as written; on
a BSS-2 system change the import line to ``import pynn_brainscales.brainscales2 as pynn`` and pass a calix
calibration as ``initial_config`` (not tried here: pynn_brainscales is not installable from the package registry;
there the readout membrane comes from the MADC, one neuron per run, so the readout needs three runs per sample).

Printed: accuracy of the PyNN script, accuracy of the same deployment run by neurodeploy itself
(``nd.run``) on the same backend, and how often the two decide alike.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import neurodeploy as nd
import neurodeploy.pynn as pynn  # on BrainScaleS-2: import pynn_brainscales.brainscales2 as pynn
from neurodeploy.data.encoding import encode


def pynn_inference(weights: dict, gm: dict, input_times_ms: np.ndarray, duration_ms: float,
                   initial_config: object = None) -> tuple[np.ndarray, float]:
    """The pynn_brainscales script: readout scores ``[samples, 3]`` (max membrane, CADC) and hidden spikes/sample."""
    pynn.setup(initial_config=initial_config)
    n_in, n_hidden, n_out = input_times_ms.shape[1], weights["hidden"].shape[0], weights["output"].shape[0]
    inputs = pynn.Population(n_in, pynn.cells.SpikeSourceArray(spike_times=[]), label="input")
    hidden = pynn.Population(n_hidden, pynn.cells.HXNeuron(
        excitatory_input_i_bias_gm=gm["hidden"], inhibitory_input_i_bias_gm=gm["hidden"]), label="hidden")
    readout = pynn.Population(n_out, pynn.cells.HXNeuron(
        threshold_enable=False, excitatory_input_i_bias_gm=gm["output"], inhibitory_input_i_bias_gm=gm["output"]),
        label="output")
    hidden.record("spikes")
    readout.record("v")
    for pre, post, w in ((inputs, hidden, weights["hidden"]), (hidden, readout, weights["output"])):
        for receptor, chosen in (("excitatory", w > 0), ("inhibitory", w < 0)):
            rows = [(int(i), int(j), float(abs(w[j, i])), 0.0) for j, i in zip(*np.nonzero(chosen))]
            pynn.Projection(pre, post, pynn.FromListConnector(rows, column_names=["weight", "delay"]),
                            synapse_type=pynn.standardmodels.synapses.StaticSynapse(), receptor_type=receptor)
    scores, spikes = [], 0
    for times in input_times_ms:
        inputs.set(spike_times=[[float(t)] for t in times])
        pynn.run(duration_ms)
        spikes += sum(len(train) for train in hidden.get_data("spikes", clear=True).segments[-1].spiketrains)
        membrane = readout.get_data("v", clear=True).segments[-1].irregularlysampledsignals[0]
        scores.append(np.asarray(membrane.magnitude).max(axis=0))
        pynn.reset()
    pynn.end()
    return np.asarray(scores), spikes / len(input_times_ms)


def from_deployment(deployment: object) -> tuple[dict, dict]:
    """The integer weights ``[post, pre]`` and each neuron's i_bias_synin_gm code, per layer."""
    arrays = deployment.arrays  # type: ignore[attr-defined]
    first = arrays["neuron_circuits"][:, 0]
    layer = arrays["neuron_layer"]
    gm = {name: arrays["code:i_bias_synin_gm"][first[layer == index]].astype(int)
          for index, name in enumerate(deployment.meta["layers"])}  # type: ignore[attr-defined]
    weights = {"hidden": arrays["quantised_weight:input->hidden"], "output": arrays["quantised_weight:hidden->output"]}
    return weights, gm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="a trained Yin-Yang model file (default: train one here)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs when training here")
    parser.add_argument("--calibration", help="a calibration file of mock chip N (then the backend is mock:N)")
    parser.add_argument("--samples", type=int, default=200, help="test samples to classify")
    args = parser.parse_args()

    started = time.time()
    model = nd.load_model(args.model) if args.model else nd.train("yinyang", epochs=args.epochs, seed=0)
    calibration = None
    if args.calibration:
        from neurodeploy.targets.bss2.calibration_file import load_calibration
        calibration = load_calibration(args.calibration)
    deployment = nd.map(model, "bss2", calibration=calibration)
    weights, gm = from_deployment(deployment)
    x, y = nd.load_split("yinyang", "test")
    x, y = x[:args.samples], np.asarray(y[:args.samples])
    speedup = deployment.meta["speedup"]
    times_ms = encode(x, model.encoding) * 1e3 / speedup  # model seconds -> hardware ms
    duration_ms = model.encoding["duration_s"] * 1e3 / speedup
    prepared = time.time()

    scores, hidden_spikes = pynn_inference(weights, gm, times_ms, duration_ms, calibration)
    backend = "mock:ideal" if calibration is None else calibration.backend
    ran = time.time()
    reference = nd.run(deployment, backend, inputs=x, calibration=calibration)
    mine, theirs = scores.argmax(axis=1), reference.predictions.numpy()
    print(f"backend {backend}; {len(y)} test samples; model {'trained here' if not args.model else args.model}")
    print(f"PyNN script (neurodeploy.pynn, HXNeuron): accuracy {100 * float((mine == y).mean()):.1f} %, "
          f"{hidden_spikes:.1f} hidden spikes per sample, {ran - prepared:.1f} s")
    print(f"neurodeploy run of the same deployment:    accuracy {100 * float((theirs == y).mean()):.1f} %")
    print(f"same decision: {100 * float((mine == theirs).mean()):.1f} % of samples "
          f"(preparation {prepared - started:.1f} s)")


if __name__ == "__main__":
    main()
