"""Reading a NIR graph (a ``.nir`` file or an in-memory ``nir.NIRGraph``) into one flat graph.

Subgraphs (``NIRGraph`` nodes, e.g. snnTorch's recurrent layers) are inlined: their nodes are
renamed ``sub.child``, and their own Input and Output nodes become identity nodes that the
parent's edges into and out of the subgraph attach to. The result has exactly one Input and one
Output node at the top. Every problem is one :class:`~neurodeploy.errors.InterchangeError` line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nir

from ..errors import InterchangeError
from .nir_file import REMEDY, read_nir_file


@dataclass
class FlatGraph:
    """Nodes by name (in the file's order), edges, the top Input and Output, inlined identity nodes."""

    nodes: dict[str, Any]
    edges: list[tuple[str, str]]
    input: str
    output: str
    identities: set[str] = field(default_factory=set)
    metadata: dict = field(default_factory=dict)

    def predecessors(self, name: str) -> list[str]:
        return [a for a, b in self.edges if b == name]

    def successors(self, name: str) -> list[str]:
        return [b for a, b in self.edges if a == name]


def read_graph(source: str | Path | nir.NIRGraph) -> tuple[nir.NIRGraph, str]:
    """The graph and a description of where it came from (the path, or ``"NIRGraph object"``)."""
    if isinstance(source, nir.NIRGraph):
        return source, "NIRGraph object"
    if isinstance(source, nir.NIRNode):
        raise InterchangeError(f"the NIR object is a single {type(source).__name__} node, not a graph",
                               "wrap it in nir.NIRGraph with Input and Output nodes")
    path = Path(source)
    if not path.is_file():
        raise InterchangeError(f"NIR file {path} does not exist", REMEDY)
    graph = read_nir_file(path)
    if not isinstance(graph, nir.NIRGraph):
        raise InterchangeError(f"{path} holds a single {type(graph).__name__} node, not a NIR graph", REMEDY)
    return graph, str(path)


def _inline(graph: nir.NIRGraph, prefix: str, identities: set[str]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Nodes and edges of ``graph`` with subgraphs inlined, names prefixed by ``prefix``."""
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    entry: dict[str, str] = {}
    exit_: dict[str, str] = {}
    for name, node in graph.nodes.items():
        full = prefix + str(name)
        if not isinstance(node, nir.NIRGraph):
            nodes[full] = node
            continue
        ins = [n for n, v in node.nodes.items() if isinstance(v, nir.Input)]
        outs = [n for n, v in node.nodes.items() if isinstance(v, nir.Output)]
        if len(ins) != 1 or len(outs) != 1:
            raise InterchangeError(f"subgraph '{full}' has {len(ins)} Input and {len(outs)} Output nodes",
                                   "give a subgraph exactly one Input and one Output node")
        inner, inner_edges = _inline(node, full + ".", identities)
        entry[full], exit_[full] = f"{full}.{ins[0]}", f"{full}.{outs[0]}"
        identities.update((entry[full], exit_[full]))
        nodes.update(inner)
        edges.extend(inner_edges)
    for a, b in graph.edges:
        a, b = prefix + str(a), prefix + str(b)
        edges.append((exit_.get(a, a), entry.get(b, b)))
    return nodes, edges


def flatten(graph: nir.NIRGraph) -> FlatGraph:
    """Inline subgraphs and check the structure: one Input, one Output, no dangling or repeated edge."""
    if not graph.nodes:
        raise InterchangeError("the NIR graph is empty (it has no nodes)", REMEDY)
    identities: set[str] = set()
    nodes, edges = _inline(graph, "", identities)
    for a, b in edges:
        for end in (a, b):
            if end not in nodes:
                raise InterchangeError(f"edge ('{a}', '{b}') names node '{end}', which the graph does not have",
                                       "remove the dangling edge or add the node")
    if len(set(edges)) != len(edges):
        twice = next(e for e in edges if edges.count(e) > 1)
        raise InterchangeError(f"edge {twice} is listed twice (NIR sums edges, so this would double it)",
                               "list each edge once")
    found = {}
    for kind in (nir.Input, nir.Output):
        names = [n for n, v in nodes.items() if isinstance(v, kind) and n not in identities]
        if len(names) != 1:
            raise InterchangeError(f"the graph has {len(names)} {kind.__name__} nodes {names}",
                                   f"give exactly one {kind.__name__} node (one input vector, one output)")
        found[kind] = names[0]
    metadata = dict(graph.metadata) if isinstance(graph.metadata, dict) else {}
    return FlatGraph(nodes=nodes, edges=edges, input=found[nir.Input], output=found[nir.Output],
                     identities=identities, metadata=metadata)
