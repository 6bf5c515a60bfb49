"""Open-set attribution: "is this painting by one of the known painters?" (REFERENCE.md §6).

Scores are higher for "known" (a painting by one of the task's painters):

- ``msp``: maximum softmax probability (Hendrycks & Gimpel 2017), the baseline;
- ``energy``: logsumexp of the logits (Liu et al. 2020; the negative energy at T = 1), only where the
  model has logits (a logistic regression's decision function), not mere probabilities;
- ``mahalanobis``: minus the smallest class-conditional Mahalanobis distance with one shared covariance
  (Lee et al. 2018), in the model's feature space, after scaling;
- ``knn``: cosine similarity to the k-th nearest training painting (Sun et al. 2022), L2-normalised features.

Outlier exposure (Hendrycks et al. 2019) is a training choice, not a scorer: the classifier learns a
background class of *other* painters, and its score is one minus the background probability (``background``).

The threshold keeps ``keep`` of the known paintings whose scores were computed out of fold inside the
training folds (never on the fold being tested): an image scoring below it is "none of the known painters".
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp
from sklearn.covariance import LedoitWolf
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

PROBABILITY_SCORERS = ("msp", "energy", "background")
FEATURE_SCORERS = ("mahalanobis", "knn")
SCORERS = PROBABILITY_SCORERS + FEATURE_SCORERS


def msp(probabilities: np.ndarray) -> np.ndarray:
    return np.asarray(probabilities).max(axis=1)


def as_logits(decision: np.ndarray) -> np.ndarray:
    """A logistic regression's decision function as (n, K) logits (two classes: scikit-learn gives one column)."""
    decision = np.asarray(decision, dtype=np.float64)
    return np.c_[np.zeros(len(decision)), decision] if decision.ndim == 1 else decision


def energy(logits: np.ndarray) -> np.ndarray:
    return logsumexp(np.asarray(logits, dtype=np.float64), axis=1)


