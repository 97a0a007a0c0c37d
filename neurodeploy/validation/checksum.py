"""The content checksum of model files and deployments: SHA-256 over a canonical encoding of the payload.

The payload is the file's contents without the ``checksum`` field, as they load (a deployment's
``meta`` after its JSON round trip). The encoding is independent of how the container stores it
(pickle protocol, zip layout, compression, array memory order):

* mappings: their items sorted by key; lists and tuples alike, in order;
* ``None``, booleans, integers (decimal), floats (``float.hex``, exact; NaN and ±inf included) and
  texts (UTF-8), each tagged with its type and length where it has one;
* arrays and tensors: dtype (numpy's ``dtype.str``, e.g. ``<f4``), shape and the values' bytes in C order.

So a byte that changes a value changes the checksum, while re-saving the same contents does not.
Calibration files keep their own checksum (SHA-256 of their sorted JSON; ``calibration_file.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from .rules import as_numpy

FIELD = "checksum"  # where a file keeps its checksum (a model file's top level, a deployment's meta)


def digest(payload: Any) -> str:
    """The SHA-256 hex digest of ``payload``'s canonical encoding (module docstring)."""
    hasher = hashlib.sha256()
    _feed(hasher, payload)
    return hasher.hexdigest()


def _tag(hasher: Any, tag: bytes, data: bytes = b"") -> None:
    hasher.update(tag + len(data).to_bytes(8, "little") + data)


def _feed(hasher: Any, value: Any) -> None:
    if value is None:
        _tag(hasher, b"N")
    elif isinstance(value, (bool, np.bool_)):
        _tag(hasher, b"B", b"1" if value else b"0")
    elif isinstance(value, (int, np.integer)):
        _tag(hasher, b"I", str(int(value)).encode())
    elif isinstance(value, (float, np.floating)):
        _tag(hasher, b"F", float(value).hex().encode())
    elif isinstance(value, str):
        _tag(hasher, b"S", value.encode("utf-8", "surrogatepass"))
    elif isinstance(value, bytes):
        _tag(hasher, b"Y", value)
    elif isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda item: (type(item[0]).__name__, repr(item[0])))
        _tag(hasher, b"M", str(len(items)).encode())
        for key, item in items:
            _feed(hasher, key)
            _feed(hasher, item)
    elif isinstance(value, (list, tuple)):
        _tag(hasher, b"L", str(len(value)).encode())
        for item in value:
            _feed(hasher, item)
    else:
        array = as_numpy(value)
        if array is None:
            raise TypeError(f"cannot checksum a {type(value).__name__}")
        _tag(hasher, b"A", f"{array.dtype.str}{list(array.shape)}".encode())
        hasher.update(np.ascontiguousarray(array).tobytes())


def is_digest(value: Any) -> bool:
    """Whether ``value`` looks like a stored checksum (64 lowercase hex digits)."""
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
