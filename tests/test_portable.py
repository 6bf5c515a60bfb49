"""Run records are portable: a moved run folder and moved data still report, merge and resume."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from deeppainter.cli import cv10
from deeppainter.eval.report import render
from deeppainter.runs import (
    SAMPLE_ROOT,
    portable_path,
    read_json,
    resolve_path,
    runs_path,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
ABSOLUTE = re.compile(r"/work/|/tmp/|/home/|/root/")


def run_cv10(out, data, *extra):
    cv10.main(["--preset", "smoke", "--model", "features-svm", "--data", str(data), "--out", str(out), *extra])
    return sorted(p for p in Path(out).glob("*_cv10_*") if p.is_dir())


def recorded_text(run_dir: Path) -> str:
    return "".join(p.read_text(encoding="utf-8") for p in run_dir.rglob("*") if p.suffix in (".csv", ".json"))


def test_path_helpers_round_trip(tmp_path):
    from deeppainter.data.datasets import sample_dir

    assert portable_path(sample_dir()) == SAMPLE_ROOT and resolve_path(SAMPLE_ROOT) == sample_dir()
    assert portable_path(tmp_path / "a" / "b.jpg", tmp_path) == "a/b.jpg"
    assert resolve_path("a/b.jpg", tmp_path) == tmp_path / "a" / "b.jpg"
    assert runs_path(tmp_path / "r1" / "encoder.keras", tmp_path) == "runs:r1/encoder.keras"
    assert resolve_path("runs:r1/encoder.keras", tmp_path) == tmp_path / "r1" / "encoder.keras"


def test_moved_run_and_data_still_report_merge_and_resume(synthetic_painters, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the "repository": --data is given relative to it, as a user would
    old, new = tmp_path / "old", tmp_path / "elsewhere" / "new"
    shutil.copytree(synthetic_painters, old / "data")
    (partial,) = run_cv10(old / "results" / "runs", "old/data", "--folds", "0")
    (first,) = run_cv10(old / "b", "old/data", "--folds", "0")
    (second,) = run_cv10(old / "c", "old/data", "--folds", "1,2")
    assert (partial / "folds" / "fold00.csv").exists() and not (partial / "DONE").exists()
    assert read_json(partial / "config.json")["arguments"]["data"] == "old/data"  # the root, as given, once
    assert str(tmp_path) not in recorded_text(partial)  # every other path relative to its root
    table = pd.read_csv(partial / "images.csv")
    assert not any(os.path.isabs(p) for p in table["path"]) and table["path"][0].count("/") == 1

    new.parent.mkdir(parents=True)
    shutil.move(old, new)  # the data and the run folders, together
    partial, first, second = (new / p.relative_to(old) for p in (partial, first, second))
    stamp = os.stat(partial / "folds" / "fold00.json").st_mtime_ns

    # Resume: the same command with the new --data location finds the moved, unfinished run.
    assert run_cv10(new / "results" / "runs", "elsewhere/new/data") == [partial]
    assert os.stat(partial / "folds" / "fold00.json").st_mtime_ns == stamp  # fold 0 not re-run
    assert (partial / "DONE").exists() and not list((partial / "folds").glob("fold??.csv"))
    predictions = pd.read_csv(partial / "predictions.csv")
    assert len(predictions) == 60 and predictions["path"].is_unique
    assert all((new / "data" / p).is_file() for p in predictions["path"])
    full = read_json(partial / "metrics.json")
    assert run_cv10(new / "results" / "runs", new / "data") == [partial]  # finished (absolute --data too): found again

    # Report reads the moved folder.
    assert partial.name in render(new / "results")

    # Merge of two --folds subsets, both moved.
    cv10.main(["merge", str(first), str(second), "--out", str(new / "merged")])
    (merged,) = (new / "merged").glob("*_cv10_*")
    metrics = read_json(merged / "metrics.json")
    assert metrics["n_images"] == 60 and metrics["accuracy_mean"] == pytest.approx(full["accuracy_mean"], abs=1e-9)
    assert str(tmp_path) not in recorded_text(merged)
    # A finished run (per-fold copies removed) merges and ensembles from its predictions.csv.
    cv10.main(["ensemble", str(partial), str(merged), "--out", str(new / "ensembled")])
    (ensembled,) = (new / "ensembled").glob("*_cv10_*")
    assert read_json(ensembled / "metrics.json")["accuracy_mean"] == pytest.approx(full["accuracy_mean"], abs=1e-9)


def test_legacy_absolute_paths_still_read(tmp_path):
    from deeppainter.eval import crossval

    run_dir = tmp_path / "run"
    (run_dir / "folds").mkdir(parents=True)
    (run_dir / "config.json").write_text('{"arguments": {"data": "/srv/shared/data/wikiart14"}, "command": "cv10"}')
    pd.DataFrame({"path": ["../shared/data/wikiart14/a/1.jpg", "/srv/shared/data/wikiart14/b/2.jpg"], "true": ["a", "b"],
                  "fold": [0, 0]}).to_csv(run_dir / "folds" / "fold00.csv", index=False)
    assert list(crossval.collect_folds([run_dir])["path"]) == ["a/1.jpg", "b/2.jpg"]


def test_an_old_unfinished_run_with_absolute_paths_is_migrated_and_resumed(synthetic_painters, tmp_path):
    from deeppainter import config as config_lib
    from deeppainter.runs import atomic_write_json, fingerprint

    (partial,) = run_cv10(tmp_path, synthetic_painters, "--folds", "0")
    record = read_json(partial / "config.json")  # turn it into a folder as written before portable paths
    arguments = {k: v for k, v in record["arguments"].items() if k != "images"}
    arguments["data"] = str(Path(synthetic_painters).resolve())
    cfg = config_lib.from_dict(record["config"], record["preset"])
    record.pop("path_format")
    record.update(arguments=arguments, fingerprint=fingerprint("cv10", "smoke", cfg, {**arguments, "seed": 0}))
    atomic_write_json(partial / "config.json", record)
    for name in ("images.csv", "folds/fold00.csv"):
        table = pd.read_csv(partial / name)
        table["path"] = [str(Path(arguments["data"]) / p) for p in table["path"]]
        table.to_csv(partial / name, index=False)
    assert run_cv10(tmp_path, synthetic_painters) == [partial]  # resumed, not restarted
    assert read_json(partial / "config.json")["path_format"] >= 2 and (partial / "DONE").exists()
    predictions = pd.read_csv(partial / "predictions.csv")
    assert len(predictions) == 60 and not any(os.path.isabs(p) for p in predictions["path"])
    assert not any(os.path.isabs(p) for p in pd.read_csv(partial / "images.csv")["path"])


def test_no_committed_result_file_holds_an_absolute_path():
    listed = subprocess.run(["git", "ls-files", "results"], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    offenders = []
    for name in listed.stdout.splitlines():
        path = REPO_ROOT / name
        if path.suffix not in (".csv", ".json", ".md", ".txt") or not path.is_file():
            continue
        if ABSOLUTE.search(path.read_text(encoding="utf-8", errors="replace")):
            offenders.append(name)
    assert not offenders, f"absolute paths in {offenders[:5]} (run python -m deeppainter.report --migrate)"