def l2_normalise(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


# ASSUMPTION: above this many dimensions (a frozen encoder's flattened maps, 16,384 at the cpu preset) the
# features are first projected on a fixed number of leading principal components, so the shared covariance stays
# tractable. The number must not follow the training set's size: with all n - 1 components, each fit spans its
# own training paintings exactly, so distances (and the threshold set on inner folds) change scale with n.
MAHALANOBIS_MAX_DIM = 4096
MAHALANOBIS_COMPONENTS = 512


class MahalanobisScorer:
    """Class means and one shared (Ledoit–Wolf shrunk) covariance of the scaled training features."""

    def fit(self, features: np.ndarray, labels: np.ndarray) -> MahalanobisScorer:
        steps = [StandardScaler()]
        if features.shape[1] > MAHALANOBIS_MAX_DIM:
            steps.append(PCA(min(MAHALANOBIS_COMPONENTS, len(features) - 1), random_state=0))
        self.scaler = make_pipeline(*steps).fit(features)
        scaled = self.scaler.transform(features)
        self.classes = np.unique(labels)
        self.means = np.stack([scaled[labels == c].mean(axis=0) for c in self.classes])
        centred = scaled - self.means[np.searchsorted(self.classes, labels)]
        self.precision = LedoitWolf(assume_centered=True).fit(centred).precision_
        return self

    def score(self, features: np.ndarray) -> np.ndarray:
        scaled = self.scaler.transform(features)
        distances = [np.einsum("ij,jk,ik->i", scaled - mean, self.precision, scaled - mean) for mean in self.means]
        return -np.min(distances, axis=0)


class KNNScorer:
    """Cosine similarity to the k-th nearest training painting."""

    def __init__(self, k: int = 10):
        self.k = k

    def fit(self, features: np.ndarray, labels: np.ndarray | None = None) -> KNNScorer:
        bank = l2_normalise(features)
        self.index = NearestNeighbors(n_neighbors=min(self.k, len(bank))).fit(bank)
        return self

    def score(self, features: np.ndarray) -> np.ndarray:
        distances, _ = self.index.kneighbors(l2_normalise(features))
        return 1.0 - distances[:, -1] ** 2 / 2.0  # Euclidean distance of unit vectors → cosine similarity


def feature_scorer(name: str, knn_k: int = 10):
    return MahalanobisScorer() if name == "mahalanobis" else KNNScorer(knn_k)


def known_probabilities(probabilities: np.ndarray, n_known: int) -> np.ndarray:
    """Probabilities over the known painters only (renormalised when a background class follows them)."""
    known = np.asarray(probabilities)[:, :n_known]
    return known / np.maximum(known.sum(axis=1, keepdims=True), 1e-12)


def probability_score(name: str, probabilities: np.ndarray, logits: np.ndarray | None,
                      background: bool) -> np.ndarray | None:
    """The score ``name`` from a model's outputs; None where the model cannot give it.

    With a background class (the last column), ``msp`` and ``energy`` read the known classes only and
    ``background`` is one minus the background probability.
    """
    if name == "background":
        return 1.0 - probabilities[:, -1] if background else None
    if name == "msp":
        known = probabilities[:, :-1] if background else probabilities
        return msp(known)
    if logits is None:
        return None
    return energy(logits[:, :-1] if background else logits)


def threshold_keeping(known_scores: np.ndarray, keep: float) -> float:
    """The score above which ``keep`` of the known paintings lie (their (1 - keep) quantile)."""
    return float(np.quantile(np.asarray(known_scores, dtype=np.float64), 1.0 - keep))


def fpr_at_tpr(known_scores: np.ndarray, unknown_scores: np.ndarray, tpr: float = 0.95) -> float:
    """Share of unknown paintings accepted when the threshold keeps ``tpr`` of the known ones."""
    return float(np.mean(np.asarray(unknown_scores) >= threshold_keeping(known_scores, tpr)))


def auroc(known_scores: np.ndarray, unknown_scores: np.ndarray) -> float:
    """P(a known image scores above an unknown one), ties counting half: the AUROC (Mann–Whitney), as scikit-learn's
    roc_auc_score gives it, but fast enough for stats.paired_auroc to bootstrap."""
    ordered = np.sort(np.asarray(unknown_scores, dtype=np.float64))
    known_scores = np.asarray(known_scores, dtype=np.float64)
    below, up_to = np.searchsorted(ordered, known_scores, "left"), np.searchsorted(ordered, known_scores, "right")
    return float((below + 0.5 * (up_to - below)).sum() / (len(known_scores) * len(ordered)))


@dataclass(frozen=True)
class OpenSetResult:
    auroc: float
    fpr95: float  # unknowns accepted at 95% of knowns kept (the threshold set on these very scores)
    known_kept: float  # knowns accepted at the threshold chosen inside the training folds
    unknown_rejected: float  # unknowns rejected at that threshold
    known_accuracy_at_threshold: float  # knowns accepted *and* attributed to the right painter, over all knowns

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


def evaluate(known_scores: np.ndarray, unknown_scores: np.ndarray, thresholds: np.ndarray,
             unknown_thresholds: np.ndarray, known_correct: np.ndarray) -> OpenSetResult:
    """Open-set numbers of one set of test images; ``thresholds`` are per known image (its fold's threshold)."""
    known_scores, unknown_scores = np.asarray(known_scores), np.asarray(unknown_scores)
    accepted = known_scores >= thresholds
    return OpenSetResult(
        auroc=auroc(known_scores, unknown_scores),
        fpr95=fpr_at_tpr(known_scores, unknown_scores),
        known_kept=float(accepted.mean()),
        unknown_rejected=float(np.mean(unknown_scores < unknown_thresholds)),
        known_accuracy_at_threshold=float(np.mean(accepted & np.asarray(known_correct, dtype=bool))))


def painter_groups(painters: list[str], n_groups: int, seed: int) -> dict[str, int]:
    """Painters of the unknown pool dealt in turn into ``n_groups`` groups after a seeded shuffle."""
    order = np.random.default_rng(seed).permutation(sorted(painters))
    return {str(painter): index % n_groups for index, painter in enumerate(order)}
