"""Heads: unfitted scikit-learn estimators on a feature matrix, one factory per kind.

A head is fitted in every outer fold on the training folds' features only; its hyper-parameters are
picked by :func:`inner_search`, a grid search over stratified inner folds of whatever data ``fit``
receives, so the choice never sees the test fold. Every factory is ``(classifier_config, seed,
blocks) -> estimator``; ``blocks`` maps each part of a concatenated featurizer to its columns (the
heads that treat one part apart, and the stack, read it). A head that trains with Keras lives in train/
(a higher layer) and is registered by import path ("package.module:function"), imported only when built.

| head          | steps                                                                  |
|---------------|------------------------------------------------------------------------|
| logreg        | StandardScaler → multinomial logistic regression, C in classifier.probe_c |
| svm           | [power normalisation →] StandardScaler → RBF SVM (C), sigmoid-calibrated |
| knn           | StandardScaler → distance-weighted k-NN (k)                            |
| rbm-knn       | BernoulliRBM → StandardScaler → k-NN                                   |
| rbm-svm       | BernoulliRBM → the svm head                                            |
| pixels-rbm-svm| the ``pixels32`` part through a BernoulliRBM beside the other parts → the svm head |
| pca-svm       | StandardScaler → PCA (95% variance) → RBF SVM                          |
| dense         | StandardScaler → the CAE classifier's SpatialDropout2D dense head (Keras, classifier.*; deeppainter.train.dense_head) |
| stack         | see deeppainter.classical.stacking                                     |

SVM probabilities come from a sigmoid calibration of the refitted SVM
(``CalibratedClassifierCV(SVC(), ensemble=False)``; ``SVC(probability=True)`` is deprecated in
scikit-learn 1.9). ``classifier.svm_power``: ``sqrt`` takes the signed square root of every feature
before the scaler (the Hellinger-kernel trick for histogram features, Perronnin et al. 2010), ``select``
lets the inner search choose between none and sqrt. Everything runs with n_jobs=1.
"""
from __future__ import annotations

import importlib

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import BernoulliRBM
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import SVC

from deeppainter.config import CHOICES
from deeppainter.errors import UserError

INNER_FOLDS = 3
SVM_C = (1.0, 10.0, 100.0)
KNN_K = (1, 5, 9, 15)
POWER = CHOICES["classifier.svm_power"]  # none | sqrt | select
LOGREG_MAX_ITER = 5000  # ASSUMPTION: enough for lbfgs to converge on scaled 100–2,048-d features
RBM_COMPONENTS = 256  # ASSUMPTION: not given by [P16]
RBM_ITERATIONS = 20  # ASSUMPTION
RBM_LEARNING_RATE = 0.02  # ASSUMPTION
PCA_VARIANCE = 0.95  # ASSUMPTION: raw-pixel floor keeps 95% of the variance (≈120 components)


def inner_search(estimator, grid: dict, seed: int) -> GridSearchCV:
    """``estimator`` with ``grid`` chosen by stratified inner folds of the data it is fitted on."""
    return GridSearchCV(estimator, grid, cv=StratifiedKFold(INNER_FOLDS, shuffle=True, random_state=seed), n_jobs=1)


def _calibrated_svm():
    return CalibratedClassifierCV(SVC(kernel="rbf", gamma="scale"), method="sigmoid", cv=INNER_FOLDS, ensemble=False)


def signed_sqrt(x):
    return np.sign(x) * np.sqrt(np.abs(x))


def svm_steps(seed: int, power: str = "none") -> list[tuple[str, object]]:
    """Pipeline steps from feature vectors to an SVM: [power normalisation →] StandardScaler → RBF SVM."""
    if power not in POWER:
        raise UserError(f"classifier.svm_power={power!r} is not one of: {', '.join(POWER)}")
    search = inner_search(_calibrated_svm(), {"estimator__C": list(SVM_C)}, seed)
    if power == "none":
        return [("scale", StandardScaler()), ("svm", search)]
    steps = [("power", FunctionTransformer(signed_sqrt)), ("scale", StandardScaler())]
    if power == "sqrt":
        return [*steps, ("svm", search)]
    candidates = Pipeline([*steps, ("svm", _calibrated_svm())])
    grid = {"power": ["passthrough", FunctionTransformer(signed_sqrt)], "svm__estimator__C": list(SVM_C)}
    return [("svm", inner_search(candidates, grid, seed))]


def _knn_steps(seed: int) -> list[tuple[str, object]]:
    knn = KNeighborsClassifier(weights="distance", n_jobs=1)
    return [("scale", StandardScaler()), ("knn", inner_search(knn, {"n_neighbors": list(KNN_K)}, seed))]


def _rbm(seed: int) -> BernoulliRBM:
    return BernoulliRBM(n_components=RBM_COMPONENTS, learning_rate=RBM_LEARNING_RATE, n_iter=RBM_ITERATIONS,
                        batch_size=20, random_state=seed)


