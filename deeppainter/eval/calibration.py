"""Calibration: expected calibration error, reliability diagrams and temperature scaling (Guo et al. 2017).

Temperature scaling divides a model's logits by one scalar T fitted (negative log-likelihood) on
out-of-fold outputs of the *training* folds. A model that gives probabilities only is scaled in the same
family through its log-probabilities: softmax(log p / T) ∝ p^(1/T).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

ECE_BINS = 15  # Guo et al. 2017
TEMPERATURE_BOUNDS = (0.05, 20.0)  # ASSUMPTION: a search range wide enough for any sane model


def log_probabilities(probabilities: np.ndarray) -> np.ndarray:
    return np.log(np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, 1.0))


def reliability_bins(probabilities: np.ndarray, truth: np.ndarray, bins: int = ECE_BINS) -> list[dict]:
    """Equal-width bins of the top probability: count, mean confidence and accuracy of each non-empty bin."""
    probabilities = np.asarray(probabilities)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(truth)
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    return [{"low": b / bins, "high": (b + 1) / bins, "count": int((index == b).sum()),
             "confidence": float(confidence[index == b].mean()), "accuracy": float(correct[index == b].mean())}
            for b in range(bins) if (index == b).any()]


def expected_calibration_error(probabilities: np.ndarray, truth: np.ndarray, bins: int = ECE_BINS) -> float:
    """Σ_b (n_b / n) |accuracy_b − confidence_b| over equal-width bins of the top probability."""
    table = reliability_bins(probabilities, truth, bins)
    total = sum(row["count"] for row in table)
    return float(sum(row["count"] * abs(row["accuracy"] - row["confidence"]) for row in table) / max(total, 1))


def fit_temperature(logits: np.ndarray, truth: np.ndarray) -> float:
    """The T minimising the negative log-likelihood of softmax(logits / T) on held-out outputs."""
    logits, truth = np.asarray(logits, dtype=np.float64), np.asarray(truth)

    def nll(temperature: float) -> float:
        return -float(log_softmax(logits / temperature, axis=1)[np.arange(len(truth)), truth].mean())

    return float(minimize_scalar(nll, bounds=TEMPERATURE_BOUNDS, method="bounded").x)


def apply_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    return softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)


def reliability_diagram(probabilities: np.ndarray, truth: np.ndarray, path: Path, title: str,
                        bins: int = ECE_BINS) -> None:
    """The reliability diagram PNG of these outputs, the ECE in its title."""
    from deeppainter import plots

    table = reliability_bins(probabilities, truth, bins)
    ece = expected_calibration_error(probabilities, truth, bins)
    plots.reliability(table, bins, path, f"{title}\nECE {100 * ece:.2f}% ({bins} bins, {len(truth)} images)")
