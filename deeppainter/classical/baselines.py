"""Classical baselines of [P16] Table 1 (REFERENCE.md §1) as scikit-learn pipelines.

Every model fits on uint8 RGB images (N, H, W, 3) and painter labels and offers
``predict`` and ``predict_proba``:

| name               | features                                      | classifier |
|--------------------|-----------------------------------------------|------------|
| features-knn       | image-processing features (classical.features)   | k-NN    |
| features-svm       | image-processing features                     | RBF SVM    |
| rbm-knn            | BernoulliRBM on 32×32 pixels                  | k-NN       |
| rbm-svm            | BernoulliRBM on 32×32 pixels                  | RBF SVM    |
| features-rbm-svm   | image-processing features ‖ RBM features      | RBF SVM    |
| pixels-svm         | 32×32 raw pixels → PCA (95% variance)         | RBF SVM    |

The paper's genetic-algorithm classifier is out of scope. Hyper-parameters (k for
k-NN, C for the SVM) are picked by a 3-fold grid search inside whatever data ``fit``
receives, so under 10-fold CV the choice never sees the test fold. SVM probabilities
come from a sigmoid calibration of the refitted SVM
(``CalibratedClassifierCV(SVC(), ensemble=False)``; ``SVC(probability=True)`` is
deprecated in scikit-learn 1.9). Everything runs with n_jobs=1.

``power`` (config ``classifier.svm_power``) adds power normalisation before the scaler of the
SVMs on features (features-svm, features-rbm-svm, rbm-svm; and cv10's cae-svm, cae-features-svm,
stack): ``sqrt`` takes the signed square root of every feature (the Hellinger-kernel trick for
histogram features, Perronnin et al. 2010: it damps the few dominant bins), ``select`` lets the
inner grid search choose between none and sqrt, so the choice stays inside the training folds.

Pixel-based models (RBM, raw pixels) see the zero-padding bars, as the CAE does;
the image-processing features ignore them (see deeppainter.classical.features).

Runtime, one fold of 10-fold CV on 1,425 images of 64×64 (fit on 1,282, predict 143;
one core of a shared 2-core machine): features-knn ≈ 2 s, features-svm ≈ 6 s,
pixels-svm ≈ 3 s, rbm-knn ≈ 55 s, rbm-svm / features-rbm-svm ≈ 1–3 min (the RBM's
20 epochs over 3,072 inputs dominate). Feature extraction: ≈ 2 ms per 64×64 image,
≈ 10 ms per 128×128 image.
"""
from __future__ import annotations

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import BernoulliRBM
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import SVC

from deeppainter.classical.features import multiscale_features
from deeppainter.config import CHOICES
from deeppainter.errors import UserError

PIXEL_SIZE = 32  # ASSUMPTION: [P16] does not give the RBM input size; 32×32×3 = 3,072 inputs
RBM_COMPONENTS = 256  # ASSUMPTION: not given by [P16]
RBM_ITERATIONS = 20  # ASSUMPTION
RBM_LEARNING_RATE = 0.02  # ASSUMPTION
PCA_VARIANCE = 0.95  # ASSUMPTION: raw-pixel floor keeps 95% of the variance (≈120 components)
SVM_C = (1.0, 10.0, 100.0)
POWER = CHOICES["classifier.svm_power"]  # none | sqrt | select
KNN_K = (1, 5, 9, 15)
INNER_FOLDS = 3


