r"""The network of a deployment as the ideal mock chip sees it, built and run in Brian2.

The same LIF network as ``mock:ideal`` (:func:`neurodeploy.backends.mock.chip.configure` with no
chip): each logical neuron's own parameters (hardware seconds, CADC LSB), the effective input and
neuron-to-neuron matrices, one step of routing latency per projection, inputs on the hardware step.
Continuous dynamics, integrated by Brian2 (``method="exact"``):

.. math::
    \tau_{syn}\,\dot I = -I, \qquad \tau_{mem}\,\dot v = v_{leak} - v + I, \qquad
    I \mathrel{+}= w \text{ on each presynaptic event (after one step)},

threshold :math:`v > v_{th}`, reset :math:`v = v_{reset}`, refractory :math:`t_{ref}` (membrane held).
The mock's discrete update (``neurodeploy.core.lif``) adds the step's input before the membrane
update; Brian2 integrates the membrane exactly over the step, so the two agree closely but not
spike for spike: this module exists to compare throughput on the same network, not outputs.

A batch of ``B`` samples is ``B`` disjoint copies of the network in one ``NeuronGroup``: index
``b * N + n`` is neuron ``n`` of sample ``b``. The network is built once; each batch restores the
initial state and replaces the input spikes.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from neurodeploy.backends.mock.chip import ChipState, clock_events, configure
from neurodeploy.deployment import Deployment


def _batched_synapses(matrix: np.ndarray, batch: int, n_sources: int, n_targets: int) -> tuple[np.ndarray, ...]:
    """Indices ``(i, j)`` and weights of ``matrix`` ``[sources, targets]`` repeated for ``batch`` disjoint copies."""
    src, dst = np.nonzero(matrix)
    offset = np.repeat(np.arange(batch), len(src))
    return (np.tile(src, batch) + offset * n_sources, np.tile(dst, batch) + offset * n_targets,
            np.tile(matrix[src, dst], batch))


class Brian2Network:
    """``batch`` copies of a deployment's network in Brian2; :meth:`run` takes ``[batch, channels]`` spike times."""

    def __init__(self, deployment: Deployment, batch: int, target: str = "cython",
                 state: Optional[ChipState] = None) -> None:
        import brian2 as b2  # optional: the ``bench`` extra

        b2.prefs.codegen.target = target
        b2.prefs.logging.std_redirection = False
        self.b2, self.deployment, self.batch = b2, deployment, batch
        self.state = state or configure(deployment)  # the ideal chip
        s, n = self.state, len(self.state.baseline)
        self.dt_s = s.dt_s
        channels = s.input_matrix.shape[0]
        p = {name: np.asarray(value, dtype=np.float64) for name, value in s.params._asdict().items()}
        b2.defaultclock.dt = s.dt_s * b2.second
        equations = """
        dv/dt = (v_leak - v + I) / tau_mem : 1 (unless refractory)
        dI/dt = -I / tau_syn : 1
        v_leak : 1 (constant)
        v_th : 1 (constant)
        v_reset : 1 (constant)
        tau_mem : second (constant)
        tau_syn : second (constant)
        t_ref : second (constant)
        """
        neurons = b2.NeuronGroup(batch * n, equations, threshold="v > v_th", reset="v = v_reset",
                                 refractory="t_ref", method="exact", name="neurons")
        tile = lambda a: np.tile(a, batch)  # noqa: E731
        neurons.v_leak, neurons.v_th, neurons.v_reset = tile(p["v_leak"]), tile(p["v_th"]), tile(p["v_reset"])
        neurons.tau_mem, neurons.tau_syn = tile(p["tau_mem_s"]) * b2.second, tile(p["tau_syn_s"]) * b2.second
        neurons.t_ref = tile(p["t_ref_s"]) * b2.second
        neurons.v = tile(p["v_leak"])
        inputs = b2.SpikeGeneratorGroup(batch * channels, [], [] * b2.second, name="inputs")
        delay = s.dt_s * b2.second  # one step of routing latency per projection, as in the mock
        objects = [neurons, inputs]
        for name, source, matrix, n_src in (("input_synapses", inputs, s.input_matrix, channels),
                                            ("neuron_synapses", neurons, s.recurrent_matrix, n)):
            i, j, w = _batched_synapses(matrix.numpy().astype(np.float64), batch, n_src, n)
            syn = b2.Synapses(source, neurons, "w : 1 (constant)", on_pre="I_post += w", name=name)
            syn.connect(i=i, j=j)
            syn.w = w
            syn.delay = delay
            objects.append(syn)
        self.monitor = b2.StateMonitor(neurons, "v", record=True, name="membrane")
        spikes = b2.SpikeMonitor(neurons, name="spikes")
        objects += [self.monitor, spikes]
        self.inputs, self.spikes, self.channels, self.neurons = inputs, spikes, channels, n
        self.network = b2.Network(*objects)
        self.network.store("initial")

    def run(self, input_times_s: np.ndarray) -> np.ndarray:
        """One batch (model seconds, NaN: no spike) → membrane ``[T, batch, N]`` (CADC LSB)."""
        b2, s, meta = self.b2, self.state, self.deployment.meta
        self.network.restore("initial")
        step, b, c = clock_events(input_times_s, meta["speedup"], meta["clock_period_s"], s.dt_s, s.steps)
        # A small offset keeps each event inside its step despite float rounding of step * dt.
        self.inputs.set_spikes(b * self.channels + c, (step + 1e-3) * s.dt_s * b2.second)
        self.network.run(s.steps * s.dt_s * b2.second)
        v = np.asarray(self.monitor.v)  # [batch * N, T]
        return v.reshape(self.batch, self.neurons, -1).transpose(2, 0, 1)
