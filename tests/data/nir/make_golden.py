"""Write the golden NIR graphs of tests/test_nir.py (run once; the .nir files are committed).

    python tests/data/nir/make_golden.py   # needs snntorch==1.0.0, norse==1.1.0, nirtorch==2.6, nir==1.0.8

Each graph is what the peer's own exporter writes for a small network with fixed seeds, slips
included (docs/nir.md): snnTorch 1.0 writes v_reset = 0 for its default subtractive reset, and
Norse 1.1 writes dt*tau as tau. ``handmade.nir`` is built with the nir package alone and covers
what the exporters do not write: Delay, Scale, a skip connection, an IF layer, a CubaLI readout,
per-neuron potentials and a recurrent loop outside a subgraph.
"""

from __future__ import annotations

from pathlib import Path

import nir
import numpy as np
import torch

HERE = Path(__file__).resolve().parent


def snntorch_graphs() -> dict[str, nir.NIRGraph]:
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(1)
    hidden, out = 10, 3
    # snnTorch 1.0 exports scalar beta/alpha as 0-d arrays that nir's type inference refuses: per-neuron tensors.
    feed_forward = torch.nn.Sequential(
        torch.nn.Linear(4, hidden),
        snn.Synaptic(alpha=torch.linspace(0.6, 0.9, hidden), beta=torch.linspace(0.8, 0.95, hidden),
                     threshold=torch.full((hidden,), 0.5), init_hidden=True),
        torch.nn.Linear(hidden, out),
        snn.Leaky(beta=torch.full((out,), 0.9), threshold=torch.full((out,), 0.5), init_hidden=True, output=True))
    recurrent = torch.nn.Sequential(
        torch.nn.Linear(4, 8),
        snn.RLeaky(beta=torch.full((8,), 0.85), threshold=torch.full((8,), 0.5), linear_features=8,
                   init_hidden=True),
        torch.nn.Linear(8, out),
        snn.Leaky(beta=torch.full((out,), 0.9), threshold=torch.full((out,), 0.5), init_hidden=True, output=True))
    return {name: export_to_nir(net, torch.zeros(1, 4), ignore_dims=[0])
            for name, net in (("snntorch_ff", feed_forward), ("snntorch_rec", recurrent))}


def norse_graphs() -> dict[str, nir.NIRGraph]:
    import norse.torch as norse
    from norse.torch.utils.export_nir import to_nir

    torch.manual_seed(2)
    feed_forward = norse.SequentialState(
        torch.nn.Linear(4, 12), norse.LIFBoxCell(), torch.nn.Linear(12, 6), norse.LIFCell(),
        torch.nn.Linear(6, 3), norse.LIBoxCell())
    integrate_and_fire = norse.SequentialState(
        torch.nn.Linear(4, 10), norse.IAFCell(), torch.nn.Linear(10, 3), norse.LIFBoxCell())
    with torch.no_grad():  # Norse's default initialisation is too weak for the spikes to matter in a test
        for net, gains in ((feed_forward, (15.0, 40.0, 4.0)), (integrate_and_fire, (2500.0, 60.0))):
            for layer, gain in zip([m for m in net if isinstance(m, torch.nn.Linear)], gains):
                layer.weight.mul_(gain)  # IF: Euler's v += dt * r * y needs 1/dt times the weight of Norse's v += y
    return {name: to_nir(net, torch.zeros(1, 4))
            for name, net in (("norse_ff", feed_forward), ("norse_if", integrate_and_fire))}


def handmade() -> nir.NIRGraph:
    rng = np.random.default_rng(3)
    w = lambda rows, cols, scale=1.0: rng.normal(0.0, scale, (rows, cols))  # noqa: E731
    nodes = {
        "in": nir.Input(input_type={"input": np.array([5])}),
        "fc1": nir.Affine(weight=w(8, 5, 1.5), bias=rng.normal(0.0, 0.1, 8)),
        "lif1": nir.CubaLIF(tau_syn=np.full(8, 4e-3), tau_mem=rng.uniform(8e-3, 12e-3, 8), r=np.full(8, 2.0),
                            v_leak=rng.uniform(-0.2, 0.0, 8), v_threshold=np.full(8, 1.0),
                            v_reset=rng.uniform(-0.3, -0.1, 8), w_in=np.full(8, 3.0)),
        "rec": nir.Linear(weight=w(8, 8, 0.3)),
        "fc2": nir.Linear(weight=w(6, 8, 1.2)),
        "delay": nir.Delay(delay=np.array([0.0, 1e-3, 2e-3, 0.0, 3e-3, 1e-3])),
        "if2": nir.IF(r=np.full(6, 400.0), v_threshold=np.full(6, 1.0), v_reset=np.zeros(6)),
        "skip": nir.Linear(weight=w(6, 5, 0.5)),
        "scale": nir.Scale(scale=np.full(6, 2.0)),
        "fc3": nir.Linear(weight=w(3, 6, 1.0)),
        "readout": nir.CubaLI(tau_syn=np.full(3, 5e-3), tau_mem=np.full(3, 1e-2), r=np.ones(3), v_leak=np.zeros(3),
                              w_in=np.full(3, 5.0)),
        "out": nir.Output(output_type={"output": np.array([3])}),
    }
    edges = [("in", "fc1"), ("fc1", "lif1"), ("lif1", "rec"), ("rec", "lif1"), ("lif1", "fc2"), ("fc2", "delay"),
             ("delay", "if2"), ("in", "skip"), ("skip", "scale"), ("scale", "if2"), ("if2", "fc3"), ("fc3", "readout"),
             ("readout", "out")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def main() -> None:
    graphs = {**snntorch_graphs(), **norse_graphs(), "handmade": handmade()}
    for name, graph in graphs.items():
        # Norse writes 0-d parameters, which nir.write's default gzip compression refuses: write uncompressed.
        nir.write(HERE / f"{name}.nir", graph, compression=None)
        print(f"{name}.nir: {sorted(type(n).__name__ for n in graph.nodes.values())}")


if __name__ == "__main__":
    main()
