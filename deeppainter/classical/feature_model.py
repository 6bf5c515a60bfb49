"""A registered featurizer + head as a cv10 fold model (models.registry.FoldModel).

The featurizer's features are computed once for every image (classical.featurize, cached) and kept
in ``features`` (N, D); in each fold a new head (classical.heads) is fitted on the training folds'
rows and predicts the test fold's. The fitted head of every fold stays available (``fitted_head``,
``decision_scores``) for scoring that needs more than probabilities (logits for open-set scores,
calibration).

``save_final`` pickles a pipeline that starts from uint8 pixels (it runs the featurizer itself, uncached),
so ``python -m deeppainter.predict`` can use it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from deeppainter.classical import featurize, heads
from deeppainter.models.featurizers import leaves
from deeppainter.models.registry import FoldContext, check_probe_augment, get_model


class FeatureHeadModel:
    """Features of one featurizer (computed once) → a head fitted per fold."""

    def __init__(self, featurizer: str, head: str, parts: dict[str, np.ndarray], ccfg, seed: int,
                 settings: featurize.FeatureSettings, augmented: tuple[np.ndarray, ...] = ()):
        self.featurizer, self.head, self.ccfg, self.seed, self.settings = featurizer, head, ccfg, seed, settings
        self.features = np.concatenate(list(parts.values()), axis=1).astype(np.float32)  # (N, D)
        self.augmented = augmented  # classifier.probe_augment: more (N, D) training rows, one array per copy
        self.blocks = featurize.columns({part: block.shape[1] for part, block in parts.items()})
        self.fitted: dict[int, object] = {}  # fold → its fitted head
        self.sees_views = any(leaf.pretrained for leaf in leaves(featurizer))  # classifier.probe_view applies

    @classmethod
    def from_context(cls, ctx: FoldContext) -> FeatureHeadModel:
        spec = get_model(ctx.name)
        settings = featurize.FeatureSettings.from_context(ctx)
        augment = ctx.cfg.classifier.probe_augment
        check_probe_augment(ctx.name, augment)
        augmented = tuple(featurize.features(spec.featurizer, copy, settings)
                          for copy in featurize.augment_sets(ctx.images, augment))
        return cls(spec.featurizer, spec.head, featurize.part_features(spec.featurizer, ctx.images, settings),
                   ctx.cfg.classifier, ctx.seed, settings, augmented)

    def training_rows(self, indices: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The features and labels a head learns from for the paintings ``indices``: their own rows, then those of
        each augmented copy."""
        rows = [self.features[indices], *(copy[indices] for copy in self.augmented)]
        return np.concatenate(rows), np.tile(labels[indices], len(rows))

    def new_head(self):
        return heads.build_head(self.head, self.ccfg, self.seed, self.blocks)

    def fit_predict(self, fold: int, train_idx, test_idx, labels):
        head = self.new_head().fit(*self.training_rows(np.asarray(train_idx), labels))
        self.fitted[fold] = head
        info = {"featurizer": self.featurizer, "feature_dim": int(self.features.shape[1]),
                **({"view": self.settings.view} if self.sees_views else {}), **heads.chosen_hyperparameters(head)}
        return head.predict_proba(self.features[test_idx]), info, None

    def fitted_head(self, fold: int):
        """The head fitted in ``fold`` (on that fold's training rows of ``features``)."""
        if fold not in self.fitted:
            raise KeyError(f"fold {fold} was not fitted in this process (finished folds of a resumed run are not refitted)")
        return self.fitted[fold]

    def decision_scores(self, fold: int, indices: np.ndarray) -> np.ndarray:
        """Logits of ``fold``'s head for the images ``indices`` (classical.heads.decision_scores)."""
        return heads.decision_scores(self.fitted_head(fold), self.features[indices])

    def final_pipeline(self, labels: np.ndarray) -> Pipeline:
        """uint8 pixels → probabilities: the featurizer, then the head fitted on every labelled image (the first
        ``len(labels)``; images after them are unknown painters' that only an open-set run scores)."""
        head = self.new_head().fit(*self.training_rows(np.arange(len(labels)), np.asarray(labels)))
        extract = FunctionTransformer(featurize.pixel_features, kw_args={
            "featurizer": self.featurizer, "feature_scales": self.settings.feature_scales, "view": self.settings.view})
        return Pipeline([("features", extract), *head.steps])

    def save_final(self, labels: np.ndarray, path: Path) -> None:
        import pickle

        from deeppainter.runs import atomic_write_bytes

        atomic_write_bytes(path, pickle.dumps(self.final_pipeline(labels)))
