"""Style descriptors of a frozen encoder's conv layers (mean, std and Gram matrix per layer)."""
from __future__ import annotations

import keras
import numpy as np

from deeppainter.data.batches import ArrayBatches
from deeppainter.progress import progress


def encoder_descriptors(encoder: keras.Model, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Style statistics of every encoder conv layer: per-channel mean and std plus the Gram matrix.

    The Gram matrix (channel co-activations, Gatys et al.) describes texture independent of where
    things are in the picture, which is what tells painters apart; flattened feature maps mostly
    describe layout.
    """
    conv_layers = [layer for layer in encoder.layers if layer.name.startswith("encoder_conv")]
    probe = keras.Model(encoder.inputs, [layer.output for layer in conv_layers])
    batches = ArrayBatches(images, np.arange(len(images)), batch_size=batch_size, shuffle=False)
    rows = []
    for index in progress(range(len(batches)), desc="encoder style descriptors", unit="batch"):
        outputs = probe(batches.inputs(batches.batch_indices(index)), training=False)
        parts = []
        for maps in outputs if isinstance(outputs, (list, tuple)) else [outputs]:
            maps = keras.ops.convert_to_numpy(maps)
            flat = maps.reshape(len(maps), -1, maps.shape[-1])
            gram = np.einsum("npc,npd->ncd", flat, flat) / flat.shape[1]
            upper = np.triu_indices(maps.shape[-1])
            parts += [flat.mean(axis=1), flat.std(axis=1), gram[:, upper[0], upper[1]]]
        rows.append(np.concatenate(parts, axis=1))
    return np.concatenate(rows).astype("float32")
