"""``targets``: the known targets, their limits (read from their spec files) and their backends."""

from __future__ import annotations

from ..api import targets


def list_targets() -> list[dict]:
    return targets()
