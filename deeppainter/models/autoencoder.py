"""The DeepPainter convolutional autoencoder, layer for layer as in the papers' tables.

[R21] Table I (preset replication2021, unpooling="upsample"):
    conv 200 5×5 → pool → conv 200 → pool → UpSampling2D → Conv2DTranspose 200
    → UpSampling2D → Conv2DTranspose 200 → 1×1 conv to 3            = 3,016,403 params at 256 px
[P16] §1 (preset paper2016, unpooling="maxunpool"):
    conv 100 → pool → conv 200 → pool → max-unpool → deconv 200 → max-unpool → deconv 100
    → 1×1 conv to 3 (ASSUMPTION: the paper does not state the reconstruction layer)
"""
from __future__ import annotations

import keras
from keras import layers

from deeppainter.config import AutoencoderConfig
from deeppainter.models.layers import MaxPoolingWithSwitches, MaxUnpooling2D


def build_autoencoder(cfg: AutoencoderConfig, image_size: int) -> tuple[keras.Model, keras.Model]:
    """Return ``(autoencoder, encoder)``; they share layers, so training one trains the other.

    The layers take the dtype policy in force (train.distribute.options sets it from
    ``autoencoder.mixed_precision``); the reconstruction stays float32 so the loss is computed in full precision.
    """
    unpool = cfg.unpooling == "maxunpool"
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = inputs
    switches = []
    for stage, filters in enumerate(cfg.filters, start=1):
        x = layers.Conv2D(filters, cfg.kernel_size, padding="same", activation=cfg.activation,
                          name=f"encoder_conv{stage}")(x)
        if unpool:
            x, stage_switches = MaxPoolingWithSwitches(name=f"encoder_pool{stage}")(x)
            switches.append(stage_switches)
        else:
            x = layers.MaxPooling2D(2, name=f"encoder_pool{stage}")(x)
    encoded = x
    for stage, filters in enumerate(cfg.decoder_filters, start=1):
        if unpool:
            x = MaxUnpooling2D(name=f"decoder_unpool{stage}")([x, switches[-stage]])
        else:
            x = layers.UpSampling2D(2, name=f"decoder_upsample{stage}")(x)
        x = layers.Conv2DTranspose(filters, cfg.kernel_size, padding="same", activation=cfg.activation,
                                   name=f"decoder_deconv{stage}")(x)
    reconstruction = layers.Conv2D(3, 1, activation=cfg.reconstruction_activation, dtype="float32",
                                   name="reconstruction")(x)
    autoencoder = keras.Model(inputs, reconstruction, name="autoencoder")
    encoder = keras.Model(inputs, encoded, name="encoder")
    return autoencoder, encoder
