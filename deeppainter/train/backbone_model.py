"""A keras.applications transfer backbone as a cv10 fold model (deeppainter.models.backbones builds the network)."""
from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pandas as pd

from deeppainter.config import Config
from deeppainter.data.splits import inner_split
from deeppainter.models.backbones import (
    _STEM_PATTERNS,
    HEAD_PREFIX,
    DifferentialAdam,
    build_backbone_classifier,
)
from deeppainter.models.registry import FoldContext
from deeppainter.train import keras_head
from deeppainter.train.keras_head import balanced_class_weight


class BackboneModel:
    """A transfer backbone as a cv10 fold model (the protocol of deeppainter.models.registry.FoldModel).

    Unlike the CAE head it is re-built per fold: phase 2 changes which variables train, which needs a
    new compile anyway. Fitting and predicting are train.keras_head's, as for every Keras model.
    """

    def __init__(self, family: str, cfg: Config, images: np.ndarray, num_classes: int, seed: int,
                 verbose: int = 0):
        self.family, self.cfg, self.images = family, cfg, images
        self.num_classes, self.seed, self.verbose = num_classes, seed, verbose

    @classmethod
    def from_context(cls, ctx: FoldContext) -> BackboneModel:
        return cls(ctx.name, ctx.cfg, ctx.images, len(ctx.classes), ctx.seed, verbose=ctx.verbose)

    def _fit_phase(self, model, optimizer, fit_idx, val_idx, labels, epochs: int, seed: int,
                   class_weight) -> pd.DataFrame:
        # ASSUMPTION: no XLA on TensorFlow: compiling a ResNet-50 step costs more than a small fold's
        # training; JAX always compiles ("auto"), or it would run op by op.
        jit = False if keras.backend.backend() == "tensorflow" else "auto"
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                      jit_compile=jit)
        return keras_head.fit(model, self.images, fit_idx, val_idx, labels, epochs=epochs,
                              batch_size=self.cfg.classifier.batch_size, patience=self.cfg.backbone.patience,
                              seed=seed, class_weight=class_weight, verbose=self.verbose)

    def train(self, train_idx: np.ndarray, labels: np.ndarray, seed: int) -> tuple[keras.Model, pd.DataFrame]:
        bcfg, ccfg = self.cfg.backbone, self.cfg.classifier
        keras.utils.set_random_seed(seed)
        fit_idx, val_idx = inner_split(train_idx, labels, ccfg.val_fraction, seed)
        model, base = build_backbone_classifier(self.family, self.cfg.data.image_size, self.num_classes,
                                                self.cfg, seed)
        class_weight = balanced_class_weight(labels[fit_idx]) if bcfg.class_weights else None
        # Phase 1: frozen backbone, head only.
        base.trainable = False
        histories = [self._fit_phase(model, keras.optimizers.Adam(bcfg.lr_head), fit_idx, val_idx, labels,
                                     bcfg.head_epochs, seed, class_weight).assign(phase="head")]
        if bcfg.fine_tune:  # Phase 2: everything, stem/body/head at their own learning rates.
            base.trainable = True
            optimizer = DifferentialAdam(learning_rate=bcfg.lr_head, stem_pattern=_STEM_PATTERNS[self.family],
                                         head_pattern=f"^{HEAD_PREFIX}", stem_factor=bcfg.lr_stem / bcfg.lr_head,
                                         body_factor=bcfg.lr_body / bcfg.lr_head)
            histories.append(self._fit_phase(model, optimizer, fit_idx, val_idx, labels, bcfg.epochs, seed,
                                             class_weight).assign(phase="fine_tune"))
        history = pd.concat(histories, ignore_index=True).rename_axis("epoch").reset_index()
        return model, history

    def predict(self, model: keras.Model, indices: np.ndarray) -> np.ndarray:
        return keras_head.predict(model, self.images, indices)

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
