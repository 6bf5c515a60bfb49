"""Batches read from uint8 (memory-mapped) image arrays: classifier inputs and denoising-autoencoder pairs."""
from __future__ import annotations

import math
import random

import keras
import numpy as np


class ArrayBatches(keras.utils.PyDataset):
    """Batches read from a (memory-mapped) array: ``(x, targets)``, or ``(x, x)`` without targets.

    ``scale`` turns uint8 images into [0, 1] floats batch by batch, so no float32 copy of the
    whole set is ever made. The order is reshuffled every epoch from ``(seed, epoch)``.
    """

    def __init__(self, array: np.ndarray, indices: np.ndarray, targets: np.ndarray | None = None,
                 batch_size: int = 32, shuffle: bool = True, seed: int = 0, scale: float | None = 1 / 255.0,
                 **kwargs):
        super().__init__(**kwargs)
        self.array, self.indices, self.targets = array, np.asarray(indices), targets
        self.batch_size, self.shuffle, self.seed, self.scale = batch_size, shuffle, seed, scale
        self.set_epoch(0)

    def _epoch_order(self) -> np.ndarray:
        if not self.shuffle:
            return self.indices
        return np.random.default_rng([self.seed, self.epoch]).permutation(self.indices)

    def __len__(self) -> int:
        return math.ceil(len(self.indices) / self.batch_size)

    def batch_indices(self, index: int) -> np.ndarray:
        return self.order[index * self.batch_size:(index + 1) * self.batch_size]

    def inputs(self, batch_indices: np.ndarray) -> np.ndarray:
        # Sorted reads are sequential on a memory-map; the permutation is applied afterwards.
        ordering = np.argsort(batch_indices)
        x = np.empty((len(batch_indices),) + self.array.shape[1:], dtype="float32")
        x[ordering] = self.array[batch_indices[ordering]]
        return x * self.scale if self.scale is not None else x

    def __getitem__(self, index: int):
        batch_indices = self.batch_indices(index)
        x = self.inputs(batch_indices)
        return x, (x if self.targets is None else self.targets[batch_indices])

    def set_epoch(self, epoch: int) -> None:
        """Serve the batches of ``epoch``: a resumed run continues exactly where it stopped."""
        self.epoch = epoch
        self.order = self._epoch_order()

    def on_epoch_end(self) -> None:
        self.set_epoch(self.epoch + 1)


class DenoisingBatches(ArrayBatches):
    """Batches of (masked input, clean target) for the denoising autoencoder.

    ``per_epoch``: one fixed mask per image per epoch ([P16] §1); ``per_batch``: a fresh mask at
    every step ([R21]: generalised better); ``none``: clean inputs. A removed pixel is zero in all
    three channels.

    Everything a batch holds is a pure function of ``(seed, epoch, index)`` and, with
    ``batch_order_state``, of that state: no counter runs across calls, so a run resumed at epoch k
    (``set_epoch(k)``) is served the very batches an uninterrupted run is. Under Keras' ``fit()``
    the dataset epoch is the training epoch + 1: ``fit()`` calls ``on_epoch_end`` once before the first
    epoch, and on TensorFlow reads batches 0 and 1 of epoch 0 only to infer the tensor shapes.
    """

    # Batches Keras' TensorFlow data adapter reads at epoch 0 to infer the tensor specs (its
    # NUM_BATCHES_FOR_TENSOR_SPEC; the JAX iterator reads none): the running step counter of earlier
    # versions had counted them, and mask_step keeps its numbers on either backend.
    TF_SPEC_BATCHES = 2

    def __init__(self, images: np.ndarray, indices: np.ndarray, batch_size: int, denoise: str = "none",
                 rate: float = 0.0, seed: int = 0, shuffle: bool = True, batch_order_state=None, **kwargs):
        self.denoise, self.rate, self.batch_order_state = denoise, rate, batch_order_state
        super().__init__(images, indices, batch_size=batch_size, shuffle=shuffle, seed=seed, **kwargs)

    def set_batch_order_state(self, state) -> None:
        """Serve the batches of epoch E in the order of the E-th ``shuffle`` drawn from ``state``.

        ``state`` is ``random.getstate()`` taken just before ``fit(shuffle=False)``: the order that
        ``fit(shuffle=True)`` drew from the global ``random`` module, but from a saved state, so a
        resumed run can draw it again (pass ``None`` for index order).
        """
        self.batch_order_state = state
        self.set_epoch(self.epoch)

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.batch_order = list(range(len(self)))
        if self.batch_order_state is not None and epoch > 0:
            version, internal, gauss = self.batch_order_state
            rng = random.Random()
            rng.setstate((version, tuple(internal), gauss))
            for _ in range(epoch):
                self.batch_order = list(range(len(self)))
                rng.shuffle(self.batch_order)

    def mask_step(self, index: int) -> int:
        """The number of the ``index``-th batch served in this epoch within the whole ``fit()``.

        As the running counter of earlier versions counted under ``fit()``: the TF_SPEC_BATCHES read at
        epoch 0, then ``len(self)`` per epoch from epoch 1 on; here a function of (epoch, index) only.
        """
        if self.epoch == 0:  # the shape-inference reads (or batches read outside fit())
            return index + 1
        spec_batches = min(self.TF_SPEC_BATCHES, len(self)) if keras.backend.backend() == "tensorflow" else 0
        return spec_batches + (self.epoch - 1) * len(self) + index + 1

    def _keep_mask(self, batch_indices: np.ndarray, shape: tuple[int, ...], index: int) -> np.ndarray:
        if self.denoise == "per_epoch":
            return np.stack([np.random.default_rng([self.seed, self.epoch, int(i)]).random(shape[1:3]) >= self.rate
                             for i in batch_indices])[..., None]
        step = self.mask_step(index)
        return (np.random.default_rng([self.seed, self.epoch, step, 1]).random(shape[:3]) >= self.rate)[..., None]

    def __getitem__(self, index: int):
        batch_indices = self.batch_indices(self.batch_order[index])
        clean = self.inputs(batch_indices)
        if self.denoise == "none" or self.rate == 0:
            return clean, clean
        return clean * self._keep_mask(batch_indices, clean.shape, index), clean
