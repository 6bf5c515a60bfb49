"""Paired tests for "model A beats model B" on the same images (scipy.stats underneath).

- ``mcnemar``: McNemar's test on pooled out-of-fold predictions — only the images one model gets right
  and the other wrong count. Exact (two-sided binomial) when those discordant images are few, else
  the χ² statistic with continuity correction (McNemar 1947; Dietterich 1998).
- ``corrected_t``: the Nadeau–Bengio corrected resampled t-test over the folds' scores — the
  variance of the per-fold differences is inflated by ``1/k + n_test/n_train``, since the training
  sets of cross-validation folds overlap (Nadeau & Bengio 2003; Bouckaert & Frank 2004).
- ``paired_tests``: both, for two runs' prediction tables (``predictions.csv``: path, true,
  predicted, fold), matched by image; the t-test only where both runs used the very same folds.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

# ASSUMPTION: below this many discordant images the exact binomial test is used (a common rule of
# thumb; the χ² approximation is poor for small counts).
EXACT_BELOW = 25


def mcnemar(correct_a, correct_b) -> dict:
    """``{"a_only", "b_only", "p", "method"}`` for two boolean arrays (image i right under A / under B)."""
    correct_a, correct_b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    a_only, b_only = int((correct_a & ~correct_b).sum()), int((~correct_a & correct_b).sum())
    discordant = a_only + b_only
    if discordant == 0:
        return {"a_only": 0, "b_only": 0, "p": 1.0, "method": "exact"}
    if discordant < EXACT_BELOW:
        p = stats.binomtest(a_only, discordant, 0.5).pvalue
        return {"a_only": a_only, "b_only": b_only, "p": float(min(1.0, p)), "method": "exact"}
    statistic = (abs(a_only - b_only) - 1) ** 2 / discordant
    return {"a_only": a_only, "b_only": b_only, "p": float(stats.chi2.sf(statistic, df=1)), "method": "chi2"}


def corrected_t(scores_a, scores_b, test_over_train: float) -> dict:
    """``{"t", "df", "p"}``: the Nadeau–Bengio corrected paired t-test of per-fold scores (same folds,
    in the same order); ``test_over_train`` is n_test / n_train of one fold."""
    differences = np.asarray(scores_a, dtype=np.float64) - np.asarray(scores_b, dtype=np.float64)
    k = len(differences)
    if k < 2:
        raise ValueError("the corrected t-test needs two or more folds")
    mean, variance = differences.mean(), differences.var(ddof=1)
    if variance == 0:  # every fold differs by the same amount
        return {"t": math.copysign(math.inf, mean) if mean else 0.0, "df": k - 1, "p": 0.0 if mean else 1.0}
    t = mean / math.sqrt((1 / k + test_over_train) * variance)
    return {"t": float(t), "df": k - 1, "p": float(2 * stats.t.sf(abs(t), df=k - 1))}


def paired_tests(predictions_a: pd.DataFrame, predictions_b: pd.DataFrame) -> dict:
    """McNemar on the images both runs predicted, and the corrected t-test on fold accuracies when every
    image sat in the same fold in both runs (else ``corrected_t`` is None). ``difference``: accuracy of
    A minus B on the shared images, pooled."""
    merged = predictions_a[["path", "true", "predicted", "fold"]].merge(
        predictions_b[["path", "predicted", "fold"]], on="path", suffixes=("_a", "_b"))
    if merged.empty:
        raise ValueError("the two runs share no image")
    correct_a = (merged["true"] == merged["predicted_a"]).to_numpy()
    correct_b = (merged["true"] == merged["predicted_b"]).to_numpy()
    result = {"images": len(merged), "difference": float(correct_a.mean() - correct_b.mean()),
              "mcnemar": mcnemar(correct_a, correct_b), "corrected_t": None}
    same_folds = (merged["fold_a"] == merged["fold_b"]).all() and len(merged) == len(predictions_a) == len(
        predictions_b)
    if same_folds and merged["fold_a"].nunique() > 1:
        per_fold = merged.assign(a=correct_a, b=correct_b).groupby("fold_a")[["a", "b"]].mean()
        sizes = merged["fold_a"].value_counts()
        test_over_train = float((sizes / (len(merged) - sizes)).mean())
        result["corrected_t"] = corrected_t(per_fold["a"], per_fold["b"], test_over_train)
    return result


def format_p(p: float | None) -> str:
    """``0.032``, ``4e-15``, ``<1e-300`` or ``—``: a p-value short enough for a table cell."""
    if p is None:
        return "—"
    if p == 0:
        return "<1e-300"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.0e}"
