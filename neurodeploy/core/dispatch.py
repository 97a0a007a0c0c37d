"""Chooses the implementation of the LIF time loop: the fused kernel when built, else the twin."""

from __future__ import annotations

from .lif import lif_sequence as twin_lif_sequence

lif_sequence = twin_lif_sequence
