"""Label assignment on a backend: a network that learned without labels (seed 003, ``learn`` with an STDP program)
is read out by its neurons' spike counts. Each neuron takes the class it answers most on the training samples;
a sample's prediction is the class whose neurons answer it most (:mod:`neurodeploy.training.stdp`'s rules, here
on the counts a chip returns)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..backends.base import Backend, Recording
from ..data.encoding import encode
from ..deployment import Deployment
from ..itl.forward import layer_neurons
from ..plasticity import Boost
from ..training.stdp import assign_labels, predict_from_counts


NO_BOOST = Boost()


class Labelled(NamedTuple):
    accuracy: float  # test samples predicted right
    train_accuracy: float
    labels: np.ndarray  # [neurons] class per neuron, -1: never fired
    spikes_per_sample: float  # test, mean over samples (last presentation)
    presented_again: int  # test and training presentations repeated at a higher rate


def layer_counts(engine: Backend, deployment: Deployment, x: np.ndarray, layer: str, boost: Boost = NO_BOOST,
                 seed: int = 0, batch: int = 100) -> tuple[np.ndarray, int]:
    """Spike counts ``[N, neurons]`` of ``layer`` for samples ``x``, and how many were shown again: a sample with
    fewer than ``boost.min_spikes`` spikes runs again with the Poisson rate raised by ``boost.boost_hz`` (at most
    ``boost.max_boosts`` times; its counts are its last presentation's), as seed 003 reads out. ``seed``: the
    Poisson draws."""
    encoding = deployment.meta["encoding"]
    boost = boost.checked(encoding)
    ids = layer_neurons(deployment.meta, deployment["neuron_layer"])[layer]
    counts = np.zeros((len(x), len(ids)), np.int64)
    repeated = 0
    for start in range(0, len(x), batch):
        todo = np.arange(start, min(start + batch, len(x)))
        for attempt in range(boost.max_boosts + 1):
            obs = engine.run(deployment, encode(x[todo], boost.presentation(encoding, attempt, seed)),
                             Recording(spikes=True, membrane=False))
            counts[todo] = obs.spikes.sum(dim=0).numpy()[:, ids].astype(np.int64)
            todo = todo[counts[todo].sum(axis=1) < boost.min_spikes]
            if not len(todo) or attempt == boost.max_boosts:
                break
            repeated += len(todo)
    return counts, repeated


def label_accuracy(engine: Backend, deployment: Deployment, layer: str, train: tuple[np.ndarray, np.ndarray],
                   test: tuple[np.ndarray, np.ndarray], boost: Boost = NO_BOOST, seed: int = 0,
                   n_classes: int = 10) -> Labelled:
    """Labels from the training samples' counts, then the test accuracy (new Poisson draws for each set)."""
    train_counts, again_train = layer_counts(engine, deployment, train[0], layer, boost, seed=seed + 1)
    labels = assign_labels(train_counts, np.asarray(train[1]), n_classes)
    test_counts, again_test = layer_counts(engine, deployment, test[0], layer, boost, seed=seed + 1000)
    accuracy = float((predict_from_counts(test_counts, labels, n_classes) == np.asarray(test[1])).mean())
    train_accuracy = float((predict_from_counts(train_counts, labels, n_classes) == np.asarray(train[1])).mean())
    return Labelled(accuracy, train_accuracy, labels, float(test_counts.sum(axis=1).mean()), again_train + again_test)
