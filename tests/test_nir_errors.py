"""Everything a NIR graph can hold that neurodeploy cannot express, and every broken file: one
``InterchangeError`` line that names the node, why, and a fix."""

from __future__ import annotations

from dataclasses import replace

import h5py
import nir
import numpy as np
import pytest

from neurodeploy.errors import InterchangeError
from neurodeploy.interchange import export_nir, import_nir, read_nir
from test_nir import GOLDEN


def lif(n: int = 3, tau=1e-2) -> nir.LIF:
    return nir.LIF(tau=np.full(n, tau), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n))


def li(n: int = 3, **changes) -> nir.LI:
    return nir.LI(tau=np.full(n, 1e-2), r=np.ones(n), v_leak=np.zeros(n), **changes)


def chain(*middle: tuple[str, nir.NIRNode], extra_edges=(), size_in: int = 2) -> nir.NIRGraph:
    """Input -> the given nodes in a row -> Output, unchecked (so broken graphs can be built)."""
    nodes = {"in": nir.Input(input_type={"input": np.array([size_in])}), **dict(middle),
             "out": nir.Output(output_type={"output": np.array([3])})}
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=[*zip(names, names[1:]), *extra_edges], type_check=False)


W = ("w", nir.Linear(weight=np.ones((3, 2))))
CASES = {
    "conv": (chain(("conv", nir.Conv2d(input_shape=None, weight=np.ones((1, 1, 2, 2)), stride=1, padding=0, dilation=1,
                                       groups=1, bias=np.zeros(1))), ("n", li())), r"'conv' \(Conv2d\): convolutions"),
    "pooling": (chain(("pool", nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                             padding=np.array([0, 0]))), ("n", li())),
                r"'pool' \(SumPool2d\): pooling"),
    "threshold": (chain(W, ("th", nir.Threshold(threshold=np.ones(3)))), r"'th' \(Threshold\)"),
    "nan tau": (chain(W, ("n", nir.LI(tau=np.array([1e-2, np.nan, 1e-2]), r=np.ones(3), v_leak=np.zeros(3)))),
                r"'n' \(LI\) has tau \[.*nan.*\] \(not 3 finite values\)"),
    "negative tau": (chain(W, ("n", lif(tau=-1e-2))), r"'n' \(LIF\) tau = -0.01 s is not a positive time"),
    "tau below dt": (chain(W, ("n", lif(tau=5e-4))), r"tau = 0.0005 s is not longer than dt = 0.001 s"),
    "dangling edge": (chain(W, ("n", li()), extra_edges=[("n", "ghost")]), r"names node 'ghost'"),
    "repeated edge": (chain(W, ("n", li()), extra_edges=[("w", "n")]), r"listed twice"),
    "empty": (nir.NIRGraph(nodes={}, edges=[], type_check=False), r"empty"),
    "two inputs": (None, r"2 Input nodes"),  # built by _complete
    "membrane as input": (chain(W, ("a", li()), ("w2", nir.Linear(weight=np.ones((3, 3)))), ("b", li())),
                          r"'a' \(LI\) does not spike"),
    "linear readout": (chain(W, ("n", lif()), ("w2", nir.Linear(weight=np.ones((3, 3))))),
                       r"Output 'out' is not fed by exactly one neuron node"),
    "loop of two layers": (chain(W, ("a", lif()), ("w2", nir.Linear(weight=np.ones((3, 3)))), ("b", lif()),
                                 extra_edges=[("b", "w3"), ("w3", "a")]), r"the loop through \['a', 'b'\]"),
    "delay off the grid": (chain(W, ("d", nir.Delay(delay=np.full(3, 1.5e-3))), ("n", li())), r"Delay 'd'.*not whole"),
    "recurrent delay": (chain(W, ("a", lif()), extra_edges=[("a", "d"), ("d", "w3"), ("w3", "a")]),
                        r"recurrent loop of node 'a' passes a Delay"),
    "shape": (chain(("w", nir.Linear(weight=np.ones((3, 4)))), ("n", li())), r"'w' \(Linear\) has a weight of shape"),
    "v_th below v_leak": (chain(W, ("n", nir.LIF(tau=np.full(3, 1e-2), r=np.ones(3), v_leak=np.full(3, 2.0),
                                                  v_threshold=np.ones(3)))), r"'n' \(LIF\): v_th .* above v_leak"),
}


def _complete(name: str, graph: nir.NIRGraph) -> nir.NIRGraph:
    if name == "two inputs":
        graph = chain(W, ("n", li()))
        graph.nodes["in2"] = nir.Input(input_type={"input": np.array([2])})
        graph.edges.append(("in2", "w"))
    if name in ("loop of two layers", "recurrent delay"):
        graph.nodes["w3"] = nir.Linear(weight=np.ones((3, 3)))
        graph.nodes["d"] = nir.Delay(delay=np.full(3, 1e-3))
        if name == "recurrent delay":  # a is the readout here: make it feed the Output
            graph.edges = [e for e in graph.edges if e != ("a", "out")] + [("a", "w4"), ("w4", "n")]
            graph.nodes.update(w4=nir.Linear(weight=np.ones((3, 3))), n=li())
            graph.edges.append(("n", "out"))
    return graph


