"""scikit-learn fold models: the Table 1 baselines and the frozen-encoder style descriptors + SVM."""
from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from deeppainter.models.descriptors import encoder_descriptors
from deeppainter.models.registry import FoldContext
from deeppainter.runs import cached_npy


def chosen_hyperparameters(estimator) -> dict[str, str]:
    """What every grid search inside a fitted pipeline picked (recorded per fold, so choices can be audited)."""
    def describe(value) -> str:
        func = getattr(value, "func", None)  # a FunctionTransformer candidate: name its function
        return func.__name__ if func is not None else str(value)

    steps = getattr(estimator, "steps", [("model", estimator)])
    return {f"chose_{name}.{key}": describe(value)
            for name, step in steps if hasattr(step, "best_params_") for key, value in step.best_params_.items()}



class BaselineModel:
    """A scikit-learn baseline (deeppainter.classical.baselines) evaluated in exactly the same folds."""

    def __init__(self, name: str, images: np.ndarray, seed: int, svm_power: str = "none",
                 feature_scales: tuple[int, ...] = (1,)):
        self.name, self.images, self.seed = name, images, seed
        self.svm_power, self.feature_scales = svm_power, feature_scales

    @classmethod
    def from_context(cls, ctx: FoldContext) -> BaselineModel:
        return cls(ctx.name, ctx.images, ctx.seed, ctx.cfg.classifier.svm_power, ctx.cfg.classifier.feature_scales)

    def _fit(self, indices: np.ndarray, labels: np.ndarray):
        from deeppainter.classical.baselines import build_baseline

        estimator = build_baseline(self.name, seed=self.seed, power=self.svm_power, feature_scales=self.feature_scales)
        return estimator.fit(np.asarray(self.images[indices]), labels[indices])

    def fit_predict(self, fold: int, train_idx, test_idx, labels):
        estimator = self._fit(train_idx, labels)
        return estimator.predict_proba(np.asarray(self.images[test_idx])), chosen_hyperparameters(estimator), None

    def save_final(self, labels: np.ndarray, path: Path) -> None:
        import pickle

        from deeppainter.runs import atomic_write_bytes

        atomic_write_bytes(path, pickle.dumps(self._fit(np.arange(len(labels)), labels)))



class EncoderSVMModel:
    """Frozen-encoder style descriptors (optionally beside the handcrafted features) → scaled RBF SVM."""

    def __init__(self, encoder_path: Path, images: np.ndarray, seed: int, cache_dir: Path,
                 with_image_features: bool = False, svm_power: str = "none"):
        self.seed, self.svm_power = seed, svm_power

        def compute() -> np.ndarray:
            descriptors = encoder_descriptors(keras.models.load_model(encoder_path, compile=False), images)
            if not with_image_features:
                return descriptors
            from deeppainter.classical.features import image_features

            return np.concatenate([descriptors, image_features(np.asarray(images))], axis=1)

        cache_file = Path(cache_dir) / f"descriptors{'_features' if with_image_features else ''}.npy"
        self.descriptors = cached_npy(cache_file, compute)

    @classmethod
    def from_context(cls, ctx: FoldContext) -> EncoderSVMModel:
        return cls(ctx.encoder_path, ctx.images, ctx.seed, ctx.cache_dir,
                   with_image_features=ctx.name == "cae-features-svm", svm_power=ctx.cfg.classifier.svm_power)

    def _fit(self, indices: np.ndarray, labels: np.ndarray):
        from sklearn.pipeline import Pipeline

        from deeppainter.classical.baselines import scaled_svm_steps

        return Pipeline(scaled_svm_steps(self.seed, self.svm_power)).fit(self.descriptors[indices], labels[indices])

    def fit_predict(self, fold: int, train_idx, test_idx, labels):
        estimator = self._fit(train_idx, labels)
        return estimator.predict_proba(self.descriptors[test_idx]), chosen_hyperparameters(estimator), None