def downsample_pixels(images: np.ndarray, size: int = PIXEL_SIZE) -> np.ndarray:
    """uint8 images (N, H, W, 3) → float32 (N, size·size·3) in [0, 1], area-averaged."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise UserError(f"expected images shaped (N, H, W, 3), got {images.shape}")
    n, h, w = images.shape[:3]
    x = images.astype(np.float32) / 255.0
    # area resampling: average the source rows / columns that fall into each target cell
    rows = np.minimum(np.arange(size + 1) * h // size, h)
    cols = np.minimum(np.arange(size + 1) * w // size, w)
    if h >= size and w >= size:
        x = np.add.reduceat(x, rows[:-1], axis=1) / np.diff(rows)[None, :, None, None]
        x = np.add.reduceat(x, cols[:-1], axis=2) / np.diff(cols)[None, None, :, None]
    else:  # smaller than the target: nearest neighbour
        x = x[:, np.arange(size) * h // size][:, :, np.arange(size) * w // size]
    return x.reshape(n, -1).astype(np.float32)


def _features_step(scales):
    return FunctionTransformer(multiscale_features, kw_args={"scales": tuple(scales)})


def _pixels_step():
    return FunctionTransformer(downsample_pixels)


def _rbm_steps(seed):
    return [
        ("pixels", _pixels_step()),
        ("rbm", BernoulliRBM(n_components=RBM_COMPONENTS, learning_rate=RBM_LEARNING_RATE,
                             n_iter=RBM_ITERATIONS, batch_size=20, random_state=seed)),
    ]


def _inner_cv(seed):
    return StratifiedKFold(INNER_FOLDS, shuffle=True, random_state=seed)


def _calibrated_svm():
    return CalibratedClassifierCV(SVC(kernel="rbf", gamma="scale"), method="sigmoid", cv=INNER_FOLDS, ensemble=False)


def svm_classifier(seed):
    return GridSearchCV(_calibrated_svm(), {"estimator__C": list(SVM_C)}, cv=_inner_cv(seed), n_jobs=1)


def signed_sqrt(x):
    return np.sign(x) * np.sqrt(np.abs(x))


def scaled_svm_steps(seed, power: str = "none") -> list[tuple[str, object]]:
    """Pipeline steps from feature vectors to an SVM: [power normalisation →] StandardScaler → RBF SVM."""
    if power not in POWER:
        raise UserError(f"classifier.svm_power={power!r} is not one of: {', '.join(POWER)}")
    if power == "none":
        return [("scale", StandardScaler()), ("svm", svm_classifier(seed))]
    steps = [("power", FunctionTransformer(signed_sqrt)), ("scale", StandardScaler())]
    if power == "sqrt":
        return [*steps, ("svm", svm_classifier(seed))]
    candidates = Pipeline([*steps, ("svm", _calibrated_svm())])
    grid = {"power": ["passthrough", FunctionTransformer(signed_sqrt)], "svm__estimator__C": list(SVM_C)}
    return [("svm", GridSearchCV(candidates, grid, cv=_inner_cv(seed), n_jobs=1))]


def _knn(seed):
    knn = KNeighborsClassifier(weights="distance", n_jobs=1)
    return GridSearchCV(knn, {"n_neighbors": list(KNN_K)}, cv=_inner_cv(seed), n_jobs=1)


def _features_knn(seed, power, scales):
    return Pipeline([("features", _features_step(scales)), ("scale", StandardScaler()), ("knn", _knn(seed))])


def _features_svm(seed, power, scales):
    return Pipeline([("features", _features_step(scales)), *scaled_svm_steps(seed, power)])


def _rbm_knn(seed, power, scales):
    return Pipeline(_rbm_steps(seed) + [("scale", StandardScaler()), ("knn", _knn(seed))])


def _rbm_svm(seed, power, scales):
    return Pipeline(_rbm_steps(seed) + scaled_svm_steps(seed, power))


def _features_rbm_svm(seed, power, scales):
    union = FeatureUnion([("features", _features_step(scales)), ("rbm", Pipeline(_rbm_steps(seed)))], n_jobs=1)
    return Pipeline([("union", union), *scaled_svm_steps(seed, power)])


def _pixels_svm(seed, power, scales):  # PCA components are signed projections: no power normalisation
    return Pipeline([
        ("pixels", _pixels_step()),
        ("scale", StandardScaler()),
        ("pca", PCA(n_components=PCA_VARIANCE, svd_solver="full")),
        ("svm", svm_classifier(seed)),
    ])


_BUILDERS = {
    "features-knn": _features_knn,
    "features-svm": _features_svm,
    "rbm-knn": _rbm_knn,
    "rbm-svm": _rbm_svm,
    "features-rbm-svm": _features_rbm_svm,
    "pixels-svm": _pixels_svm,
}
BASELINES = tuple(_BUILDERS)


def build_baseline(name: str, seed: int = 0, power: str = "none", feature_scales: tuple[int, ...] = (1,)) -> Pipeline:
    """An unfitted scikit-learn Pipeline for the named baseline (see the module table).

    ``feature_scales`` (config ``classifier.feature_scales``): the handcrafted features are taken at
    full resolution and at 1/s of it for every other s, side by side.
    """
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise UserError(f"unknown baseline {name!r}: choose one of {', '.join(BASELINES)}") from None
    return builder(seed, power, feature_scales)
