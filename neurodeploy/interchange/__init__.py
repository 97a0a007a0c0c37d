"""Model interchange with NIR, the Neuromorphic Intermediate Representation (docs/nir.md).

* :func:`import_nir` / :func:`read_nir`: a NIR graph → a model file in the ``nir-euler``
  discretisation, which simulates the graph's equations with forward Euler;
* :func:`export_nir` / :func:`write_nir`: a model file → a NIR graph with the same spikes.
"""

from __future__ import annotations

from .nir_export import export_nir, write_nir
from .nir_import import NO_DATASET, InterchangeWarning, import_nir, read_nir

__all__ = ["NO_DATASET", "InterchangeWarning", "export_nir", "import_nir", "read_nir", "write_nir"]
