"""Rules for what a file may hold: each rule says what it accepts, so a refusal names the field and the rule.

A check raises :class:`Invalid` (the field, what is wrong with it, optionally a fix); the loader of a
file kind turns it into that kind's typed error, one line: ``FILE: FIELD PROBLEM (fix: ...)``
(:func:`refusal`). The error text comes from the rules themselves (``describe``), so a rule and its
message never disagree. Rules never ``assert`` and never coerce: ``"3"`` is not an integer, ``True``
is not a number, ``60.0`` is not an integer.

Scalars: :class:`Number` (integer or real, range, finiteness), :class:`Text`, :class:`Flag`,
:class:`OneOf`, :class:`Nullable`. Containers: :class:`ListOf`, :class:`Fields` (a mapping with
required and optional keys, strict about unknown ones unless told), :class:`MapOf`. Arrays (numpy,
or torch tensors, read without importing torch): :class:`Array` (element kind, shape, range,
finiteness).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional, TypeVar

import numpy as np

from ..errors import NeurodeployError

__all__ = ["Anything", "Array", "Fields", "Flag", "Interval", "Invalid", "ListOf", "MapOf", "Nullable", "Number",
           "OneOf", "Rule", "Text", "as_numpy", "join", "refusal", "show", "within"]


class Invalid(Exception):
    """One field breaks one rule: ``field`` (as a user finds it, e.g. ``training.epochs``), ``problem`` (what is
    wrong, starting after the field's name), ``fix`` (optional; the rule's, else the file kind's remedy)."""

    def __init__(self, field: str, problem: str, fix: str = "") -> None:
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem
        self.fix = fix

    def within(self, prefix: str) -> Invalid:
        """The same problem, its field seen from an enclosing one (``layers[0]`` + ``size``)."""
        return Invalid(join(prefix, self.field), self.problem, self.fix)


def join(prefix: str, name: str) -> str:
    """``a`` + ``b`` → ``a.b``; ``a`` + ``[0]`` → ``a[0]``."""
    if not prefix:
        return name
    return f"{prefix}{name}" if name.startswith("[") else f"{prefix}.{name}"


E = TypeVar("E", bound=NeurodeployError)


def refusal(error: type[E], source: str, invalid: Invalid, remedy: str, prefer_remedy: bool = False) -> E:
    """The typed one-line error for ``invalid`` in ``source``. ``prefer_remedy``: files neurodeploy writes
    (model, deployment, calibration) are re-created, not edited, so their fix is the kind's remedy."""
    fix = remedy if prefer_remedy or not invalid.fix else invalid.fix
    return error(f"{source}: {invalid.field} {invalid.problem}", fix)


def show(value: Any) -> str:
    """A value as an error message shows it: short, and safe for huge integers and long texts."""
    if isinstance(value, np.generic):
        return show(value.item())
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        return repr(value) if value.bit_length() <= 64 else f"an integer of {value.bit_length()} bits"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else repr(value[:37] + "...")
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)}" if len(value) > 4 else "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return f"a mapping of {len(value)} keys"
    return f"a {type(value).__name__}"


def _integer_text(value: float) -> str:
    """An integer bound as a reader takes it in: ``4294967295``, or ``2^64-1`` and ``-2^63`` when huge."""
    value = int(value)
    if abs(value) < 10**12:
        return str(value)
    sign, magnitude = ("-" if value < 0 else ""), abs(value)
    for offset, suffix in ((0, ""), (1, "-1")):
        if (magnitude + offset) & (magnitude + offset - 1) == 0:
            return f"{sign}2^{(magnitude + offset).bit_length() - 1}{suffix}"
    return f"{value:.3g}"


