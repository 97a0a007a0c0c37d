"""The peers themselves (skipped where not installed; the `test` extra pins them): their exporters
still write the committed golden graphs, the slips docs/nir.md names are theirs, and where their
own importers can run a graph, they spike as neurodeploy's import does."""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import logging

import nir
import numpy as np
import pytest
import torch

from test_nir import GOLDEN, run_both


def make_golden():
    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN / "make_golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_same_graph(live: nir.NIRGraph, stored: nir.NIRGraph) -> None:
    assert sorted(map(tuple, live.edges)) == sorted(map(tuple, stored.edges))
    for name, node in live.nodes.items():
        assert type(node) is type(stored.nodes[name]), name
        for field in node.__dataclass_fields__:
            if field not in ("input_type", "output_type", "metadata"):
                expected = np.asarray(getattr(stored.nodes[name], field))
                np.testing.assert_array_equal(np.asarray(getattr(node, field)), expected, err_msg=f"{name}.{field}")


@pytest.mark.parametrize("peer", ["snntorch", "norse"])
def test_peer_exporters_still_write_the_golden_graphs(peer):
    pytest.importorskip(peer)
    graphs = getattr(make_golden(), f"{peer}_graphs")()
    for name, graph in graphs.items():
        assert_same_graph(graph, nir.read(GOLDEN / f"{name}.nir", type_check=False))


def test_the_slips_are_the_peers():
    snn = pytest.importorskip("snntorch")
    norse = pytest.importorskip("norse.torch")
    from norse.torch.utils.export_nir import to_nir
    from snntorch.export_nir import export_to_nir

    leaky = snn.Leaky(beta=torch.full((3,), 0.9), threshold=torch.ones(3), init_hidden=True)
    assert leaky.reset_mechanism == "subtract"  # snnTorch's default ...
    graph = export_to_nir(torch.nn.Sequential(torch.nn.Linear(2, 3), leaky), torch.zeros(1, 2), ignore_dims=[0])
    lif = next(n for n in graph.nodes.values() if isinstance(n, nir.LIF))
    assert np.all(np.asarray(lif.v_reset) == 0)  # ... is written as a reset to 0
    cell = norse.LIFBoxCell()  # tau_mem = 1 / tau_mem_inv = 10 ms ...
    graph = to_nir(norse.SequentialState(torch.nn.Linear(2, 3), cell), torch.zeros(1, 2))
    written = float(next(n for n in graph.nodes.values() if isinstance(n, nir.LIF)).tau)
    assert written == pytest.approx(1e-3 * float(1 / cell.p.tau_mem_inv))  # ... is written as dt * tau = 10 us


def peer_outputs(module, x: np.ndarray) -> np.ndarray:
    state, out = None, []
    for x_k in torch.as_tensor(x, dtype=torch.float32):
        y, state = module(x_k, state)
        out.append(y.detach().double().numpy())
    return np.stack(out)


def test_snntorch_importer_spikes_as_ours():
    pytest.importorskip("snntorch")
    from snntorch.import_nir import import_from_nir

    ours, reference, _ = run_both("snntorch_ff", torch.float32)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its weight-scaling notes
        module = import_from_nir(copy.deepcopy(nir.read(GOLDEN / "snntorch_ff.nir")))
    x = (np.random.default_rng(0).random((60, 8, 4)) < 0.3).astype(float)
    np.testing.assert_array_equal(peer_outputs(module, x), ours["3"])


def test_norse_importer_spikes_as_ours_where_it_can():
    norse = pytest.importorskip("norse.torch")
    graph = nir.read(GOLDEN / "norse_ff.nir", type_check=False)
    for node in graph.nodes.values():  # undo Norse's dt*tau, as tau_scale=1000 does
        for field in ("tau", "tau_mem", "tau_syn"):
            if hasattr(node, field):
                setattr(node, field, np.asarray(getattr(node, field)) * 1000)
    ours, _, _ = run_both("norse_ff", torch.float32)
    x = (np.random.default_rng(0).random((60, 8, 4)) < 0.3).astype(float)
    for last, keep in (("1", {"input", "0", "1"}), ("3", {"input", "0", "1", "2", "3"})):  # Norse drops LI nodes
        nodes = {**{k: v for k, v in graph.nodes.items() if k in keep}, "output": graph.nodes["output"]}
        edges = [e for e in graph.edges if e[0] in keep and e[1] in keep] + [(last, "output")]
        logging.disable(logging.WARNING)  # its notes on r
        try:
            module = norse.from_nir(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), dt=1e-3)
        finally:
            logging.disable(logging.NOTSET)
        np.testing.assert_array_equal(peer_outputs(module, x), ours[last])
