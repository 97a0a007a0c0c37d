"""Damaged files of every kind, read in-process by the loader each verb uses and by ``inspect``: only
neurodeploy's typed errors (``NeurodeployError``) may escape, never a raw exception, and a pickle, YAML tag or
object array in a file never runs (issue 15).

The mutations are ``scripts/fuzz.py``'s (bit flips, truncation, zip members corrupted, dropped or renamed,
keys and arrays dropped, renamed, retyped, reshaped, NaN/inf/negative/huge values, YAML alias bombs, deep
nesting, huge integers, invalid UTF-8, files of another kind, directories and pipes in a file's place);
hypothesis draws the seed of each. ``make test`` runs a few hundred; the slow job (``-m slow``) over a thousand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fuzz_support import (fresh_path, fuzz, loaders, make_bases, mutant_for, place_special,
                          working_directory)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurodeploy.errors import NeurodeployError

FAST_EXAMPLES = {"model": 40, "dep-bss2": 40, "dep-xylo": 30, "recipe": 40, "spec": 40, "calibration": 15,
                 "data": 40, "nir": 40}  # 285 cases, each read by its loader and by inspect
SLOW_EXAMPLES = {"model": 200, "dep-bss2": 200, "dep-xylo": 150, "recipe": 200, "spec": 150, "calibration": 60,
                 "data": 150, "nir": 150}  # 1260

@pytest.fixture(scope="session")
def bases(trained_model, tmp_path_factory) -> Any:
    return make_bases(tmp_path_factory.mktemp("fuzz-bases"), trained_model)


def read_damaged(kind: str, bases: Any, seed: int, folder: Path) -> tuple[Any, bool]:
    """Write the damaged file for ``seed`` and read it; returns (mutant, whether the loader accepted it)."""
    from neurodeploy.workflows.inspect import inspect_file

    _, mutant = mutant_for(kind, bases, seed)
    if "(reader hangs)" in mutant.mutation:  # HDF5 itself does not return: scripts/fuzz.py runs it with a timeout
        return mutant, False
    path = fresh_path(folder, "fuzzed" + fuzz.SUFFIX[fuzz.FORMAT_OF[kind]])
    if mutant.special:
        place_special(mutant, path)
    else:
        path.write_bytes(mutant.data)
    accepted = True
    with working_directory(folder):
        for read in (loaders()[kind], inspect_file):
            try:
                read(path)
            except NeurodeployError as error:
                assert error.one_line() and "\n" not in error.one_line()
                accepted = accepted and read is inspect_file
            except Exception as error:  # noqa: BLE001 - the point of the test
                raise AssertionError(f"{kind} {mutant.mutation} (seed {seed}): {getattr(read, '__name__', read)} "
                                     f"raised {type(error).__name__}: {error}") from error
    assert not (folder / "PWNED").exists(), f"{kind} {mutant.mutation}: the file's payload ran"
    return mutant, accepted


def _fuzz_kind(kind: str, examples: int, bases: Any, folder: Path) -> None:
    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(seed=st.integers(0, 2**32 - 1))
    def check(seed: int) -> None:
        read_damaged(kind, bases, seed, folder)

    check()


@pytest.mark.parametrize("kind", sorted(FAST_EXAMPLES))
def test_damaged_files_raise_only_typed_errors(kind, bases, tmp_path):
    _fuzz_kind(kind, FAST_EXAMPLES[kind], bases, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(SLOW_EXAMPLES))
def test_many_damaged_files_raise_only_typed_errors(kind, bases, tmp_path):
    _fuzz_kind(kind, SLOW_EXAMPLES[kind], bases, tmp_path)


def test_the_base_files_load(bases, tmp_path):
    """The identity mutation: every base file is accepted (else every other verdict means nothing)."""
    for kind in sorted(FAST_EXAMPLES):
        name = {"model": "model.pt", "dep-bss2": "dep.npz", "dep-xylo": "xylo.npz", "recipe": "recipe.yaml",
                "spec": "bss2.yaml", "calibration": "cal.yaml", "data": "small.npz", "nir": "graph.nir"}[kind]
        loaders()[kind](bases.folder / name)


def test_certainly_invalid_files_are_refused(bases, tmp_path):
    """A sample of mutations marked certainly invalid (NaN weights, dropped arrays, checksums that no longer
    match, ...): the loader refuses them, with one line."""
    accepted = []
    for kind in ("model", "recipe", "calibration", "data"):
        for seed in range(25):
            mutant, ok = read_damaged(kind, bases, seed, tmp_path)
            if ok and mutant.certain:
                accepted.append(f"{kind} {mutant.mutation} (seed {seed})")
    assert not accepted, accepted
