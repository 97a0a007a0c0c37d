r"""The network of a deployment as the ideal mock chip sees it, built and run in Brian2.

The same LIF network as ``mock:ideal`` (:func:`neurodeploy.backends.mock.chip.configure` with no
chip): each logical neuron's own parameters (hardware seconds, CADC LSB), the effective input and
neuron-to-neuron matrices, one step of routing latency per projection, inputs on the hardware step.
Brian2 runs the mock's own discrete update (``neurodeploy.core.lif``), written as a
``run_regularly`` operation each step :math:`k`, with :math:`\alpha = e^{-\Delta t/\tau_{syn}}`,
:math:`\beta = e^{-\Delta t/\tau_{mem}}`:

.. math::
    I_k = \alpha I_{k-1} + x_k, \qquad
    v_k = v_{leak} + \beta (v_{k-1} - v_{leak}) + (1-\beta) I_k \ \text{(or } v_{reset}
    \text{ while refractory)}, \qquad z_k = [v_k > v_{th}],

reset to :math:`v_{reset}` and :math:`\mathrm{round}(t_{ref}/\Delta t)` refractory steps. Events of
step :math:`k` (input or neuron spikes) are added to :math:`x` by synapses without delay, after
that step's update, so they act at :math:`k+1`: the mock's one step of routing latency. Brian2
computes in float64, the mock in float32, so a few samples can differ near a threshold.

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
        v : 1
        I : 1
        x_in : 1
        refractory_steps : integer
        alpha : 1 (constant)
        beta : 1 (constant)
        v_leak : 1 (constant)
        v_th : 1 (constant)
        v_reset : 1 (constant)
        n_ref : integer (constant)
        """
        neurons = b2.NeuronGroup(batch * n, equations, threshold="v > v_th",
                                 reset="v = v_reset; refractory_steps = n_ref", name="neurons")
        leaky_step = "v_leak + beta * (v - v_leak) + (1 - beta) * I"
        neurons.run_regularly(f"""
        I = alpha * I + x_in
        x_in = 0
        v = int(refractory_steps > 0) * v_reset + int(refractory_steps <= 0) * ({leaky_step})
        refractory_steps = clip(refractory_steps - 1, 0, refractory_steps)
        """, when="groups", name="lif_step")
        tile = lambda a: np.tile(a, batch)  # noqa: E731
        neurons.alpha = tile(np.exp(-s.dt_s / p["tau_syn_s"]))
        neurons.beta = tile(np.exp(-s.dt_s / p["tau_mem_s"]))
        neurons.v_leak, neurons.v_th, neurons.v_reset = tile(p["v_leak"]), tile(p["v_th"]), tile(p["v_reset"])
        neurons.n_ref = tile(np.round(p["t_ref_s"] / s.dt_s).astype(np.int64))
        neurons.v = tile(p["v_leak"])
        inputs = b2.SpikeGeneratorGroup(batch * channels, [], [] * b2.second, name="inputs")
        objects = [neurons, inputs]
        for name, source, matrix, n_src in (("input_synapses", inputs, s.input_matrix, channels),
                                            ("neuron_synapses", neurons, s.recurrent_matrix, n)):
            i, j, w = _batched_synapses(matrix.numpy().astype(np.float64), batch, n_src, n)
            syn = b2.Synapses(source, neurons, "w : 1 (constant)", on_pre="x_in_post += w", name=name)
            syn.connect(i=i, j=j)
            syn.w = w
            objects.append(syn)
        self.monitor = b2.StateMonitor(neurons, "v", record=True, when="end", name="membrane")  # after the step
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
