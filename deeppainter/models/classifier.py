"""The supervised half: frozen encoder → SpatialDropout2D → Flatten → Dropout → dense head → softmax.

[R21] Table II: SpatialDropout2D → Flatten (64·64·200 = 819,200) → Dropout → Dense 300 → Dropout
→ Dense 300 → Dense softmax. [P16] §1: FC 400 → FC 200 → softmax.
The head is its own model so that 10-fold CV can train it on cached encoder features; the
full classifier is the same head stacked on the encoder, so both paths compute the same function.
"""
from __future__ import annotations

import keras
from keras import layers, ops

from deeppainter.config import ClassifierConfig


@keras.saving.register_keras_serializable(package="deeppainter")
class MeanStdPooling2D(layers.Layer):
    """Per-channel mean and standard deviation over space (a style statistic, study option)."""

    def compute_output_shape(self, input_shape):
        return input_shape[0], 2 * input_shape[-1]

    def call(self, inputs):
        mean = ops.mean(inputs, axis=(1, 2))
        std = ops.sqrt(ops.var(inputs, axis=(1, 2)) + 1e-6)
        return ops.concatenate([mean, std], axis=-1)


def build_head(feature_shape: tuple[int, ...], cfg: ClassifierConfig, num_classes: int) -> keras.Model:
    features = keras.Input(feature_shape, name="encoder_features")
    x = layers.SpatialDropout2D(cfg.spatial_dropout, name="head_spatial_dropout")(features)
    if cfg.pooling == "flatten":
        x = layers.Flatten(name="head_flatten")(x)
    elif cfg.pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="head_avg_pool")(x)
    else:
        x = MeanStdPooling2D(name="head_meanstd_pool")(x)
    for index, units in enumerate(cfg.head, start=1):
        x = layers.Dropout(cfg.dropout, name=f"head_dropout{index}")(x)
        x = layers.Dense(units, activation="relu", name=f"head_dense{index}")(x)
    probabilities = layers.Dense(num_classes, activation="softmax", dtype="float32", name="softmax")(x)
    return keras.Model(features, probabilities, name="head")


def augmentation_layers() -> list[layers.Layer]:
    # The field's habit (REFERENCE §3): flips and about ±10° rotations.
    return [layers.RandomFlip("horizontal", name="augment_flip"),
            layers.RandomRotation(10 / 360, fill_mode="constant", name="augment_rotate")]


def build_classifier(encoder: keras.Model, cfg: ClassifierConfig, num_classes: int,
                     head: keras.Model | None = None) -> keras.Model:
    """The pre-trained encoder (frozen unless ``cfg.fine_tune``) under the dense head."""
    encoder.trainable = cfg.fine_tune
    head = head or build_head(tuple(encoder.output_shape[1:]), cfg, num_classes)
    inputs = keras.Input(encoder.input_shape[1:], name="image")
    x = inputs
    if cfg.augment:
        for layer in augmentation_layers():
            x = layer(x)
    # training=False keeps a frozen encoder in inference mode (matters once it has BatchNorm or Dropout).
    x = encoder(x, training=None if cfg.fine_tune else False)
    return keras.Model(inputs, head(x), name="classifier")


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    optimizers = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD,
                  "rmsprop": keras.optimizers.RMSprop}
    return optimizers[name](learning_rate=learning_rate)