def logreg_head(ccfg, seed: int, blocks=None) -> Pipeline:
    logreg = LogisticRegression(max_iter=LOGREG_MAX_ITER, random_state=seed)
    return Pipeline([("scale", StandardScaler()), ("logreg", inner_search(logreg, {"C": list(ccfg.probe_c)}, seed))])


def svm_head(ccfg, seed: int, blocks=None) -> Pipeline:
    return Pipeline(svm_steps(seed, ccfg.svm_power))


def knn_head(ccfg, seed: int, blocks=None) -> Pipeline:
    return Pipeline(_knn_steps(seed))


def rbm_knn_head(ccfg, seed: int, blocks=None) -> Pipeline:
    return Pipeline([("rbm", _rbm(seed)), *_knn_steps(seed)])


def rbm_svm_head(ccfg, seed: int, blocks=None) -> Pipeline:
    return Pipeline([("rbm", _rbm(seed)), *svm_steps(seed, ccfg.svm_power)])


def pixels_rbm_svm_head(ccfg, seed: int, blocks) -> Pipeline:
    """The ``pixels32`` part through an RBM, the other parts as they are, side by side → the svm head."""
    if "pixels32" not in blocks:
        raise UserError(f"the pixels-rbm-svm head needs a featurizer with a pixels32 part, not {', '.join(blocks)}")
    parts = [(name, "passthrough" if name != "pixels32" else _rbm(seed), columns) for name, columns in blocks.items()]
    return Pipeline([("union", ColumnTransformer(parts)), *svm_steps(seed, ccfg.svm_power)])


def pca_svm_head(ccfg, seed: int, blocks=None) -> Pipeline:
    # PCA components are signed projections: no power normalisation
    svm = inner_search(_calibrated_svm(), {"estimator__C": list(SVM_C)}, seed)
    return Pipeline([("scale", StandardScaler()), ("pca", PCA(n_components=PCA_VARIANCE, svd_solver="full")),
                     ("svm", svm)])


HEADS = {"logreg": logreg_head, "svm": svm_head, "knn": knn_head, "rbm-knn": rbm_knn_head, "rbm-svm": rbm_svm_head,
         "pixels-rbm-svm": pixels_rbm_svm_head, "pca-svm": pca_svm_head,
         "dense": "deeppainter.train.dense_head:dense_head"}


def register_head(kind: str, factory) -> None:
    """Add a head: ``factory(classifier_config, seed, blocks)`` (or its "package.module:function" path) returns an
    unfitted scikit-learn pipeline."""
    if kind in HEADS:
        raise ValueError(f"head {kind!r} is registered twice")
    HEADS[kind] = factory


def build_head(kind: str, ccfg, seed: int, blocks: dict[str, np.ndarray]):
    """An unfitted head of ``kind`` (a key of HEADS) for features whose parts sit at ``blocks``."""
    if kind not in HEADS:
        raise UserError(f"unknown head {kind!r}; choose one of: {', '.join(HEADS)}")
    factory = HEADS[kind]
    if isinstance(factory, str):
        module_name, _, function = factory.partition(":")
        factory = getattr(importlib.import_module(module_name), function)
    return factory(ccfg, seed, blocks)


def chosen_hyperparameters(estimator) -> dict[str, str]:
    """What every grid search inside a fitted pipeline picked, and where a head stopped early (recorded per fold, so
    choices can be audited)."""
    def describe(value) -> str:
        func = getattr(value, "func", None)  # a FunctionTransformer candidate: name its function
        return func.__name__ if func is not None else str(value)

    steps = getattr(estimator, "steps", [("model", estimator)])
    chosen = {f"chose_{name}.{key}": describe(value)
              for name, step in steps if hasattr(step, "best_params_") for key, value in step.best_params_.items()}
    # a head trained with early stopping (dense): how long it trained and which epoch's weights it kept
    chosen |= {f"chose_{name}.{key}": str(getattr(step, f"{key}_"))
               for name, step in steps for key in ("epochs_run", "best_epoch") if hasattr(step, f"{key}_")}
    return chosen


def decision_scores(estimator, features: np.ndarray) -> np.ndarray:
    """A fitted head's logits for ``features``: its decision_function (logistic regression: (n, K), or (n,)
    for two classes); a calibrated SVM's one-vs-rest scores of the SVM inside (before calibration)."""
    if hasattr(estimator, "decision_function"):
        return estimator.decision_function(features)
    if isinstance(estimator, Pipeline):
        before = estimator[:-1].transform(features) if len(estimator) > 1 else features
        return decision_scores(estimator[-1], before)
    if hasattr(estimator, "best_estimator_"):  # a grid search whose best estimator has no decision_function
        return decision_scores(estimator.best_estimator_, features)
    if hasattr(estimator, "calibrated_classifiers_"):
        return decision_scores(estimator.calibrated_classifiers_[0].estimator, features)
    raise TypeError(f"{type(estimator).__name__} gives no decision scores")
