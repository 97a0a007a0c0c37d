"""Mutations of NIR graphs (HDF5): parameters, nodes, edges, metadata."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

from .bases import Bases
from .formats import _by_reference, foreign_mutation
from .mutations import Mutant, _Skip, bytes_mutation


def mutate_nir(base: bytes, bases: Bases, rng: random.Random) -> Mutant:
    import h5py
    import numpy as np

    family = rng.choices(["bytes", "h5", "foreign", "identity"], [3, 7, 1, 0.2])[0]
    if family == "identity":
        return Mutant("identity", base)
    if family == "foreign":
        return foreign_mutation("nir", bases, rng)
    if family == "bytes":
        name, data = bytes_mutation(base, rng)
        return _by_reference("nir", base, name, data)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "g.nir"
        path.write_bytes(base)
        with h5py.File(path, "r+") as f:
            nodes = f["node/nodes"]
            node_names = sorted(nodes)
            floats = [(n, k) for n in node_names for k in nodes[n] if isinstance(nodes[n][k], h5py.Dataset)
                      and nodes[n][k].dtype.kind == "f" and nodes[n][k].size]
            op = rng.choice(["nan", "inf", "negative-tau", "zero-tau", "huge", "shape", "drop-node", "unknown-type",
                             "conv-type", "dangling-edge", "drop-edges", "dt", "input-shape", "drop-param",
                             "string-param", "drop-metadata"])
            certain = True
            if op in ("nan", "inf", "huge", "shape", "drop-param", "string-param"):
                if not floats:
                    raise _Skip("no float parameter")
                node, key = rng.choice(floats)
                value = np.array(nodes[node][key][()])
                del nodes[node][key]
                if op == "nan":
                    value.reshape(-1)[0] = np.nan
                elif op == "inf":
                    value.reshape(-1)[0] = np.inf
                elif op == "huge":
                    value.reshape(-1)[0] = 1e30
                    certain = False
                elif op == "shape":
                    value = value.reshape(-1)[:-1] if value.ndim <= 1 else value[:-1]
                if op == "string-param":
                    nodes[node].create_dataset(key, data=np.bytes_(b"ten"))
                elif op != "drop-param":
                    nodes[node].create_dataset(key, data=value)
                name = f"nir-{op}:{node}.{key}"
                if op == "drop-param":
                    certain = key not in ("v_leak", "bias", "v_reset", "r", "w_in", "delay")
            elif op in ("negative-tau", "zero-tau"):
                taus = [(n, k) for n, k in floats if k.startswith("tau")]
                if not taus:
                    raise _Skip("no time constant")
                node, key = rng.choice(taus)
                value = np.array(nodes[node][key][()])
                value.reshape(-1)[0] = -0.01 if op == "negative-tau" else 0.0
                nodes[node][key][...] = value
                name = f"nir-{op}:{node}.{key}"
            elif op == "drop-node":
                node = rng.choice(node_names)
                del nodes[node]
                name = f"nir-drop-node:{node}"
            elif op in ("unknown-type", "conv-type"):
                node = rng.choice(node_names)
                del nodes[node]["type"]
                nodes[node].create_dataset("type", data=np.bytes_(b"FooBar" if op == "unknown-type" else b"Conv2d"))
                name = f"nir-{op}:{node}"
            elif op in ("dangling-edge", "drop-edges"):
                edges = np.array(f["node/edges"][()])
                del f["node/edges"]
                if op == "dangling-edge":
                    edges = np.concatenate([edges, np.array([[edges[0][0], b"ghost"]], dtype=edges.dtype)])
                    f["node"].create_dataset("edges", data=edges.astype("S"))
                else:
                    f["node"].create_dataset("edges", data=np.zeros((0, 2), dtype="S1"))
                name = f"nir-{op}"
            elif op == "dt":
                if "metadata" not in f["node"] or "dt_s" not in f["node/metadata"]:
                    raise _Skip("no dt metadata")
                value = rng.choice([np.nan, -1e-3, 0.0, np.inf, 1e30])
                f["node/metadata/dt_s"][...] = value
                name, certain = f"nir-dt:{value}", value != 1e30
            elif op == "input-shape":
                inputs = [n for n in node_names if "shape" in nodes[n]]
                if not inputs:
                    raise _Skip("no input node")
                node = rng.choice(inputs)
                value = rng.choice([0, -3, 10**12])
                del nodes[node]["shape"]
                nodes[node].create_dataset("shape", data=np.array([value]))
                name = f"nir-input-shape:{node}={value}"
            else:
                if "metadata" not in f["node"]:
                    raise _Skip("no metadata")
                del f["node/metadata"]
                name, certain = "nir-drop-metadata", False
        return Mutant(name, path.read_bytes(), certain)
