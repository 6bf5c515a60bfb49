"""Linear probes (and an SVM) on frozen pretrained features (deeppainter.models.pretrained), issue #14.

The features of one (extractor, image set, preprocessing) are computed once and kept in a shared
cache, ``<cache>/features/<extractor>-<S>px-<hash>.npy`` (``<cache>`` = data.cache_dir or
``deeppainter.data.datasets.default_cache_dir()``), where the hash covers the standardised uint8
pixels, their size S and the extractor's weights (package version + sha256). Every cv10 run on the
same images — any model, any run folder — therefore re-uses the file; the concatenation model
re-uses the single-extractor files.

In each fold only the classifier is fitted, on the training folds: StandardScaler → multinomial
logistic regression with C picked by a stratified inner CV of the training folds
(``classifier.probe_c``), or the baselines' scaled RBF SVM (C from deeppainter.classical.baselines).
The choice is recorded per fold (``chose_logreg.C`` / ``chose_svm.estimator__C``).

``classifier.probe_view`` is a robustness ablation: the networks see the standardised squares as they
are ("colour"), as grey-scale luma ("grey"), or as six views whose features are averaged
("multicrop": the square, its mirror and its four corner crops), the same at training and test time.

``save_final`` pickles a pipeline that starts from uint8 pixels (it runs the extractors itself), so
``python -m deeppainter.predict`` can use it like the Table 1 baselines.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from deeppainter.classical.sklearn_models import chosen_hyperparameters
from deeppainter.models.registry import FoldContext
from deeppainter.runs import cached_npy

# registered name → (extractors whose features go side by side, classifier)
PROBES: dict[str, tuple[tuple[str, ...], str]] = {
    "effnet-lite0-logreg": (("efficientnet-lite0",), "logreg"),
    "dinov2-logreg": (("dinov2-s",), "logreg"),
    "magenta-style-svm": (("magenta-style",), "svm"),
    "pretrained-concat-logreg": (("efficientnet-lite0", "dinov2-s"), "logreg"),
}
LOGREG_MAX_ITER = 5000  # ASSUMPTION: enough for lbfgs to converge on scaled 100–2,048-d features
CORNER_FRACTION = 7 / 8  # ASSUMPTION: multicrop corner crops keep 7/8 of the side (a small shift and zoom)
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601, as PIL's convert("L")


def view_sets(images: np.ndarray, view: str) -> list[np.ndarray]:
    """The uint8 image sets whose features are averaged for ``view`` (classifier.probe_view)."""
    if view == "colour":
        return [images]
    if view == "grey":
        luma = np.clip(np.rint(images.astype(np.float32) @ LUMA.astype(np.float32)), 0, 255).astype(np.uint8)
        return [np.repeat(luma[..., None], 3, axis=-1)]
    from deeppainter.models.pretrained import resize_squares

    size = images.shape[1]
    crop = round(size * CORNER_FRACTION)
    corners = [images[:, y:y + crop, x:x + crop] for y in (0, size - crop) for x in (0, size - crop)]
    return [images, np.ascontiguousarray(images[:, :, ::-1]),
            *[resize_squares(np.ascontiguousarray(corner), size) for corner in corners]]


def pixels_digest(images: np.ndarray) -> str:
    """sha256 of the uint8 pixels and their shape (the image set and its preprocessing)."""
    images = np.ascontiguousarray(images)
    digest = hashlib.sha256(repr((images.shape, str(images.dtype))).encode())
    for start in range(0, len(images), 256):
        digest.update(images[start:start + 256].tobytes())
    return digest.hexdigest()


def feature_cache_file(cache_root: Path, extractor: str, images: np.ndarray, name: str = "",
                       extra: str = "") -> Path:
    """``<cache>/features/<name>-<S>px-<hash>.npy``: the hash covers the pixels, the extractor's weights
    (package version + sha256) and ``extra`` (e.g. a conversion version); ``name`` defaults to the extractor."""
    from deeppainter.models.pretrained import describe

    info = describe(extractor)
    text = f"{pixels_digest(images)}\0{info['package_version']}\0{info['sha256']}" + (f"\0{extra}" if extra else "")
    key = hashlib.sha256(text.encode())
    return Path(cache_root) / "features" / f"{name or extractor}-{images.shape[1]}px-{key.hexdigest()[:20]}.npy"


def cached_features(extractor: str, images: np.ndarray, cache_root: Path) -> np.ndarray:
    from deeppainter.models.pretrained import extract_features

    return cached_npy(feature_cache_file(cache_root, extractor, images),
                      lambda: extract_features(extractor, np.asarray(images)))


def view_features(images: np.ndarray, extractors: tuple[str, ...], view: str,
                  features_of=None) -> np.ndarray:
    """The extractors' features side by side, each the mean over ``view``'s image sets."""
    from deeppainter.models.pretrained import extract_features

    features_of = features_of or extract_features
    sets = view_sets(np.asarray(images), view)
    return np.concatenate([np.mean([features_of(extractor, image_set) for image_set in sets], axis=0)
                           for extractor in extractors], axis=1).astype(np.float32)


def pretrained_features(images: np.ndarray, extractors: tuple[str, ...], view: str = "colour") -> np.ndarray:
    """uint8 images → the named extractors' features side by side (the first step of a saved model)."""
    return view_features(images, extractors, view)