def _range_text(lo: Optional[float], hi: Optional[float], lo_open: bool, hi_open: bool, integer: bool) -> str:
    fmt = _integer_text if integer else (lambda v: f"{v:g}")
    if lo is not None and hi is not None:
        if integer:
            return f"in {fmt(lo)}..{fmt(hi)}"
        return f"in {'(' if lo_open else '['}{fmt(lo)}, {fmt(hi)}{')' if hi_open else ']'}"
    if lo is not None:
        if lo == 0 and lo_open:
            return "> 0"
        return f"{'>' if lo_open else '>='} {fmt(lo)}"
    if hi is not None:
        return f"{'<' if hi_open else '<='} {fmt(hi)}"
    return ""


class Rule:
    """A rule for one value: :meth:`check` returns it (unchanged) or raises :class:`Invalid`."""

    def describe(self) -> str:
        raise NotImplementedError

    def check(self, value: Any, name: str) -> Any:
        raise NotImplementedError

    def refuse(self, value: Any, name: str) -> Invalid:
        return Invalid(name, f"= {show(value)} must be {self.describe()}", f"set {name} to {self.describe()}")


@dataclass(frozen=True)
class Number(Rule):
    """An integer (``integer=True``: a Python or numpy integer, never a bool or a float) or a real number
    (an int or float), within ``[lo, hi]`` (open ends as told); finite unless ``finite=False``, which
    admits ±inf but never NaN."""

    lo: Optional[float] = None
    hi: Optional[float] = None
    lo_open: bool = False
    hi_open: bool = False
    integer: bool = False
    finite: bool = True

    def describe(self) -> str:
        if self.integer and self.lo == 1 and self.hi is None:
            return "a positive integer"
        kind = "an integer" if self.integer else ("a finite number" if self.finite else "a number")
        bounds = _range_text(self.lo, self.hi, self.lo_open, self.hi_open, self.integer)
        if not self.integer and self.lo == 0 and self.lo_open and self.hi is None:
            return f"a {'finite ' if self.finite else ''}positive number"
        return f"{kind} {bounds}".strip()

    def check(self, value: Any, name: str) -> Any:
        if isinstance(value, (bool, np.bool_)):
            raise self.refuse(value, name)
        if self.integer:
            if not isinstance(value, (int, np.integer)):
                raise self.refuse(value, name)
            number: float = int(value)
        else:
            if not isinstance(value, (int, float, np.integer, np.floating)):
                raise self.refuse(value, name)
            number = float(value) if not isinstance(value, (int, np.integer)) else int(value)
            if math.isnan(number) or (self.finite and math.isinf(number)):
                raise self.refuse(value, name)
        if self.lo is not None and (number < self.lo or (self.lo_open and number == self.lo)):
            raise self.refuse(value, name)
        if self.hi is not None and (number > self.hi or (self.hi_open and number == self.hi)):
            raise self.refuse(value, name)
        return value


@dataclass(frozen=True)
class Text(Rule):
    """A string (non-empty unless ``empty=True``)."""

    empty: bool = False

    def describe(self) -> str:
        return "a text" if self.empty else "a non-empty text"

    def check(self, value: Any, name: str) -> Any:
        if not isinstance(value, str) or (not self.empty and not value):
            raise self.refuse(value, name)
        return value


@dataclass(frozen=True)
class Flag(Rule):
    """``true`` or ``false`` (a bool, not 0 or 1)."""

    def describe(self) -> str:
        return "true or false"

    def check(self, value: Any, name: str) -> Any:
        if not isinstance(value, (bool, np.bool_)):
            raise self.refuse(value, name)
        return value


@dataclass(frozen=True)
class OneOf(Rule):
    """One of the given values (compared by type and value, so ``1`` is not ``True``)."""

    values: tuple

    def describe(self) -> str:
        return "one of " + ", ".join(show(v) for v in self.values)

    def check(self, value: Any, name: str) -> Any:
        if not any(type(value) is type(v) and value == v for v in self.values):
            raise Invalid(name, f"= {show(value)} is unknown", f"use {self.describe()}")
        return value


