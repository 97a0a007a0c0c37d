"""Fake ``dlens_vx_v3``: only ``halco`` (tests/fake_hxtorch/README.md)."""

from . import halco  # noqa: F401
