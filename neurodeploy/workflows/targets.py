"""``targets``: the known targets, their limits (read from their spec files) and their backends."""

from __future__ import annotations

from ..targets.registry import all_targets


def list_targets() -> list[dict]:
    return [{"name": t.name, "description": t.description, "limits": t.limits(), "backends": t.backend_names(),
             "spec": t.spec.path} for t in all_targets()]
