"""The multi-chip deployment file: one network partitioned over K chips, versioned, without pickle.

One ``.npz`` archive (read with ``allow_pickle=False``), its own format ``neurodeploy.multichip`` so that a
single-chip deployment (``neurodeploy.deployment``, :mod:`neurodeploy.deployment`) stays exactly as it was and
a reader of one never mistakes the other for it:

- ``meta`` (JSON): the envelope (``format``, ``version``, ``software_version``, ``checksum``) and the whole
  network's common deployment keys (``target``, ``graph``, ``dt_s``, ``encoding``, ``dataset``, ``layers``,
  ``layer_kinds``, ``readout_neurons``, ``training``, ``report``, ``chip`` = null), so that the ``software``
  backend runs the whole network as the one-"big-chip" reference; ``partition``: ``chips`` (per chip its
  ``input`` population and its ``blocks``: layer, neuron range, population name in the chip's graph),
  ``routes`` (layer, neuron range, ``from_chip``, ``to_chip``: the spikes the FPGAs carry between chips) and
  ``link`` (latency and bandwidth, with their source); ``chip_meta``: each chip's deployment meta, envelope
  and checksum included, exactly as its own deployment file would hold it.
- arrays: ``float_weight:P`` of the whole network, and chip ``k``'s arrays as ``chip{k}/NAME``.

Loading checks the envelope, the whole network's common keys, every chip deployment as its target checks a
single-chip one (:func:`neurodeploy.validation.loading.check_deployment`), each chip's checksum and the file's.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .atomic import atomic_path
from .deployment import (ENVELOPE_KEYS, FORMAT as CHIP_FORMAT, VERSION as CHIP_VERSION, Deployment, checksum_of,
                         read_archive)
from .errors import FileKindError
from .fileformat import Envelope, read_envelope

FORMAT = "neurodeploy.multichip"
VERSION = 1
ENVELOPE = Envelope("multi-chip deployment", FORMAT, (VERSION,),
                    "map a model with `neurodeploy map MODEL --target TARGET --chips K -o OUT`")
MAX_BYTES = 2**31  # K chip configurations of about 0.3 MiB each, and the float weights
WHOLE_KEYS = ("target", "graph", "dt_s", "encoding", "dataset", "layers", "layer_kinds", "readout_neurons",
              "training", "report", "chip")


@dataclass
class MultiChipDeployment:
    """``meta`` (module docstring), the chips' deployments in partition order, the whole network's float weights."""

    meta: dict
    chips: list[Deployment]
    arrays: dict  # float_weight:P of the whole network

    @property
    def target(self) -> str:
        return self.meta["target"]

    @property
    def partition(self) -> dict:
        return self.meta["partition"]

    def whole(self) -> Deployment:
        """The whole network as a deployment of its float weights: what the ``software`` backend runs."""
        return Deployment(meta={k: self.meta[k] for k in WHOLE_KEYS}, arrays=dict(self.arrays))


def _chip_meta(deployment: Deployment) -> dict:
    """A chip's meta with the envelope and checksum its own deployment file would have."""
    meta = {"format": CHIP_FORMAT, "version": CHIP_VERSION, "software_version": __version__,
            **{k: v for k, v in deployment.meta.items() if k not in ENVELOPE_KEYS}}
    meta["checksum"] = checksum_of(meta, deployment.arrays)
    return meta


def _all_arrays(multi: MultiChipDeployment) -> dict:
    return {**multi.arrays, **{f"chip{k}/{name}": value for k, chip in enumerate(multi.chips)
                               for name, value in chip.arrays.items()}}


def save_multichip(multi: MultiChipDeployment, path: str | Path) -> None:
    """Write atomically, with the current format, version and checksums."""
    meta = {"format": FORMAT, "version": VERSION, "software_version": __version__,
            **{k: v for k, v in multi.meta.items() if k not in ENVELOPE_KEYS + ("chip_meta",)},
            "chip_meta": [_chip_meta(chip) for chip in multi.chips]}
    arrays = _all_arrays(multi)
    meta["checksum"] = checksum_of(meta, arrays)
    payload = {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **payload)


