"""Out-of-fold predictions → the papers' tables: accuracy, macro precision/recall/F1, confusion, CIs.

Everything is computed with scikit-learn from ``predictions.csv`` so users can recompute it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    classification_report,
    confusion_matrix,
    precision_recall_fscore_support,
)

from deeppainter import plots
from deeppainter.runs import atomic_write_csv, atomic_write_json, atomic_write_text

METRICS = ("accuracy", "precision", "recall", "f1")


def score(y_true, y_pred) -> dict[str, float]:
    precision, recall, f1, _ = precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)
    return {"accuracy": float(accuracy_score(y_true, y_pred)), "precision": float(precision),
            "recall": float(recall), "f1": float(f1)}


def bootstrap_ci(correct: np.ndarray, resamples: int, seed: int) -> tuple[float, float]:
    """95% percentile bootstrap interval of accuracy over images."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(correct), size=(resamples, len(correct)))
    means = correct[draws].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def most_confused(matrix: np.ndarray, classes: list[str], top: int = 5) -> list[dict]:
    """Unordered class pairs ranked by how often either is mistaken for the other."""
    pairs = []
    for a in range(len(classes)):
        for b in range(a + 1, len(classes)):
            count = int(matrix[a, b] + matrix[b, a])
            if count:
                pairs.append({"pair": f"{classes[a]} / {classes[b]}", "confusions": count,
                              f"{classes[a]}→{classes[b]}": int(matrix[a, b]),
                              f"{classes[b]}→{classes[a]}": int(matrix[b, a])})
    return sorted(pairs, key=lambda p: -p["confusions"])[:top]


def summarise(predictions: pd.DataFrame, classes: list[str], resamples: int, seed: int) -> dict:
    """Per-fold scores, their mean ± std, a bootstrap CI and the summed confusion matrix."""
    per_fold = pd.DataFrame([{"fold": int(fold), "n_test": len(group), **score(group["true"], group["predicted"])}
                             for fold, group in predictions.groupby("fold")])
    correct = (predictions["true"] == predictions["predicted"]).to_numpy(dtype=float)
    low, high = bootstrap_ci(correct, resamples, seed)
    matrix = confusion_matrix(predictions["true"], predictions["predicted"], labels=classes)
    summary = {
        "classes": classes,
        "n_images": int(len(predictions)),
        "n_folds": int(len(per_fold)),
        "accuracy_pooled": float(correct.mean()),
        "balanced_accuracy_pooled": float(balanced_accuracy_score(predictions["true"], predictions["predicted"])),
        "accuracy_ci95": [low, high],
        "most_confused": most_confused(matrix, classes),
        "confusion_matrix": matrix.tolist(),
    }
    for metric in METRICS:
        summary[f"{metric}_mean"] = float(per_fold[metric].mean())
        summary[f"{metric}_std"] = float(per_fold[metric].std(ddof=1)) if len(per_fold) > 1 else 0.0
    return summary | {"per_fold": per_fold.to_dict(orient="records")}


def write_reports(run_dir: Path, predictions: pd.DataFrame, summary: dict, extra: dict, title: str) -> None:
    run_dir = Path(run_dir)
    classes = summary["classes"]
    matrix = np.array(summary["confusion_matrix"])
    atomic_write_csv(run_dir / "predictions.csv", predictions)
    atomic_write_csv(run_dir / "folds.csv", pd.DataFrame(summary["per_fold"]))
    atomic_write_csv(run_dir / "confusion_matrix.csv",
                     pd.DataFrame(matrix, index=classes, columns=classes).rename_axis("true").reset_index())
    plots.confusion(matrix, classes, run_dir / "confusion_matrix.png", title)
    report = classification_report(predictions["true"], predictions["predicted"], labels=classes, digits=4,
                                   zero_division=0)
    atomic_write_text(run_dir / "classification_report.txt", report)
    atomic_write_json(run_dir / "metrics.json", {**summary, **extra})


def format_percent(mean: float, std: float | None = None) -> str:
    return f"{100 * mean:.2f}" + (f" ± {100 * std:.2f}" if std is not None else "")
