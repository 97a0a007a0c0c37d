"""The documented ranges of the verbs' numeric arguments, checked before any work starts.

The library (:mod:`neurodeploy.api`, :func:`neurodeploy.training.fit.fit`) checks them; the command
line offers the same ranges. Recipes use the same ranges for the same settings (``training.epochs``,
``training.seed``).

=================  ===========================  ==================================================
argument           range                        why
=================  ===========================  ==================================================
epochs             integer 1..10000             train and itl; Yin-Yang trains in 60
seed               integer 0..2^32-1            what every random generator used here accepts
clip_quantile      number in (0, 1]             a quantile of the weight magnitudes
learning_rate      number in (0, 1]             itl's Adam step; 3e-3 by default
train_samples      integer >= 1                 itl; at most the training set (checked with it)
weight_copies      integer 1..1024              map and itl; a layer takes what its drivers allow
weight_scale       per-neuron | per-projection  map
=================  ===========================  ==================================================
"""

from __future__ import annotations

from typing import Any, Optional

from ..errors import NeurodeployError
from .rules import Invalid, Number, OneOf, Rule, show

MAX_EPOCHS = 10_000
MAX_SEED = 2**32 - 1
MAX_WEIGHT_COPIES = 1024
MAX_REPEAT = 1000
MAX_WORKERS = 64

EPOCHS = Number(lo=1, hi=MAX_EPOCHS, integer=True)
SEED = Number(lo=0, hi=MAX_SEED, integer=True)
CLIP_QUANTILE = Number(lo=0, hi=1, lo_open=True)
LEARNING_RATE = Number(lo=0, hi=1, lo_open=True)
TRAIN_SAMPLES = Number(lo=1, integer=True)
WEIGHT_COPIES = Number(lo=1, hi=MAX_WEIGHT_COPIES, integer=True)
REPEAT = Number(lo=1, hi=MAX_REPEAT, integer=True)
WORKERS = Number(lo=1, hi=MAX_WORKERS, integer=True)
WEIGHT_SCALES = ("per-neuron", "per-projection")
WEIGHT_SCALE = OneOf(WEIGHT_SCALES)


def check_argument(rule: Rule, value: Any, flag: str, optional: bool = False) -> Any:
    """``value`` if ``rule`` accepts it (or it is None and ``optional``), else a one-line ``NeurodeployError``
    naming the argument as the command line spells it (``--epochs``)."""
    if value is None and optional:
        return value
    try:
        return rule.check(value, flag)
    except Invalid:
        raise NeurodeployError(f"{flag} {show(value)} is outside its range: it must be {rule.describe()}",
                               f"give {flag} {rule.describe()}") from None


def check_training_arguments(epochs: Optional[int], seed: Optional[int]) -> None:
    """``train``'s overrides (None: the recipe's)."""
    check_argument(EPOCHS, epochs, "--epochs", optional=True)
    check_argument(SEED, seed, "--seed", optional=True)


def check_map_arguments(clip_quantile: Any = 1.0, weight_scale: Any = "per-neuron", weight_copies: Any = None) -> None:
    """``map``'s options (``weight_copies`` None: as the model was trained)."""
    check_argument(CLIP_QUANTILE, clip_quantile, "--clip-quantile")
    check_argument(WEIGHT_SCALE, weight_scale, "--weight-scale")
    check_argument(WEIGHT_COPIES, weight_copies, "--weight-copies", optional=True)


def check_itl_arguments(epochs: Any, train_samples: Any, learning_rate: Any, weight_copies: Any, seed: Any) -> None:
    """``itl``'s settings (``train_samples`` None: the whole training set; its upper bound, the training set's
    size, is checked when the data is loaded; ``weight_copies`` None: the model's)."""
    check_argument(EPOCHS, epochs, "--epochs")
    check_argument(TRAIN_SAMPLES, train_samples, "--train-samples", optional=True)
    check_argument(LEARNING_RATE, learning_rate, "--learning-rate")
    check_argument(WEIGHT_COPIES, weight_copies, "--weight-copies", optional=True)
    check_argument(SEED, seed, "--seed")
