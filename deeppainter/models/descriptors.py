"""Style descriptors of a frozen encoder's conv layers (mean, std and Gram matrix per layer)."""
from __future__ import annotations

import functools

import keras
import numpy as np


@functools.lru_cache(maxsize=2)
def _conv_outputs(encoder: keras.Model) -> keras.Model:
    conv_layers = [layer for layer in encoder.layers if layer.name.startswith("encoder_conv")]
    return keras.Model(encoder.inputs, [layer.output for layer in conv_layers])


def encoder_descriptors(images: np.ndarray, encoder: keras.Model) -> np.ndarray:
    """Style statistics of every encoder conv layer for uint8 images: per-channel mean and std plus the Gram matrix.

    The Gram matrix (channel co-activations, Gatys et al.) describes texture independent of where
    things are in the picture, which is what tells painters apart; flattened feature maps mostly
    describe layout. (The featurizer ``cae-descriptors``: classical.featurize runs it over a run's
    images in batches.)
    """
    outputs = _conv_outputs(encoder)(images.astype("float32") * (1 / 255.0), training=False)
    parts = []
    for maps in outputs if isinstance(outputs, (list, tuple)) else [outputs]:
        maps = keras.ops.convert_to_numpy(maps)
        flat = maps.reshape(len(maps), -1, maps.shape[-1])
        gram = np.einsum("npc,npd->ncd", flat, flat) / flat.shape[1]
        upper = np.triu_indices(maps.shape[-1])
        parts += [flat.mean(axis=1), flat.std(axis=1), gram[:, upper[0], upper[1]]]
    return np.concatenate(parts, axis=1).astype("float32")
