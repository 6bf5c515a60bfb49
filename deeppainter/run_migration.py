"""One-off migration of run folders to portable, compact records (``python -m deeppainter.report --migrate``).

Old folders recorded absolute (or cwd-relative) paths and kept a copy of every fold's predictions in
``folds/foldNN.csv`` next to ``predictions.csv``. This rewrites, in place and without touching a number:

- ``config.json``: ``data``/``pretrain_data`` as given-relative text (``sample:`` for the embedded
  sample), ``encoder``/``ensemble_of`` as ``runs:<run folder>``, an ``images`` digest of the image list
  relative to the data, ``path_format`` 2 and the fingerprint recomputed from those;
- image paths in images.csv, predictions.csv, folds/*.csv, skipped.csv, pretrain_images.csv relative to
  the data root (only the path column is rewritten, as text, so every probability keeps its digits);
- ``encoder.json`` and ``merged_from.json`` relative to the runs root;
- finished runs: the per-fold prediction copies are removed once checked identical to predictions.csv.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from deeppainter import config as config_lib
from deeppainter.runs import (
    PATH_FORMAT,
    SAMPLE_ROOT,
    atomic_write_json,
    atomic_write_text,
    fingerprint,
    images_digest,
    legacy_relative,
    portable_arguments,
    portable_path,
    read_json,
    resolve_path,
)

PATH_FILES = ("images.csv", "predictions.csv", "skipped.csv", "pretrain_images.csv")


def _rewrite_paths(path: Path, data: str) -> list[list[str]]:
    """Rewrite the ``path`` column of one CSV as text; return its rows (header first)."""
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    column = rows[0].index("path")
    for row in rows[1:]:
        row[column] = legacy_relative(row[column], data)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    atomic_write_text(path, buffer.getvalue())
    return rows


def _portable_data(text: str) -> str:
    if text and Path(text).parts[-2:] == ("deeppainter", "sample"):  # the embedded sample of any checkout
        return SAMPLE_ROOT
    return text


def _digest(run_dir: Path, record: dict, arguments: dict) -> str | None:
    if record["command"] == "pretrain_ae":  # the pool before max_images sampling, listed as at run time
        from deeppainter.data.datasets import list_unlabelled

        data = resolve_path(arguments["data"])
        if data.is_dir():
            table = list_unlabelled(data, tuple(arguments.get("exclude", ())))
            return images_digest([portable_path(p, data) for p in table["path"]])
        rows = list(csv.DictReader(io.StringIO((run_dir / "pretrain_images.csv").read_text(encoding="utf-8"))))
        return images_digest([r["path"] for r in rows])
    for name, label in (("images.csv", "label"), ("predictions.csv", "true")):
        if (run_dir / name).is_file():
            rows = sorted(csv.DictReader(io.StringIO((run_dir / name).read_text(encoding="utf-8"))),
                          key=lambda r: (r[label], r["path"]))
            return images_digest([r["path"] for r in rows], [r[label] for r in rows])
    return None


def migrate_run(run_dir: Path, runs_root: Path) -> list[str]:
    """Migrate one run folder in place; return what was done (empty when it is already portable)."""
    record = read_json(run_dir / "config.json")
    if record.get("path_format", 1) >= PATH_FORMAT:
        return []
    done = []
    old_arguments = record["arguments"]
    data = old_arguments.get("data", "") if old_arguments.get("data") != "None" else ""
    for name in PATH_FILES:
        if (run_dir / name).is_file():
            _rewrite_paths(run_dir / name, data)
            done.append(name)
    fold_rows = []
    for path in sorted((run_dir / "folds").glob("fold??.csv")):
        fold_rows += _rewrite_paths(path, data)[1:]
    arguments = portable_arguments(old_arguments, runs_root)
    for key in ("data", "pretrain_data"):
        if arguments.get(key) and _portable_data(old_arguments[key]) == SAMPLE_ROOT:
            arguments[key] = SAMPLE_ROOT
    if data:
        digest = _digest(run_dir, record, arguments)
        if digest:
            arguments["images"] = digest
    cfg = config_lib.from_dict(record["config"], record["preset"])
    if fingerprint(record["command"], record["preset"], cfg, {**old_arguments, "seed": record["seed"]}) \
            != record["fingerprint"]:
        done.append("WARNING: old fingerprint not reproduced (config schema changed since?)")
    if arguments != old_arguments:  # nothing location-bound recorded (bench): the fingerprint stays as it was
        record["fingerprint"] = fingerprint(record["command"], record["preset"], cfg,
                                            {**arguments, "seed": record["seed"]})
    record.update(arguments=arguments, path_format=PATH_FORMAT)
    atomic_write_json(run_dir / "config.json", record)
    done.append("config.json")
    for name, key in (("encoder.json", "encoder"), ("merged_from.json", None)):
        if (run_dir / name).is_file():
            value = read_json(run_dir / name)
            if key:
                value[key] = portable_arguments({"encoder": value[key]}, runs_root)["encoder"]
            else:
                value = portable_arguments({"ensemble_of": value}, runs_root)["ensemble_of"]
            atomic_write_json(run_dir / name, value)
            done.append(name)
    if fold_rows and (run_dir / "DONE").exists() and (run_dir / "predictions.csv").is_file():
        predictions = list(csv.reader(io.StringIO((run_dir / "predictions.csv").read_text(encoding="utf-8"))))[1:]
        if sorted(map(tuple, predictions)) == sorted(map(tuple, fold_rows)):
            for path in (run_dir / "folds").glob("fold??.csv"):
                path.unlink()
            done.append(f"removed {len(fold_rows)} per-fold prediction rows (identical to predictions.csv)")
        else:
            done.append("WARNING: fold CSVs differ from predictions.csv; kept")
    return done


def migrate_runs(runs_root: Path) -> None:
    for config_file in sorted(Path(runs_root).glob("*/config.json")):
        for line in migrate_run(config_file.parent, Path(runs_root)):
            if line.startswith(("WARNING", "removed")):
                print(f"{config_file.parent.name}: {line}")
    print(f"migrated run folders under {runs_root}")