@dataclass(frozen=True)
class Nullable(Rule):
    """``None`` (``null``), or what ``rule`` accepts."""

    rule: Rule

    def describe(self) -> str:
        return f"null or {self.rule.describe()}"

    def check(self, value: Any, name: str) -> Any:
        return value if value is None else self.rule.check(value, name)


@dataclass(frozen=True)
class Anything(Rule):
    """Any value (a field whose contents are informational)."""

    def describe(self) -> str:
        return "any value"

    def check(self, value: Any, name: str) -> Any:
        return value


@dataclass(frozen=True)
class ListOf(Rule):
    """A list (or tuple) of items ``item`` accepts; ``length``: exactly that many; ``min_length``: at least."""

    item: Rule
    length: Optional[int] = None
    min_length: int = 0

    def describe(self) -> str:
        if self.length is not None:
            return f"a list of {self.length} items, each {self.item.describe()}"
        return f"a {'non-empty ' if self.min_length else ''}list, each item {self.item.describe()}"

    def check(self, value: Any, name: str) -> Any:
        if not isinstance(value, (list, tuple)):
            raise self.refuse(value, name)
        if (self.length is not None and len(value) != self.length) or len(value) < self.min_length:
            raise Invalid(name, f"has {len(value)} items, it must be {self.describe()}",
                          f"set {name} to {self.describe()}")
        for index, item in enumerate(value):
            self.item.check(item, f"{name}[{index}]")
        return value


@dataclass(frozen=True)
class Interval(Rule):
    """``[low, high]``: two numbers ``item`` accepts, ``low <= high``."""

    item: Number = Number()

    def describe(self) -> str:
        return f"[low, high] with low <= high, each {self.item.describe()}"

    def check(self, value: Any, name: str) -> Any:
        ListOf(self.item, length=2).check(value, name)
        if value[0] > value[1]:
            raise Invalid(name, f"= {show(list(value))} runs backwards, it must be {self.describe()}",
                          f"set {name} to {self.describe()}")
        return value


def within(value: float, interval: Any, name: str, of: str) -> None:
    """Raise :class:`Invalid` unless ``interval[0] <= value <= interval[1]`` (``of``: where the interval is)."""
    if not interval[0] <= value <= interval[1]:
        raise Invalid(name, f"= {show(value)} lies outside {of} {show(list(interval))}",
                      f"set {name} within {show(list(interval))}")


def _is_mapping(value: Any) -> bool:
    return isinstance(value, Mapping)


@dataclass(frozen=True)
class Fields(Rule):
    """A mapping with ``required`` and ``optional`` keys, each with its rule; any other key is refused
    (``strict``) or ignored."""

    required: Mapping[str, Rule] = field(default_factory=dict)
    optional: Mapping[str, Rule] = field(default_factory=dict)
    strict: bool = True

    def describe(self) -> str:
        return "a mapping"

    def check(self, value: Any, name: str) -> Any:
        if not _is_mapping(value):
            raise self.refuse(value, name)
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise Invalid(name, f"has the key {show(bad[0])}, keys must be texts", "use text keys")
        missing = [k for k in self.required if k not in value]
        if missing:
            raise Invalid(join(name, missing[0]), "is missing", f"add {join(name, missing[0])}")
        if self.strict:
            allowed = {*self.required, *self.optional}
            unknown = sorted(k for k in value if k not in allowed)
            if unknown:
                raise Invalid(join(name, unknown[0]), "is not a known key",
                              f"remove it or check its spelling; allowed keys: {sorted(allowed)}")
        for key, rule in {**self.required, **self.optional}.items():
            if key in value:
                rule.check(value[key], join(name, key))
        return value


