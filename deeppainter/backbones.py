"""Transfer backbones from ``keras.applications``: what users pick instead of DeepPainter (REFERENCE.md §3).

``python -m deeppainter.cv10 --model resnet50|efficientnetb0|convnext_tiny [--weights FILE]`` runs
an ImageNet architecture through the same folds as the CAE classifier:

    image in [0, 1] → [flip, ±10° rotation, colour jitter] → family preprocessing → backbone
    (include_top=False) → global average pooling → dropout → dense softmax

Training per fold (early stopping on ``crossval.inner_split`` of the training folds only):
phase 1 trains the head on a frozen backbone at ``backbone.lr_head``; with ``backbone.fine_tune``
phase 2 unfreezes the backbone and trains everything with differential learning rates
(stem / body / head = ``lr_stem`` / ``lr_body`` / ``lr_head``, 1e-6 / 1e-5 / 1e-3 by default).
ImageNet weights cannot be downloaded here: ``--weights`` names a local ``*_notop`` file; without
it the backbone starts from random weights and a warning is printed.
"""
from __future__ import annotations

import re
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from keras import layers, ops
from sklearn.utils.class_weight import compute_class_weight

from deeppainter.config import Config
from deeppainter.errors import UserError
from deeppainter.models.classifier import augmentation_layers

BACKBONES = ("resnet50", "efficientnetb0", "convnext_tiny")

_APPLICATIONS = {"resnet50": "ResNet50", "efficientnetb0": "EfficientNetB0", "convnext_tiny": "ConvNeXtTiny"}
# Variables of the stem (the layers before the first residual stage), by their Keras variable path.
_STEM_PATTERNS = {"resnet50": r"^(conv1_|pool1_)", "efficientnetb0": r"^(stem_|rescaling|normalization)",
                  "convnext_tiny": r"^convnext_tiny_(prestem|stem)"}
# The weights file keras.applications would have downloaded (for the error message).
_WEIGHT_FILES = {"resnet50": "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
                 "efficientnetb0": "efficientnetb0_notop.h5",
                 "convnext_tiny": "convnext_tiny_notop.h5"}
HEAD_PREFIX = "backbone_head"
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # keras.applications.resnet50.preprocess_input ("caffe")


@keras.saving.register_keras_serializable(package="deeppainter")
class BackbonePreprocess(layers.Layer):
    """[0, 1] RGB → the input each application expects.

    ResNet50: 0–255 BGR minus the ImageNet channel means ("caffe" mode). EfficientNetB0 and
    ConvNeXtTiny normalise inside the application model, so they only need 0–255 RGB.
    """

    def __init__(self, family: str, **kwargs):
        super().__init__(**kwargs)
        self.family = family

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype) * 255.0
        if self.family == "resnet50":
            x = ops.flip(x, axis=-1) - ops.convert_to_tensor(CAFFE_MEAN_BGR, dtype=self.compute_dtype)
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "family": self.family}


