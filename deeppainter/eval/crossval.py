"""The fold runner (cross validation): folds, resume, and the run's reports.

``run_folds`` runs the protocol in one function: scikit-learn stratified folds
(``data.splits.make_folds``, near-duplicates grouped inside one fold), one out-of-fold prediction
per image from a registered fold model (``models.registry``), and one result file per finished fold
so a re-run resumes. Model selection happens inside each model, on the training folds only.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from deeppainter.config import Config
from deeppainter.data.splits import label_indices, make_folds
from deeppainter.eval import metrics, trust
from deeppainter.eval.comparison import comparison_table, model_label
from deeppainter.eval.published import task_name
from deeppainter.progress import progress
from deeppainter.runs import (
    PATH_FORMAT,
    atomic_write_csv,
    atomic_write_json,
    legacy_relative,
    mark_done,
    read_json,
)


def fold_file(run_dir: Path, fold: int) -> Path:
    return Path(run_dir) / "folds" / f"fold{fold:02d}.csv"


def unknown_file(run_dir: Path, fold: int) -> Path:
    """The fold's unknown-painter predictions (written before the fold's own file, which marks it done)."""
    return fold_file(run_dir, fold).with_suffix(".unknown.csv")


def run_folds(model, table: pd.DataFrame, classes: list[str], cfg: Config, seed: int, run_dir: Path,
              only_folds: list[int] | None = None, groups: np.ndarray | None = None, trust=None) -> pd.DataFrame:
    """Run (or resume) the folds and return every finished fold's out-of-fold predictions.

    ``groups`` (one id per image, e.g. near-duplicates) keeps each group inside one fold. ``trust``
    (eval.trust.TrustPlan) adds open-set scores, thresholds and temperature-scaled probabilities, and
    predictions for the fold's unknown painters, whose images the model sees after ``table``'s.
    """
    labels = label_indices(table["label"], classes)
    folds = make_folds(labels, cfg.cv.folds, seed, groups)
    selected = only_folds if only_folds is not None else list(range(len(folds)))
    finished = finished_folds(run_dir)
    todo = [k for k in selected if k not in finished]
    if len(todo) < len(selected):
        print(f"resuming: folds {sorted(set(selected) - set(todo))} already finished, skipping them")
    paths = table["path"].to_numpy()
    if trust is not None and trust.pool is not None:
        paths = np.r_[paths, trust.pool.table["path"].to_numpy()]
    for fold in progress(todo, desc=f"{cfg.cv.folds}-fold CV", unit="fold"):
        train_idx, test_idx = folds[fold]
        start = time.perf_counter()
        if trust is None:
            probabilities, info, history = model.fit_predict(fold, train_idx, test_idx, labels)
            frame = pd.DataFrame({"path": paths[test_idx], "true": table["label"].to_numpy()[test_idx],
                                  "predicted": np.array(classes)[probabilities.argmax(axis=1)], "fold": fold})
            for index, name in enumerate(classes):
                frame[f"prob_{name}"] = probabilities[:, index]
        else:
            frame, unknown, info, history = trust.run_fold(model, fold, train_idx, test_idx, labels, paths,
                                                           table["label"].to_numpy())
            if unknown is not None:
                atomic_write_csv(unknown_file(run_dir, fold), unknown)
        info = {"fold": fold, "n_train": len(train_idx), "n_test": len(test_idx),
                "seconds": time.perf_counter() - start, **info}
        if history is not None:
            atomic_write_csv(fold_file(run_dir, fold).with_suffix(".history.csv"), history.assign(fold=fold))
        atomic_write_json(fold_file(run_dir, fold).with_suffix(".json"), info)
        atomic_write_csv(fold_file(run_dir, fold), frame)  # written last: its presence marks the fold done
    return collect_folds([run_dir])


def _with_data_relative_paths(frame: pd.DataFrame, run_dir: Path) -> pd.DataFrame:
    """Old run folders recorded absolute or cwd-relative image paths: make them relative to the data root."""
    config_file = Path(run_dir) / "config.json"
    if frame.empty or "path" not in frame or not config_file.is_file():
        return frame
    record = read_json(config_file)
    if record.get("path_format", 1) >= PATH_FORMAT:
        return frame
    data = record.get("arguments", {}).get("data", "")
    return frame.assign(path=[legacy_relative(p, data) for p in frame["path"]])


def read_predictions(run_dir: Path) -> pd.DataFrame:
    """A finished run's predictions.csv, image paths relative to its data root (old folders included)."""
    return _with_data_relative_paths(pd.read_csv(Path(run_dir) / "predictions.csv"), run_dir)