@dataclass(frozen=True)
class MapOf(Rule):
    """A mapping of text keys (``keys``: the allowed ones, if given) to values ``value`` accepts."""

    value: Rule
    keys: Optional[tuple[str, ...]] = None

    def describe(self) -> str:
        return "a mapping"

    def check(self, value: Any, name: str) -> Any:
        if not _is_mapping(value):
            raise self.refuse(value, name)
        for key, item in value.items():
            if not isinstance(key, str):
                raise Invalid(name, f"has the key {show(key)}, keys must be texts", "use text keys")
            if self.keys is not None and key not in self.keys:
                raise Invalid(f"{name}[{key!r}]", "is not a known key",
                              f"use one of {list(self.keys)}" if self.keys else "remove it")
            self.value.check(item, f"{name}[{key!r}]")
        return value


# Arrays ---------------------------------------------------------------------------------------------

KINDS = {"bool": "b", "int": "iu", "float": "f", "number": "iuf"}
KIND_NAMES = {"bool": "booleans", "int": "integers", "float": "floating-point numbers", "number": "numbers"}


def as_numpy(value: Any) -> Optional[np.ndarray]:
    """A numpy array, or a torch tensor's values as one (without importing torch); else None."""
    if isinstance(value, np.ndarray):
        return value
    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        try:
            return value.detach().cpu().numpy()
        except (TypeError, RuntimeError):  # a dtype numpy lacks (bfloat16): not one we write
            return None
    return None


@dataclass(frozen=True)
class Array(Rule):
    """An array of ``kind`` (``bool``, ``int``, ``float``, ``number``) with ``shape`` (a tuple of sizes; None:
    any size), values in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``); a float array must be finite
    (``finite``; ``allow_inf``: +-inf allowed, NaN never). Torch tensors are read as arrays."""

    kind: str = "number"
    shape: Optional[tuple[Optional[int], ...]] = None
    lo: Optional[float] = None
    hi: Optional[float] = None
    finite: bool = True
    allow_inf: bool = False
    lo_open: bool = False
    dtype: Optional[str] = None  # exactly this numpy dtype (e.g. "float32"), where the readers need it

    def describe(self) -> str:
        if self.dtype is not None:
            return f"an array of {self.dtype}" + self._rest()
        return f"an array of {KIND_NAMES[self.kind]}" + self._rest()

    def _rest(self) -> str:
        shape = "" if self.shape is None else " of shape [" + ", ".join(
            "*" if s is None else str(s) for s in self.shape) + "]"
        bounds = _range_text(self.lo, self.hi, self.lo_open, False, self.kind in ("int", "bool"))
        return shape + (f" {bounds}" if bounds else "")

    def check(self, value: Any, name: str) -> Any:
        array = as_numpy(value)
        if array is None:
            raise Invalid(name, f"is {show(value)}, it must be {self.describe()}", "")
        if array.dtype.kind not in KINDS[self.kind] or self.dtype is not None and array.dtype != np.dtype(self.dtype):
            raise Invalid(name, f"has dtype {array.dtype}, it must be {self.describe()}")
        if self.shape is not None and (array.ndim != len(self.shape) or any(
                want is not None and have != want for have, want in zip(array.shape, self.shape))):
            raise Invalid(name, f"has shape {list(array.shape)}, it must be {self.describe()}")
        if array.size == 0:
            return value
        if array.dtype.kind == "f" and self.finite:
            bad = np.isnan(array) if self.allow_inf else ~np.isfinite(array)
            if bad.any():
                where = tuple(int(i) for i in np.argwhere(bad)[0])
                what = "NaN" if self.allow_inf else "NaN or infinite values"
                raise Invalid(name, f"holds {what} (first at {list(where)}), it must be finite"
                              f"{' or infinite' if self.allow_inf else ''}")
        if self.lo is not None or self.hi is not None:
            with np.errstate(invalid="ignore"):
                low = ((array <= self.lo) if self.lo_open else (array < self.lo)) if self.lo is not None \
                    else np.zeros(array.shape, bool)
                high = array > self.hi if self.hi is not None else np.zeros(array.shape, bool)
            bad = low | high
            if bad.any():
                where = tuple(int(i) for i in np.argwhere(bad)[0])
                raise Invalid(name, f"holds {show(array[where])} at {list(where)}, it must be {self.describe()}")
        return value