@pytest.mark.parametrize("name", sorted(CASES))
def test_inexpressible_graphs_are_one_line_errors(name):
    graph, match = CASES[name]
    with pytest.raises(InterchangeError, match=match) as error:
        import_nir(_complete(name, graph), dt_s=1e-3)
    line = error.value.one_line()
    assert "\n" not in line and "(fix: " in line and error.value.fix


def test_broken_files_are_one_line_errors(tmp_path):
    (tmp_path / "notes.nir").write_text("hello")
    with h5py.File(tmp_path / "other.h5", "w") as handle:
        handle.create_dataset("x", data=np.ones(3))
    with h5py.File(tmp_path / "unknown.nir", "w") as handle:
        handle.create_group("node").create_dataset("type", data="Hologram")
    truncated = (GOLDEN / "norse_ff.nir").read_bytes()
    (tmp_path / "truncated.nir").write_bytes(truncated[: len(truncated) // 2])
    for path, match in ((tmp_path / "missing.nir", "does not exist"), (tmp_path / "notes.nir", "not HDF5"),
                        (tmp_path / "truncated.nir", "not HDF5"), (tmp_path / "other.h5", "not a NIR graph"),
                        (tmp_path / "unknown.nir", "damaged or unsupported NIR file")):
        with pytest.raises(InterchangeError, match=match) as error:
            read_nir(path)
        assert "\n" not in error.value.one_line() and error.value.fix


def test_a_reader_that_stalls_is_stopped_at_the_deadline(tmp_path, monkeypatch):
    """HDF5 can stall for good in C on a damaged file (scripts/fuzz.py found one): the file is read in a child
    process that is killed at the deadline; a reader that crashes is an error too, and a sound file reads."""
    import os
    import time

    from neurodeploy.interchange import nir_file

    if "fork" not in __import__("multiprocessing").get_all_start_methods():
        pytest.skip("reading with a deadline needs fork (elsewhere the file is read in-process)")
    assert type(nir_file.read_nir_file(GOLDEN / "norse_ff.nir")).__name__ == "NIRGraph"
    monkeypatch.setattr(nir_file, "_read", lambda path: time.sleep(600))  # the forked child inherits it
    started = time.monotonic()
    with pytest.raises(InterchangeError, match="could not be read within 1 s"):
        nir_file.read_nir_file(GOLDEN / "norse_ff.nir", timeout_s=1.0)
    assert time.monotonic() - started < 30
    monkeypatch.setattr(nir_file, "_read", lambda path: os._exit(3))
    with pytest.raises(InterchangeError, match=r"crashed the HDF5 reader \(exit code 3\)"):
        nir_file.read_nir_file(GOLDEN / "norse_ff.nir", timeout_s=30.0)


def test_wrong_sizes_and_shapes_are_one_line_errors():
    """Found by scripts/fuzz.py: a Delay with more values than its input, weights one row short of the neurons
    they feed, an Output of shape 0, parameters that are not numbers."""
    lif = nir.LIF(tau=np.full(3, 1e-2), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3))
    cases = {
        "delay values": (chain(("w", nir.Linear(weight=np.ones((2, 2)))), ("d", nir.Delay(delay=np.full(3, 1e-3))),
                               ("n", li(2))), r"'d' \(Delay\) has 3 delay values for an input of size 2"),
        "rows short": (chain(("w", nir.Linear(weight=np.ones((2, 2)))), ("n", lif)),
                       r"'n' \(LIF\) has 3 neurons but receives a vector of size 2"),
        "string weight": (chain(("w", nir.Linear(weight=np.array([["a", "b"]]))), ("n", li(1))),
                          r"'w' \(Linear\) weight is not an array of numbers"),
    }
    for graph, match in cases.values():
        with pytest.raises(InterchangeError, match=match):
            import_nir(graph, dt_s=1e-3)
    graph = chain(("w", nir.Linear(weight=np.ones((2, 2)))), ("n", li(2)))
    graph.nodes["out"] = nir.Output(output_type={"output": np.array([0])})
    with pytest.raises(InterchangeError, match="Output 'out' has shape"):
        import_nir(graph, dt_s=1e-3)


def test_options_are_checked():
    graph = chain(W, ("n", li()))
    for options, match in (({"reset": "zero"}, "reset 'zero'"), ({"tau_scale": -1.0}, "tau_scale"),
                           ({"dt_s": 0.0}, "dt_s = 0.0"), ({"discretisation": "exact"}, "discretisation 'exact'"),
                           ({"discretisation": "native"}, "not a native model: population 'n' uses model 'leaky'"),
                           ({"dataset": "mnist", "encoding": {}}, "unknown dataset 'mnist'")):
        with pytest.raises(Exception, match=match):
            import_nir(graph, **options)


def test_export_refuses_what_nir_cannot_say():
    model = import_nir(chain(W, ("a", lif()), ("w2", nir.Linear(weight=np.eye(3))), ("n", li())), reset="subtract")
    with pytest.raises(InterchangeError, match="subtractive reset replaced") as error:
        export_nir(model)
    assert "lossy=True" in error.value.fix
    assert "subtractive reset" in export_nir(model, lossy=True).metadata["lossy"]
    blurred = replace(import_nir(chain(W, ("d", nir.Delay(delay=np.full(3, 2e-3))), ("n", li()))),
                      delay_sigma_steps={"in->n": 0.5})
    with pytest.raises(InterchangeError, match="delays hardened"):
        export_nir(blurred)
