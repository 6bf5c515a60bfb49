"""The one Keras trainer of every Keras fold model: fit with early stopping on an inner split, predict.

:class:`CompiledHead` is how cv10 trains a head ten times without re-tracing: the model is built and compiled
once per run (so Keras traces its train step once), and before every fold the head is reset to the
initial weights a fresh build from the fold's seed would have, and the optimizer to a fresh state.
The result equals re-building per fold (the test in tests/test_cv10.py checks it); only the tracing
and compiling are not repeated.
"""
from __future__ import annotations

from typing import Callable

import keras
import numpy as np
import pandas as pd
from sklearn.utils.class_weight import compute_class_weight

from deeppainter.data.batches import ArrayBatches


def balanced_class_weight(labels: np.ndarray) -> dict[int, float]:
    """scikit-learn's "balanced" weights for the classes present in ``labels``."""
    present = np.unique(labels)
    weights = compute_class_weight("balanced", classes=present, y=labels)
    return {int(c): float(w) for c, w in zip(present, weights)}


def fit(model: keras.Model, array: np.ndarray, fit_idx: np.ndarray, val_idx: np.ndarray, labels: np.ndarray,
        *, epochs: int, batch_size: int, patience: int, seed: int, scale: float | None = 1 / 255.0,
        class_weight: dict | None = None, verbose: int = 0) -> pd.DataFrame:
    """Train a compiled model on ``array[fit_idx]``; early stopping (best weights) on ``array[val_idx]``.

    ``model.fit`` stays although its per-epoch set-up is most of a cached-feature fold's time: its
    PyDataset adapter also shuffles the order of the batches (Python's seeded random) and reads an
    epoch's last batch after ``on_epoch_end``, and the committed numbers were made that way; a
    train_on_batch loop over the same batches gives other (equally valid, not identical) models.
    """
    train = ArrayBatches(array, fit_idx, labels, batch_size, shuffle=True, seed=seed, scale=scale)
    val = ArrayBatches(array, val_idx, labels, batch_size, shuffle=False, scale=scale)
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
    history = model.fit(train, validation_data=val, epochs=epochs, callbacks=[stopper],
                        class_weight=class_weight, verbose=verbose)
    return pd.DataFrame(history.history)


def predict(model: keras.Model, array: np.ndarray, indices: np.ndarray, scale: float | None = 1 / 255.0,
            batch_size: int = 64) -> np.ndarray:
    batches = ArrayBatches(array, indices, batch_size=batch_size, shuffle=False, scale=scale)
    return np.asarray(model.predict(batches, verbose=0), dtype="float64")


def reset_optimizer(optimizer: keras.optimizers.Optimizer) -> None:
    """Back to the state of a new optimizer: step 0 and zero slots (momenta); the learning rate stays."""
    keep = {id(optimizer._learning_rate)} if isinstance(optimizer._learning_rate, keras.Variable) else set()
    for variable in optimizer.variables:
        if id(variable) not in keep:
            variable.assign(np.zeros(variable.shape, dtype=variable.dtype))


class CompiledHead:
    """A model compiled once whose head is reset per fold to ``fresh_head(seed)``'s initial state."""

    def __init__(self, model: keras.Model, head: keras.Model, fresh_head: Callable[[int], keras.Model]):
        self.model, self.head, self.fresh_head = model, head, fresh_head

    def reset(self, seed: int) -> keras.Model:
        # Layer.variables include the dropout layers' seed-generator states, so the fold's dropout
        # masks are those of a fresh build as well as its weights.
        fresh = self.fresh_head(seed)
        for variable, value in zip(self.head.variables, fresh.variables, strict=True):
            variable.assign(value)
        if self.model.optimizer is not None and self.model.optimizer.built:
            reset_optimizer(self.model.optimizer)
        return self.model