def file_format(path: str | Path) -> Any:
    """The ``format`` an ``.npz`` neurodeploy file's ``meta`` names (None when it has no readable meta): how the
    verbs tell a multi-chip deployment from a single-chip one before loading either."""
    try:
        with zipfile.ZipFile(path) as archive:
            if "meta.npy" not in archive.namelist():
                return None
        with np.load(path, allow_pickle=False) as archive:
            return json.loads(archive["meta"].tobytes().decode()).get("format")
    except Exception:  # noqa: BLE001 - any unreadable file: "not this kind", the loaders say why
        return None


def is_multichip(path: str | Path) -> bool:
    return Path(path).is_file() and file_format(path) == FORMAT


def load_multichip(path: str | Path) -> MultiChipDeployment:
    """Read and check a multi-chip deployment (module docstring); ``FileKindError`` naming what is wrong."""
    from .validation.deployment import check_common
    from .validation.loading import check_deployment
    from .validation.rules import Invalid, refusal
    from .deployment import verify_checksum

    arrays: dict = {}
    meta = read_envelope(path, ENVELOPE, lambda p: read_archive(p, arrays, ENVELOPE.kind, MAX_BYTES, ENVELOPE.remedy))
    if meta.get("checksum") != checksum_of(meta, arrays):
        raise FileKindError(f"multi-chip deployment {path} fails its checksum: it was edited or damaged after "
                            "writing", ENVELOPE.remedy)
    whole = {k: v for k, v in arrays.items() if not k.startswith("chip")}
    try:
        check_common({**meta, "version": 1}, whole)  # the common keys of a version-1 deployment (no chip, checksum)
        chip_meta = meta["chip_meta"]
        partition = meta["partition"]
        if not isinstance(chip_meta, list) or len(chip_meta) != len(partition["chips"]) or not chip_meta:
            raise Invalid("meta.chip_meta", "is not one deployment meta per chip of meta.partition.chips")
    except Invalid as invalid:
        raise refusal(FileKindError, f"multi-chip deployment {path}", invalid, ENVELOPE.remedy,
                      prefer_remedy=True) from None
    except (KeyError, TypeError) as exc:
        raise FileKindError(f"multi-chip deployment {path} lacks {exc}", ENVELOPE.remedy) from None
    chips = []
    for k, chip in enumerate(chip_meta):
        prefix = f"chip{k}/"
        deployment = Deployment(meta=chip, arrays={name[len(prefix):]: value for name, value in arrays.items()
                                                   if name.startswith(prefix)})
        source = f"chip {k} of {path}"
        try:
            check_common(chip, deployment.arrays)
        except Invalid as invalid:
            raise refusal(FileKindError, source, invalid, ENVELOPE.remedy, prefer_remedy=True) from None
        check_deployment(deployment, source)
        verify_checksum(deployment, source)
        chips.append(deployment)
    return MultiChipDeployment(meta=meta, chips=chips, arrays=whole)


def summary(multi: MultiChipDeployment) -> dict:
    """What ``inspect`` shows of the partition: per chip its blocks and circuits, and the inter-chip routes."""
    chips = []
    for k, (part, chip) in enumerate(zip(multi.partition["chips"], multi.chips)):
        report = chip.meta.get("report", {})
        chips.append({"chip": k, "input": part["input"],
                      "blocks": [f"{b['layer']}[{b['start']}:{b['stop']}]" for b in part["blocks"]],
                      "circuits_used": report.get("circuits_used"),
                      "circuits_available": report.get("circuits_available")})
    routes = [f"{r['layer']}[{r['neurons'][0]}:{r['neurons'][1]}] chip {r['from_chip']} -> chip {r['to_chip']}"
              for r in multi.partition["routes"]]
    return {"chips": len(multi.chips), "partition": chips, "routes": routes, "link": multi.partition["link"]}
