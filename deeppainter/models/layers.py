"""Max-pooling with switches and true max-unpooling (Zeiler et al. 2011), in ``keras.ops`` only.

Keras has no unpooling layer. These two run unchanged on the TensorFlow, JAX and PyTorch
backends: the pool records, for each 2×2 window and channel, a one-hot "switch" marking where
the maximum was (the first one in row-major order when several values tie); the unpool puts
each value back at that position and zeros elsewhere.
"""
from __future__ import annotations

import keras
from keras import ops

POOL = 2  # [P16] §1: 2×2 max-pooling


def _to_windows(x, height: int, width: int, channels: int):
    """(B, H, W, C) → (B, H/2, W/2, C, 4): the four values of each 2×2 window, row-major."""
    x = ops.reshape(x, (-1, height // POOL, POOL, width // POOL, POOL, channels))
    x = ops.transpose(x, (0, 1, 3, 5, 2, 4))
    return ops.reshape(x, (-1, height // POOL, width // POOL, channels, POOL * POOL))


def _from_windows(x, height: int, width: int, channels: int):
    """Inverse of ``_to_windows`` for an output of size (H, W)."""
    x = ops.reshape(x, (-1, height // POOL, width // POOL, channels, POOL, POOL))
    x = ops.transpose(x, (0, 1, 4, 2, 5, 3))
    return ops.reshape(x, (-1, height, width, channels))


@keras.saving.register_keras_serializable(package="deeppainter")
class MaxPoolingWithSwitches(keras.layers.Layer):
    """2×2 max-pooling that also returns its switches, shape (B, H/2, W/2, C, 4), one-hot."""

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        pooled = (batch, height // POOL, width // POOL, channels)
        return pooled, pooled + (POOL * POOL,)

    def call(self, inputs):
        _, height, width, channels = inputs.shape
        windows = _to_windows(inputs, height, width, channels)
        is_max = ops.cast(ops.equal(windows, ops.max(windows, axis=-1, keepdims=True)), inputs.dtype)
        # Keep only the first maximum so ties give exactly one switch per window.
        switches = ops.stop_gradient(is_max * ops.cast(ops.equal(ops.cumsum(is_max, axis=-1), 1), inputs.dtype))
        # Sum through the switch (not ops.max) so the gradient reaches exactly the recorded position.
        pooled = ops.sum(windows * switches, axis=-1)
        return pooled, switches


@keras.saving.register_keras_serializable(package="deeppainter")
class MaxUnpooling2D(keras.layers.Layer):
    """Place each value at its pool switch inside a 2×2 window, zeros elsewhere: (B,h,w,C) → (B,2h,2w,C).

    Called on ``[values, switches]``. When ``values`` has more channels than the switches
    (the [P16] decoder unpools 200 channels with the switches of a 100-channel pool), switch
    channel ``c mod C_switch`` is used for value channel ``c``.
    """

    def compute_output_shape(self, input_shapes):
        batch, height, width, channels = input_shapes[0]
        return batch, height * POOL, width * POOL, channels

    def call(self, inputs):
        values, switches = inputs
        _, height, width, channels = values.shape
        switch_channels = switches.shape[3]
        if channels != switch_channels:
            # ASSUMPTION: [P16] unpools a 200-channel deconv output with a 100-channel pool's switches;
            # the paper does not say how, so switch channels are reused cyclically.
            if channels % switch_channels:
                raise ValueError(f"cannot unpool {channels} channels with {switch_channels}-channel switches")
            switches = ops.tile(switches, (1, 1, 1, channels // switch_channels, 1))
        placed = ops.expand_dims(values, -1) * ops.cast(switches, values.dtype)
        return _from_windows(placed, height * POOL, width * POOL, channels)
