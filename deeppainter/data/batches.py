"""Batches read from uint8 (memory-mapped) image arrays: classifier inputs and denoising-autoencoder pairs."""
from __future__ import annotations

import math

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
        self.epoch = 0
        self.order = self._epoch_order()

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

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = self._epoch_order()



class DenoisingBatches(ArrayBatches):
    """Batches of (masked input, clean target) for the denoising autoencoder.

    ``per_epoch``: one fixed mask per image per epoch ([P16] §1); ``per_batch``: a fresh mask at
    every step ([R21]: generalised better); ``none``: clean inputs. A removed pixel is zero in all
    three channels.
    """

    def __init__(self, images: np.ndarray, indices: np.ndarray, batch_size: int, denoise: str = "none",
                 rate: float = 0.0, seed: int = 0, shuffle: bool = True, **kwargs):
        super().__init__(images, indices, batch_size=batch_size, shuffle=shuffle, seed=seed, **kwargs)
        self.denoise, self.rate, self.step = denoise, rate, 0

    def _keep_mask(self, batch_indices: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        if self.denoise == "per_epoch":
            return np.stack([np.random.default_rng([self.seed, self.epoch, int(i)]).random(shape[1:3]) >= self.rate
                             for i in batch_indices])[..., None]
        self.step += 1
        return (np.random.default_rng([self.seed, self.epoch, self.step, 1]).random(shape[:3]) >= self.rate)[..., None]

    def __getitem__(self, index: int):
        batch_indices = self.batch_indices(index)
        clean = self.inputs(batch_indices)
        if self.denoise == "none" or self.rate == 0:
            return clean, clean
        return clean * self._keep_mask(batch_indices, clean.shape), clean