def probe_classifier(kind: str, seed: int, c_grid: tuple[float, ...], svm_power: str = "none") -> Pipeline:
    """Unfitted StandardScaler → grid-searched classifier on feature vectors."""
    from deeppainter.classical.baselines import _inner_cv, scaled_svm_steps

    if kind == "svm":
        return Pipeline(scaled_svm_steps(seed, svm_power))
    logreg = LogisticRegression(max_iter=LOGREG_MAX_ITER, random_state=seed)
    return Pipeline([("scale", StandardScaler()),
                     ("logreg", GridSearchCV(logreg, {"C": list(c_grid)}, cv=_inner_cv(seed), n_jobs=1))])


def probe_cache_root(cfg) -> Path:
    """Where the shared feature cache lives: data.cache_dir, or the user's default cache."""
    from deeppainter.data.datasets import default_cache_dir

    return Path(cfg.data.cache_dir) if cfg.data.cache_dir else default_cache_dir()


class PretrainedProbeModel:
    """Frozen pretrained features (computed once, shared cache) → scaled logistic regression or SVM per fold."""

    def __init__(self, name: str, images: np.ndarray, seed: int, cache_root: Path,
                 c_grid: tuple[float, ...] = (0.01, 0.1, 1.0), svm_power: str = "none", view: str = "colour"):
        self.name, self.seed, self.c_grid, self.svm_power, self.view = name, seed, tuple(c_grid), svm_power, view
        self.extractors, self.kind = PROBES[name]
        self.features = view_features(images, self.extractors, view,
                                      lambda extractor, image_set: cached_features(extractor, image_set, cache_root))

    @classmethod
    def from_context(cls, ctx: FoldContext) -> PretrainedProbeModel:
        ccfg = ctx.cfg.classifier
        return cls(ctx.name, ctx.images, ctx.seed, probe_cache_root(ctx.cfg), ccfg.probe_c, ccfg.svm_power,
                   ccfg.probe_view)

    def _fit(self, indices: np.ndarray, labels: np.ndarray) -> Pipeline:
        classifier = probe_classifier(self.kind, self.seed, self.c_grid, self.svm_power)
        return classifier.fit(self.features[indices], labels[indices])

    def fit_predict(self, fold: int, train_idx, test_idx, labels):
        estimator = self._fit(train_idx, labels)
        info = {"features": "+".join(self.extractors), "view": self.view, "feature_dim": self.features.shape[1],
                **chosen_hyperparameters(estimator)}
        return estimator.predict_proba(self.features[test_idx]), info, None

    def final_pipeline(self, labels: np.ndarray) -> Pipeline:
        """uint8 pixels → probabilities: the extractors, then the classifier fitted on every image."""
        classifier = self._fit(np.arange(len(labels)), labels)
        extract = FunctionTransformer(pretrained_features, kw_args={"extractors": self.extractors, "view": self.view})
        return Pipeline([("features", extract), *classifier.steps])

    def save_final(self, labels: np.ndarray, path: Path) -> None:
        import pickle

        from deeppainter.runs import atomic_write_bytes

        atomic_write_bytes(path, pickle.dumps(self.final_pipeline(labels)))