@keras.saving.register_keras_serializable(package="deeppainter")
class DifferentialAdam(keras.optimizers.Adam):
    """Adam whose learning rate is multiplied per variable: stem, body (rest of the backbone), head.

    ASSUMPTION: differential learning rates are implemented by scaling the step of each variable
    inside ``update_step`` (called per variable by the TensorFlow, JAX and PyTorch optimizers),
    not by scaling gradients: Adam is invariant to gradient scale, so that would do nothing.
    """

    def __init__(self, stem_pattern: str = "", head_pattern: str = "", stem_factor: float = 1.0,
                 body_factor: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.stem_pattern, self.head_pattern = stem_pattern, head_pattern
        self.stem_factor, self.body_factor = stem_factor, body_factor
        self._factors: list[float] = []

    def factor_for(self, path: str) -> float:
        if self.head_pattern and re.search(self.head_pattern, path):
            return 1.0
        if self.stem_pattern and re.search(self.stem_pattern, path):
            return self.stem_factor
        return self.body_factor

    def build(self, var_list):
        super().build(var_list)
        self._factors = [self.factor_for(variable.path) for variable in var_list]

    def update_step(self, gradient, variable, learning_rate):
        factor = self._factors[self._get_variable_index(variable)]
        super().update_step(gradient, variable, ops.cast(learning_rate, "float32") * factor)

    def get_config(self):
        return {**super().get_config(), "stem_pattern": self.stem_pattern, "head_pattern": self.head_pattern,
                "stem_factor": self.stem_factor, "body_factor": self.body_factor}


def build_backbone(family: str, image_size: int, weights: str = "") -> keras.Model:
    """The application without its top, random or loaded from a local weights file."""
    if family not in BACKBONES:
        raise UserError(f"unknown backbone {family!r}: choose one of {', '.join(BACKBONES)}")
    application = getattr(keras.applications, _APPLICATIONS[family])
    if image_size < 32:
        raise UserError(f"{family} needs data.image_size >= 32 (got {image_size}); try --set data.image_size=64")
    base = application(include_top=False, weights=None, input_shape=(image_size, image_size, 3))
    if not weights:
        print(f"warning: {family} starts from RANDOM weights (no --weights given; downloads are impossible "
              f"here). For ImageNet transfer pass --weights PATH/TO/{_WEIGHT_FILES[family]}")
        return base
    path = Path(weights).expanduser()
    if not path.is_file():
        raise UserError(f"--weights {path}: no such file; give a local copy of {_WEIGHT_FILES[family]}")
    try:
        base.load_weights(path)
    except Exception as exc:  # h5py/Keras raise many types for a wrong or corrupt file
        raise UserError(f"--weights {path}: cannot load into {family} without its top ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:200]}); expected {_WEIGHT_FILES[family]}") from None
    print(f"{family}: loaded weights from {path}")
    return base


def augmentation(seed: int | None = None) -> list[layers.Layer]:
    """Flips and ±10° rotations (shared with the CAE classifier) plus colour jitter (REFERENCE §3)."""
    jitter = layers.RandomColorJitter(value_range=(0, 1), brightness_factor=0.1, contrast_factor=0.1,
                                      saturation_factor=0.1, hue_factor=0.02, seed=seed, name="augment_jitter")
    return [*augmentation_layers(), jitter]


def build_backbone_classifier(family: str, image_size: int, num_classes: int, cfg: Config,
                              seed: int | None = None) -> tuple[keras.Model, keras.Model]:
    """Return ``(classifier, backbone)``; the classifier takes [0, 1] float images."""
    bcfg = cfg.backbone
    base = build_backbone(family, image_size, bcfg.weights)
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = inputs
    if bcfg.augment:
        for layer in augmentation(seed):
            x = layer(x)
    x = BackbonePreprocess(family, name="backbone_preprocess")(x)
    # ASSUMPTION: BatchNorm statistics stay in inference mode even while fine-tuning (the usual
    # Keras transfer-learning recipe); small painter sets would otherwise wreck them.
    x = base(x, training=False)
    x = layers.GlobalAveragePooling2D(name=f"{HEAD_PREFIX}_pool")(x)
    x = layers.Dropout(bcfg.dropout, name=f"{HEAD_PREFIX}_dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name=f"{HEAD_PREFIX}_softmax")(x)
    return keras.Model(inputs, outputs, name=f"{family}_classifier"), base


class BackboneModel:
    """A transfer backbone as a cv10 fold model (same protocol as ``crossval.EncoderHeadModel``)."""

    def __init__(self, family: str, cfg: Config, images: np.ndarray, num_classes: int, seed: int,
                 verbose: int = 0):
        self.family, self.cfg, self.images = family, cfg, images
        self.num_classes, self.seed, self.verbose = num_classes, seed, verbose

    def _fit_phase(self, model, optimizer, fit, val, epochs: int, class_weight) -> pd.DataFrame:
        # ASSUMPTION: no XLA on TensorFlow: compiling a ResNet-50 step costs more than a small fold's
        # training; JAX always compiles ("auto"), or it would run op by op.
        jit = False if keras.backend.backend() == "tensorflow" else "auto"
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                      jit_compile=jit)
        stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=self.cfg.backbone.patience,
                                                restore_best_weights=True)
        history = model.fit(fit, validation_data=val, epochs=epochs, callbacks=[stopper],
                            class_weight=class_weight, verbose=self.verbose)
        return pd.DataFrame(history.history)

    def train(self, train_idx: np.ndarray, labels: np.ndarray, seed: int) -> tuple[keras.Model, pd.DataFrame]:
        from deeppainter.crossval import inner_split
        from deeppainter.training import ArrayBatches

        bcfg, ccfg = self.cfg.backbone, self.cfg.classifier
        keras.utils.set_random_seed(seed)
        fit_idx, val_idx = inner_split(train_idx, labels, ccfg.val_fraction, seed)
        model, base = build_backbone_classifier(self.family, self.cfg.data.image_size, self.num_classes,
                                                self.cfg, seed)
        class_weight = None
        if bcfg.class_weights:
            present = np.unique(labels[fit_idx])
            weights = compute_class_weight("balanced", classes=present, y=labels[fit_idx])
            class_weight = {int(c): float(w) for c, w in zip(present, weights)}
        fit = ArrayBatches(self.images, fit_idx, labels, ccfg.batch_size, shuffle=True, seed=seed)
        val = ArrayBatches(self.images, val_idx, labels, ccfg.batch_size, shuffle=False)
        # Phase 1: frozen backbone, head only.
        base.trainable = False
        histories = [self._fit_phase(model, keras.optimizers.Adam(bcfg.lr_head), fit, val, bcfg.head_epochs,
                                     class_weight).assign(phase="head")]
        if bcfg.fine_tune:  # Phase 2: everything, stem/body/head at their own learning rates.
            base.trainable = True
            optimizer = DifferentialAdam(learning_rate=bcfg.lr_head, stem_pattern=_STEM_PATTERNS[self.family],
                                         head_pattern=f"^{HEAD_PREFIX}", stem_factor=bcfg.lr_stem / bcfg.lr_head,
                                         body_factor=bcfg.lr_body / bcfg.lr_head)
            histories.append(self._fit_phase(model, optimizer, fit, val, bcfg.epochs,
                                             class_weight).assign(phase="fine_tune"))
        history = pd.concat(histories, ignore_index=True).rename_axis("epoch").reset_index()
        return model, history

    def predict(self, model: keras.Model, indices: np.ndarray) -> np.ndarray:
        from deeppainter.training import ArrayBatches

        batches = ArrayBatches(self.images, indices, batch_size=64, shuffle=False)
        return np.asarray(model.predict(batches, verbose=0), dtype="float64")

    def fit_predict(self, fold: int, train_idx, test_idx, labels):
        model, history = self.train(train_idx, labels, seed=self.seed * 1000 + fold)
        info = {"epochs_run": len(history), "best_epoch": int(history["val_loss"].idxmin()) + 1,
                "backbone": self.family, "weights": self.cfg.backbone.weights or "random",
                "fine_tune": self.cfg.backbone.fine_tune}
        return self.predict(model, test_idx), info, history

    def save_final(self, labels: np.ndarray, path: Path) -> None:
        """Train on every image (early stopping on an inner split) and save one pixels→softmax model."""
        model, _ = self.train(np.arange(len(labels)), labels, seed=self.seed * 1000 + 999)
        model.save(path)
