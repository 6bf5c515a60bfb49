"""``--model stack``: SVM members combined by a logistic regression fitted inside the training folds.

``cv10 ensemble`` averages finished runs with equal weights, and which runs to combine is picked after
their scores are known. ``stack`` is the honest form of the same idea (stacked generalisation,
Wolpert 1992, via scikit-learn's ``StackingClassifier``): in every outer fold, the members'
out-of-fold probabilities on ``classifier.stack_folds`` inner folds of the *training* folds train the
combiner, then every member is refitted on all training folds. The test fold is only predicted.

Members (``classifier.stack_members``), each its cv10 model of the same name on precomputed inputs:

| member       | inputs (computed once per image, cached in the run)          | classifier            |
|--------------|--------------------------------------------------------------|-----------------------|
| features-svm | handcrafted features (classical.features)                    | scaled RBF SVM        |
| cae-svm      | frozen-encoder style descriptors (models.descriptors)           | scaled RBF SVM     |
| pixels-svm   | 32×32 pixels (baselines.downsample_pixels)                   | scaled PCA → RBF SVM  |
| effnet-lite0-logreg, dinov2-logreg, magenta-style-svm | frozen pretrained features (classical.probes, shared cache) | as the probe |

Cost: each member is fitted ``stack_folds + 1`` times per outer fold.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import StackingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline

from deeppainter.classical.baselines import (
    build_baseline,
    downsample_pixels,
    scaled_svm_steps,
)
from deeppainter.classical.probes import (
    PROBES,
    PretrainedProbeModel,
    probe_cache_root,
    probe_classifier,
)
from deeppainter.config import Config
from deeppainter.models.registry import FoldContext
from deeppainter.runs import cached_npy


def member_inputs(name: str, images: np.ndarray, cfg: Config, seed: int, cache_dir: Path,
                  encoder_path: Path | None) -> np.ndarray:
    """The array the member's classifier reads, one row per image."""
    if name == "cae-svm":
        from deeppainter.classical.sklearn_models import EncoderSVMModel

        return EncoderSVMModel(encoder_path, images, seed, cache_dir).descriptors
    if name in PROBES:
        return PretrainedProbeModel(name, images, seed, probe_cache_root(cfg), cfg.classifier.probe_c,
                                    cfg.classifier.svm_power, cfg.classifier.probe_view).features
    if name == "features-svm":
        from deeppainter.classical.features import multiscale_features

        scales = cfg.classifier.feature_scales
        return cached_npy(Path(cache_dir) / "image_features.npy", lambda: multiscale_features(images, scales))
    return downsample_pixels(np.asarray(images))


def member_classifier(name: str, columns: np.ndarray, seed: int, power: str = "none",
                      c_grid: tuple[float, ...] = (0.01, 0.1, 1.0)) -> Pipeline:
    """Select the member's columns, then the same steps its own cv10 model uses after its inputs."""
    select = ("select", ColumnTransformer([(name, "passthrough", columns)]))
    if name in PROBES:
        return Pipeline([select, *probe_classifier(PROBES[name][1], seed, c_grid, power).steps])
    if name == "cae-svm":
        return Pipeline([select, *scaled_svm_steps(seed, power)])
    return Pipeline([select, *build_baseline(name, seed, power).steps[1:]])  # drop the image → inputs step


class StackModel:
    """The members' inputs computed once for every image (side by side, one column range each); cv10's model protocol."""

    def __init__(self, cfg: Config, images: np.ndarray, seed: int, cache_dir: Path, encoder_path: Path | None = None):
        self.members, self.inner_folds, self.seed = cfg.classifier.stack_members, cfg.classifier.stack_folds, seed
        self.power, self.c_grid = cfg.classifier.svm_power, cfg.classifier.probe_c
        blocks = [member_inputs(name, images, cfg, seed, cache_dir, encoder_path) for name in self.members]
        self.inputs = np.concatenate(blocks, axis=1).astype("float32")
        edges = np.cumsum([0] + [block.shape[1] for block in blocks])
        self.columns = {name: np.arange(edges[i], edges[i + 1]) for i, name in enumerate(self.members)}

    @classmethod
    def from_context(cls, ctx: FoldContext) -> StackModel:
        return cls(ctx.cfg, ctx.images, ctx.seed, ctx.cache_dir, ctx.encoder_path)

    def build(self) -> StackingClassifier:
        return StackingClassifier(
            [(name, member_classifier(name, self.columns[name], self.seed, self.power, self.c_grid)) for name in self.members],
            final_estimator=LogisticRegression(max_iter=1000),
            cv=StratifiedKFold(self.inner_folds, shuffle=True, random_state=self.seed),
            stack_method="predict_proba", n_jobs=1)

    def member_weights(self, stack: StackingClassifier) -> dict[str, float]:
        """Each member's share of the combiner's absolute coefficients (how much the stack listens to it)."""
        coef = np.abs(stack.final_estimator_.coef_)
        per_member = np.array([part.sum() for part in np.split(coef, len(self.members), axis=1)])
        return {f"weight_{name}": float(w) for name, w in zip(self.members, per_member / per_member.sum())}

    def fit_predict(self, fold: int, train_idx, test_idx, labels):
        stack = self.build().fit(self.inputs[train_idx], labels[train_idx])
        return stack.predict_proba(self.inputs[test_idx]), self.member_weights(stack), None
