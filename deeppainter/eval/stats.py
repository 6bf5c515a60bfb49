"""Paired tests for "model A beats model B" on the same images (scipy.stats underneath).

- ``mcnemar``: McNemar's test on pooled out-of-fold predictions — only the images one model gets right
  and the other wrong count. Exact (two-sided binomial) when those discordant images are few, else
  the χ² statistic with continuity correction (McNemar 1947; Dietterich 1998).
- ``corrected_t``: the Nadeau–Bengio corrected resampled t-test over the folds' scores — the
  variance of the per-fold differences is inflated by ``1/k + n_test/n_train``, since the training
  sets of cross-validation folds overlap (Nadeau & Bengio 2003; Bouckaert & Frank 2004).
- ``paired_tests``: both, for two runs' prediction tables (``predictions.csv``: path, true,
  predicted, fold), matched by image; the t-test only where both runs used the very same folds.
- ``paired_auroc``: two known-vs-unknown scores of the same images — the corrected t-test over the
  folds' AUROCs where there are folds (cross validation), else a paired bootstrap of the AUROC
  difference, knowns and unknowns resampled apart (one test set: an evaluate run on another source).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from deeppainter.eval import openset

# ASSUMPTION: 2,000 paired resamples: the p-value's own Monte-Carlo error is then about 0.005 near p = 0.05.
BOOTSTRAP_ROUNDS = 2000
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


def paired_auroc(known: pd.DataFrame, unknown: pd.DataFrame, seed: int = 0) -> dict:
    """A minus B in AUROC known-vs-unknown: ``known`` / ``unknown`` have the columns ``fold``, ``a`` and ``b``
    (the two models' known-painter scores of the same images, higher = more likely known).

    With two or more folds, the per-fold AUROCs go to the corrected t-test (``test_over_train`` from the
    known images' fold sizes, since only they are trained on); with one, a paired bootstrap gives the 95%
    interval of the difference and a two-sided p (twice the share of resampled differences on the other side
    of 0)."""
    def auroc(k: pd.DataFrame, u: pd.DataFrame, column: str) -> float:
        return openset.auroc(k[column], u[column])

    result = {"a": auroc(known, unknown, "a"), "b": auroc(known, unknown, "b")}
    result["difference"] = result["a"] - result["b"]
    folds = sorted(known["fold"].unique())
    if len(folds) > 1:
        per_fold = [(known[known["fold"] == f], unknown[unknown["fold"] == f]) for f in folds]
        a, b = ([auroc(k, u, column) for k, u in per_fold] for column in ("a", "b"))
        sizes = known["fold"].value_counts()
        test_over_train = float((sizes / (len(known) - sizes)).mean())
        return {**result, "method": f"corrected t over {len(folds)} folds", **corrected_t(a, b, test_over_train)}
    rng = np.random.default_rng(seed)
    k_a, k_b, u_a, u_b = (np.asarray(frame[c], dtype=np.float64) for frame in (known, unknown) for c in ("a", "b"))
    differences = []
    for _ in range(BOOTSTRAP_ROUNDS):
        ki, ui = rng.integers(0, len(k_a), len(k_a)), rng.integers(0, len(u_a), len(u_a))
        differences.append(openset.auroc(k_a[ki], u_a[ui]) - openset.auroc(k_b[ki], u_b[ui]))
    differences = np.asarray(differences)
    p = min(1.0, 2 * min((differences <= 0).mean(), (differences >= 0).mean()))
    return {**result, "method": f"paired bootstrap, {BOOTSTRAP_ROUNDS} resamples", "p": float(p),
            "ci95": [float(v) for v in np.quantile(differences, [0.025, 0.975])]}


def format_p(p: float | None) -> str:
    """``0.032``, ``4e-15``, ``<1e-300`` or ``—``: a p-value short enough for a table cell."""
    if p is None:
        return "—"
    if p == 0:
        return "<1e-300"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.0e}"
