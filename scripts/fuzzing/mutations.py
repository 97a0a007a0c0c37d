"""The damaged input (:class:`Mutant`) and format-blind damage: bytes, zip members, YAML as text."""

from __future__ import annotations

import io
import random
import re
import struct
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional


# ----------------------------------------------------------------------------------------------------
# Mutants


@dataclass
class Mutant:
    """One damaged input: its bytes (or a special file), whether it is certainly invalid, and what was done."""

    mutation: str
    data: bytes = b""
    certain: bool = False
    special: str = ""  # "dir", "fifo", "dangling", "loop": the path is that instead of a file
    marker: bool = False  # the payload creates PWNED in the case folder if it ever runs


class _Skip(Exception):
    """This mutation does not apply to this input; pick another."""


def _flip_bits(data: bytes, rng: random.Random, count: int) -> bytes:
    buf = bytearray(data)
    for _ in range(count):
        i = rng.randrange(len(buf))
        buf[i] ^= 1 << rng.randrange(8)
    return bytes(buf)


def bytes_mutation(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """A format-blind change of the bytes: bit flips, truncation, a zeroed/garbled/duplicated chunk."""
    if not data:
        return "bytes-append", b"\x00garbage"
    op = rng.choice(["flip1", "flip8", "flip-head", "truncate", "truncate-tail", "zero-chunk", "random-chunk",
                     "dup-chunk", "insert", "append", "empty", "half"])
    n = len(data)
    if op == "flip1":
        return "bytes-flip1", _flip_bits(data, rng, 1)
    if op == "flip8":
        return "bytes-flip8", _flip_bits(data, rng, 8)
    if op == "flip-head":
        head = min(n, 512)
        return "bytes-flip-head", _flip_bits(data[:head], rng, 2) + data[head:]
    if op == "truncate":
        return "bytes-truncate", data[:rng.randrange(n)]
    if op == "truncate-tail":
        return "bytes-truncate-tail", data[:max(0, n - rng.randint(1, 64))]
    if op == "half":
        return "bytes-half", data[:n // 2]
    if op == "empty":
        return "bytes-empty", b""
    start = rng.randrange(n)
    length = min(n - start, rng.choice([1, 4, 16, 256, 4096]))
    if op == "zero-chunk":
        return "bytes-zero-chunk", data[:start] + b"\x00" * length + data[start + length:]
    if op == "random-chunk":
        return "bytes-random-chunk", data[:start] + rng.randbytes(length) + data[start + length:]
    if op == "dup-chunk":
        return "bytes-dup-chunk", data[:start + length] + data[start:start + length] + data[start + length:]
    if op == "insert":
        return "bytes-insert", data[:start] + rng.randbytes(rng.choice([1, 7, 100])) + data[start:]
    return "bytes-append", data + rng.randbytes(rng.choice([1, 100, 10000]))


# --- zip containers (npz, torch) -----------------------------------------------------------------------


def _zip_entries(data: bytes) -> list[zipfile.ZipInfo]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.infolist()


def _data_span(data: bytes, info: zipfile.ZipInfo) -> tuple[int, int]:
    """Where a member's (compressed) bytes lie in the archive."""
    offset = info.header_offset
    name_len, extra_len = struct.unpack("<HH", data[offset + 26:offset + 30])
    start = offset + 30 + name_len + extra_len
    return start, start + info.compress_size


def _patch_crc(data: bytearray, info: zipfile.ZipInfo, crc: int) -> None:
    data[info.header_offset + 14:info.header_offset + 18] = struct.pack("<I", crc)
    name = info.filename.encode()
    pos = 0
    while True:
        pos = data.find(b"PK\x01\x02", pos)
        if pos < 0:
            return
        name_len = struct.unpack("<H", data[pos + 28:pos + 30])[0]
        if bytes(data[pos + 46:pos + 46 + name_len]) == name:
            data[pos + 16:pos + 20] = struct.pack("<I", crc)
            return
        pos += 4


def _rezip(data: bytes, change: Callable[[str, bytes], Optional[list[tuple[str, bytes]]]]) -> bytes:
    """Rewrite a zip archive; ``change(name, content)`` returns the entries to write instead (None: keep)."""
    out = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        warnings.simplefilter("ignore")  # duplicate names are one of the mutations
        for info in src.infolist():
            content = src.read(info)
            replacement = change(info.filename, content)
            for name, body in ([(info.filename, content)] if replacement is None else replacement):
                dst.writestr(zipfile.ZipInfo(name, date_time=info.date_time), body, compress_type=info.compress_type)
    return out.getvalue()


def zip_mutation(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """Damage one member of a zip archive: corrupt its (compressed) bytes with or without a matching CRC,
    drop, rename or duplicate it, or swap in a highly compressed bomb."""
    entries = [i for i in _zip_entries(data) if i.compress_size > 0]
    info = rng.choice(entries)
    op = rng.choice(["corrupt", "corrupt-fixcrc", "drop", "rename", "duplicate", "bomb", "huge-header"])
    label = info.filename.rsplit("/", 1)[-1]
    if op in ("corrupt", "corrupt-fixcrc"):
        buf = bytearray(data)
        start, end = _data_span(data, info)
        for _ in range(rng.choice([1, 3])):
            i = rng.randrange(start, end)
            buf[i] ^= 1 << rng.randrange(8)
        if op == "corrupt-fixcrc":
            raw = bytes(buf[start:end])
            try:
                content = raw if info.compress_type == zipfile.ZIP_STORED else zlib.decompress(raw, -15)
            except zlib.error:
                return "zip-corrupt(undecodable):" + label, bytes(buf)
            _patch_crc(buf, info, zlib.crc32(content))
        return f"zip-{op}:{label}", bytes(buf)
    if op == "drop":
        return f"zip-drop:{label}", _rezip(data, lambda n, c: [] if n == info.filename else None)
    if op == "rename":
        return f"zip-rename:{label}", _rezip(data, lambda n, c: [(n + "x", c)] if n == info.filename else None)
    if op == "duplicate":
        return f"zip-duplicate:{label}", _rezip(
            data, lambda n, c: [(n, c), (n, c[: len(c) // 2])] if n == info.filename else None)
    if op == "huge-header":
        if not info.filename.endswith(".npy"):
            raise _Skip("not an npy member")
        header = b"\x93NUMPY\x01\x00" + _npy_header("<f8", (2**40,))
        return f"zip-huge-header:{label}", _rezip(data, lambda n, c: [(n, header + c[-64:])] if n == info.filename
                                                  else None)
    bomb = b"\x93NUMPY\x01\x00" + _npy_header("|u1", (256 * 2**20,)) + b"\x00" * (256 * 2**20)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item.filename, bomb if item.filename == info.filename else src.read(item))
    return f"zip-bomb:{label}", out.getvalue()


def _npy_header(descr: str, shape: tuple) -> bytes:
    text = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    pad = 64 - (10 + len(text) + 1) % 64
    text += b" " * pad + b"\n"
    return struct.pack("<H", len(text)) + text


# --- YAML text -------------------------------------------------------------------------------------------


NUMBER_REPLACEMENTS = {"giant-int": "9" * 5000, "timestamp": "2001-12-14t21:59:43.10-05:00",
                       "binary": "!!binary aGVsbG8=", "set": "!!set {1, 2}"}


def yaml_text_mutation(text: str, rng: random.Random) -> tuple[str, bytes, bool]:
    """Damage YAML as text: returns (name, bytes, certainly invalid)."""
    lines = text.splitlines()
    numeric = [i for i, line in enumerate(lines) if re.match(r"^\s*[A-Za-z_]+:\s*-?[0-9][0-9.e+-]*\s*(#.*)?$", line)]
    op = rng.choice(["alias-bomb", "deep-nest", "giant-int", "invalid-utf8", "nul", "bom", "python-tag", "multi-doc",
                     "tabs", "duplicate-key", "top-list", "top-scalar", "empty", "huge-file", "long-string", "crlf",
                     "timestamp", "binary", "set", "merge", "anchor"])
    if op == "alias-bomb":
        bomb = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
        for level in range(1, 9):
            prev = chr(ord("a") + level - 1)
            name = chr(ord("a") + level)
            bomb.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
        return "yaml-alias-bomb", ("\n".join(bomb) + "\n" + text).encode(), True
    if op == "deep-nest":
        depth = rng.choice([40, 1000, 100000])
        return f"yaml-deep-nest:{depth}", (text + "deep: " + "[" * depth + "]" * depth + "\n").encode(), True
    if op in NUMBER_REPLACEMENTS:  # a number's line given a value YAML reads as another type (or a huge int)
        if not numeric:
            raise _Skip("no numeric line")
        i = rng.choice(numeric)
        key = lines[i].split(":")[0]
        lines[i] = f"{key}: {NUMBER_REPLACEMENTS[op]}"
        return f"yaml-{op}:{key.strip()}", "\n".join(lines).encode(), True
    if op == "invalid-utf8":
        pos = rng.randrange(len(text) + 1)
        raw = text.encode()
        bad = rng.choice([b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80"])
        return "yaml-invalid-utf8", raw[:pos] + bad + raw[pos:], True
    if op == "nul":
        pos = rng.randrange(len(text) + 1)
        return "yaml-nul", (text[:pos] + "\x00" + text[pos:]).encode(), True
    if op == "bom":
        return "yaml-bom", b"\xef\xbb\xbf" + text.encode(), False
    if op == "python-tag":
        return "yaml-python-tag", (text + "evil: !!python/object/apply:os.system ['touch PWNED']\n").encode(), True
    if op == "multi-doc":
        return "yaml-multi-doc", (text + "\n---\n" + text).encode(), True
    if op == "tabs":
        return "yaml-tabs", re.sub(r"^( +)", lambda m: "\t" * len(m.group(1)), text, flags=re.M).encode(), True
    if op == "duplicate-key":
        return "yaml-duplicate-key", (text + "\n" + lines[0] + "\n").encode(), False
    if op == "top-list":
        return "yaml-top-list", ("- " + "\n  ".join(lines)).encode(), True
    if op == "top-scalar":
        return "yaml-top-scalar", b"just a string\n", True
    if op == "empty":
        return "yaml-empty", rng.choice([b"", b"\n", b"# only a comment\n", b"~\n"]), True
    if op == "huge-file":
        return "yaml-huge-file", (text + "# " + "x" * (33 * 2**20) + "\n").encode(), True
    if op == "long-string":
        return "yaml-long-string", (text.rstrip("\n") + "\nzz_long: " + "x" * 2**20 + "\n").encode(), True
    if op == "crlf":
        return "yaml-crlf", text.replace("\n", "\r\n").encode(), False
    if op == "merge":
        return "yaml-merge", (text + "zz_merge:\n  <<: {a: 1}\n").encode(), True
    return "yaml-anchor", (text + "zz_anchor: &x 1\nzz_ref: *x\n").encode(), True
