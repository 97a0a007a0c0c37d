"""The report: the outcome table per kind, and the failures grouped by what they have in common."""

from __future__ import annotations

import re
from collections import Counter, defaultdict

from .constants import FAILURES, KINDS, OUTCOMES


# ----------------------------------------------------------------------------------------------------
# Report


def table(results: list[dict]) -> str:
    counts: dict[str, Counter] = defaultdict(Counter)
    for r in results:
        counts[r["kind"]][r["outcome"]] += 1
        counts["total"][r["outcome"]] += 1
    width = max(len(o) for o in OUTCOMES) + 1
    lines = [f"{'kind':<12}{'cases':>6}" + "".join(f"{o:>{width}}" for o in OUTCOMES)]
    for kind in [k for k in KINDS if k in counts] + ["total"]:
        row = counts[kind]
        lines.append(f"{kind:<12}{sum(row.values()):>6}" + "".join(f"{row.get(o, 0):>{width}}" for o in OUTCOMES))
    return "\n".join(lines)


def failure_groups(results: list[dict]) -> list[tuple[str, int, dict]]:
    """Failures grouped by (outcome, verb, kind, mutation family, message shape): one example each."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        if r["outcome"] not in FAILURES:
            continue
        family = r["mutation"].split(":")[0]
        detail = re.sub(r"[0-9]+", "N", re.sub(r"/[^ ]*", "PATH", r["detail"]))[:120]
        groups[f"{r['outcome']} | {r['argv'][0] if r['argv'] else ''} | {r['kind']} {family} | {detail}"].append(r)
    return sorted(((k, len(v), v[0]) for k, v in groups.items()), key=lambda g: -g[1])
