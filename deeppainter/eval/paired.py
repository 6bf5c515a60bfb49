"""Two finished cv10 runs compared image by image: ``python -m deeppainter.report --paired RUN_A RUN_B``.

A claim that one model beats another carries a paired test (REFERENCE.md §6). For two runs on the same
images in the same folds this gives, A minus B:

- closed-set accuracy: McNemar and the corrected t-test (eval.stats.paired_tests);
- open set, where both runs scored unknown painters (the same paintings in the same folds): the AUROC of
  each run's own final scorer (``trust.final_scorer``), with the corrected t-test over the folds' AUROCs;
- another source, where both final models were scored by ``evaluate --unknown`` on the same images (the
  newest such run of each): McNemar on the known painters' paintings and a paired bootstrap of the AUROC.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from deeppainter.errors import UserError
from deeppainter.eval.crossval import read_predictions
from deeppainter.eval.report import final_scorer, load_evaluations
from deeppainter.eval.stats import format_p, paired_auroc, paired_tests
from deeppainter.runs import read_json


def _finished(run_dir: Path, command: str) -> dict:
    if not (run_dir / "DONE").exists() or not (run_dir / "config.json").exists():
        raise UserError(f"--paired: {run_dir} is not a finished run folder (no DONE / config.json); give two "
                        f"finished cv10 run folders, e.g. results/runs/<time>_cv10_cpu_seed0")
    record = read_json(run_dir / "config.json")
    if record["command"] != command:
        raise UserError(f"--paired: {run_dir} is a {record['command']} run; give two cv10 run folders")
    return record


def matched_scores(frame_a: pd.DataFrame, frame_b: pd.DataFrame, column_a: str,
                   column_b: str) -> pd.DataFrame | None:
    """``fold``, ``a``, ``b`` for the images both frames hold in the same fold (None unless every image is shared).
    Images match by painter folder and file name: older runs recorded unknown painters' paths with their root."""
    def keyed(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(path=frame["path"].str.split("/").str[-2:].str.join("/"))

    merged = keyed(frame_a)[["path", "fold", column_a]].rename(columns={column_a: "a"}).merge(
        keyed(frame_b)[["path", "fold", column_b]].rename(columns={column_b: "b", "fold": "fold_b"}), on="path")
    if len(merged) != len(frame_a) or len(merged) != len(frame_b) or not (merged["fold"] == merged["fold_b"]).all():
        return None
    return merged[["fold", "a", "b"]]


def _auroc_line(where: str, known: pd.DataFrame | None, unknown: pd.DataFrame | None, scorers: str) -> str:
    if known is None or unknown is None:
        return f"{where}: not the same images (or folds) in both runs — no paired AUROC test"
    result = paired_auroc(known, unknown)
    interval = (f", 95% interval {result['ci95'][0]:+.3f} to {result['ci95'][1]:+.3f}" if "ci95" in result else "")
    return (f"{where} AUROC ({scorers}): A {result['a']:.3f}, B {result['b']:.3f}, Δ {result['difference']:+.3f}"
            f"{interval}; {result['method']} p = {format_p(result['p'])}")


def _accuracy_line(where: str, predictions_a: pd.DataFrame, predictions_b: pd.DataFrame) -> str:
    result = paired_tests(predictions_a, predictions_b)
    t_test = result["corrected_t"]
    return (f"{where} accuracy: Δ {100 * result['difference']:+.2f} points on {result['images']} images; McNemar "
            f"p = {format_p(result['mcnemar']['p'])} ({result['mcnemar']['a_only']} right only in A, "
            f"{result['mcnemar']['b_only']} only in B)"
            + (f"; corrected t p = {format_p(t_test['p'])}" if t_test else ""))


def _newest_evaluation(run_dir: Path) -> dict | None:
    """The newest finished ``evaluate --unknown`` run of ``run_dir``'s final model (report.load_evaluations)."""
    scored = [e for e in load_evaluations(run_dir.parent).get(run_dir.name, []) if "openset" in e["metrics"]]
    return scored[-1] if scored else None


def compare(run_a: Path, run_b: Path) -> list[str]:
    """The paired tests of two cv10 runs (A minus B), one line each."""
    records = [_finished(Path(run), "cv10") for run in (run_a, run_b)]
    run_a, run_b = Path(run_a), Path(run_b)
    models = [record["arguments"]["model"] for record in records]
    lines = [f"A = {run_a.name} ({models[0]}), B = {run_b.name} ({models[1]})"]
    known_a, known_b = read_predictions(run_a), read_predictions(run_b)
    lines.append(_accuracy_line("cross validation", known_a, known_b))
    scorer_a, scorer_b = final_scorer(records[0]), final_scorer(records[1])
    scorers = f"A's {scorer_a} score, B's {scorer_b} score"
    if all((run / "unknown_predictions.csv").exists() for run in (run_a, run_b)):
        unknown_a, unknown_b = (pd.read_csv(run / "unknown_predictions.csv") for run in (run_a, run_b))
        lines.append(_auroc_line("cross validation, leave painters out,",
                                 matched_scores(known_a, known_b, f"score_{scorer_a}", f"score_{scorer_b}"),
                                 matched_scores(unknown_a, unknown_b, f"score_{scorer_a}", f"score_{scorer_b}"), scorers))
    evaluations = [_newest_evaluation(run) for run in (run_a, run_b)]
    if None in evaluations:
        return lines
    dev = [pd.read_csv(e["dir"] / "predictions.csv") for e in evaluations]
    names = " vs ".join(e["dir"].name for e in evaluations)
    lines.append(_accuracy_line(f"other source ({names})", *dev))
    balanced = [e["metrics"]["balanced_accuracy"] for e in evaluations]
    lines[-1] += f"; balanced accuracy A {100 * balanced[0]:.1f}, B {100 * balanced[1]:.1f}"
    if not all("known_score" in frame for frame in dev):
        lines.append("other source AUROC: an evaluate run without per-image known scores (made before they were "
                     "recorded); run evaluate again for a paired test")
        return lines
    outside = [pd.read_csv(e["dir"] / "unknown_predictions.csv").assign(fold=0) for e in evaluations]
    lines.append(_auroc_line("other source", matched_scores(*dev, "known_score", "known_score"),
                             matched_scores(*outside, "known_score", "known_score"), scorers))
    return lines