def collect_folds(run_dirs: list[Path]) -> pd.DataFrame:
    """Every finished fold's predictions: the per-fold CSVs of an unfinished run, or the predictions.csv
    of a finished one (whose per-fold copies were removed), split by its fold column."""
    frames = []
    for run_dir in map(Path, run_dirs):
        files = sorted((run_dir / "folds").glob("fold??.csv"))
        if files:
            frames += [_with_data_relative_paths(pd.read_csv(f), run_dir) for f in files]
        elif (run_dir / "predictions.csv").is_file():
            frames += [part for _, part in read_predictions(run_dir).groupby("fold", sort=True)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def collect_unknown(run_dirs: list[Path]) -> pd.DataFrame:
    """Every finished fold's predictions for unknown painters (per-fold files, or unknown_predictions.csv)."""
    frames = []
    for run_dir in map(Path, run_dirs):
        files = sorted((run_dir / "folds").glob("fold??.unknown.csv"))
        if files:
            frames += [pd.read_csv(f) for f in files]
        elif (run_dir / "unknown_predictions.csv").is_file():
            frames.append(pd.read_csv(run_dir / "unknown_predictions.csv"))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def finished_folds(run_dir: Path) -> set[int]:
    """Folds with predictions in ``run_dir``: a per-fold CSV each, or the fold column of predictions.csv."""
    run_dir = Path(run_dir)
    folds = {int(f.stem[4:]) for f in (run_dir / "folds").glob("fold??.csv")}
    if (run_dir / "predictions.csv").is_file() and (run_dir / "DONE").exists():
        folds |= {int(k) for k in pd.read_csv(run_dir / "predictions.csv", usecols=["fold"])["fold"].unique()}
    return folds


def compact_folds(run_dir: Path) -> None:
    """Remove the per-fold prediction copies once predictions.csv holds them all (scores, choices,
    timings and histories stay in folds/)."""
    for pattern in ("fold??.csv", "fold??.unknown.csv"):
        for path in (Path(run_dir) / "folds").glob(pattern):
            path.unlink()


def fold_infos(run_dirs: list[Path]) -> list[dict]:
    return [read_json(f) for run_dir in run_dirs for f in sorted((Path(run_dir) / "folds").glob("fold??.json"))]


def print_trust(extra: dict, keep: float) -> None:
    """Calibration in one line; with unknown painters, the open-set table."""
    ece = extra["calibration"]
    scaled = ece.get("ece_temperature_scaled")
    print(f"calibration: ECE {100 * ece['ece']:.2f}% ({ece['ece_bins']} bins)"
          + (f", {100 * scaled:.2f}% after temperature scaling fitted inside the training folds"
             if scaled is not None else ""))
    if "openset" in extra:
        print(f"\nopen set: known paintings vs {len(extra['unknown_painters'])} unknown painters "
              f"(leave-painters-out; each fold's threshold keeps {100 * keep:.0f}% of its training folds' knowns):")
        print(trust.openset_table(extra["openset"]).to_string(index=False))


def finish(run_dir: Path, record: dict, cfg, folds_dirs: list[Path]) -> dict | None:
    """Aggregate when every fold is present; write the reports and return the summary."""
    predictions = collect_folds(folds_dirs)
    if predictions.empty or predictions["fold"].nunique() < cfg.cv.folds:
        done = sorted(int(f) for f in predictions["fold"].unique()) if not predictions.empty else []
        print(f"folds finished so far: {done} of {cfg.cv.folds}; run the rest, then `cv10 merge` if they "
              f"ran in other folders")
        return None
    classes = record["arguments"]["classes"]
    summary = metrics.summarise(predictions, classes, cfg.cv.bootstrap, record["seed"])
    infos = fold_infos(folds_dirs)
    histories = [pd.read_csv(f) for d in folds_dirs for f in sorted((Path(d) / "folds").glob("fold??.history.csv"))]
    if histories:
        atomic_write_csv(run_dir / "history.csv", pd.concat(histories, ignore_index=True))
    model = record["arguments"]["model"]
    transductive = bool(record["arguments"].get("transductive", False))
    in_fold = record["arguments"].get("pretraining") == "in-fold"  # train.infold: one encoder per fold, no test image
    extra = {"model": model, "transductive": transductive, "task": task_name(classes), "preset": record["preset"],
             **({"pretraining": "in-fold"} if in_fold else {}),
             "experiment": record["arguments"].get("experiment", ""),
             "wall_seconds_folds": float(sum(i["seconds"] for i in infos)),
             "fold_details": infos}
    title = f"{model}, {len(predictions)} images, {cfg.cv.folds}-fold CV"
    extra |= trust.write_trust_reports(run_dir, predictions, collect_unknown(folds_dirs), classes, title)
    metrics.write_reports(run_dir, predictions, summary, extra, title=title)
    summary = {**summary, **extra}
    atomic_write_csv(run_dir / "paper_table.csv", comparison_table([summary])[0])
    confused = summary["most_confused"][:1]
    print(f"{model_label(summary)}: accuracy {metrics.format_percent(summary['accuracy_mean'], summary['accuracy_std'])}"
          f" over {cfg.cv.folds} folds, {len(predictions)} images"
          + "".join(f"; most confused: {p['pair']} ({p['confusions']} images)" for p in confused))
    print_trust(extra, cfg.trust.keep)
    mark_done(run_dir)
    compact_folds(run_dir)  # after DONE: until then the per-fold CSVs are the resume markers
    print(f"run folder: {run_dir}")
    return summary
