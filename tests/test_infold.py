"""cv10 --pretrain-in-fold: one encoder per fold, pre-trained on that fold's training images only."""
import os

import numpy as np
import pandas as pd
import pytest

from deeppainter.cli import cv10
from deeppainter.eval import experiment
from deeppainter.cli import report as report_cli
from deeppainter.data.datasets import load_images
from deeppainter.runs import images_digest, load_run_config, read_json
from deeppainter.train import pretrain

TINY = ["--set", "cv.folds=2", "--set", "pretrain.epochs=1", "--set", "classifier.epochs=3", "--set", "classifier.patience=3"]


def run_in_fold(out, painters, *extra):
    cv10.main(["--preset", "smoke", "--data", str(painters), "--out", str(out), "--pretrain-in-fold", *TINY, *extra])
    (run_dir,) = (p for p in out.glob("*_cv10_*") if p.is_dir())
    return run_dir


def test_each_fold_pre_trains_on_its_training_images_only(synthetic_painters, tmp_path, monkeypatch, capsys):
    seen = []  # the pixels every pre-training was given, in fold order
    real = pretrain.pretrain_autoencoder

    def spy(cfg, images, run_dir, seed, verbose=1):
        seen.append((run_dir.name, seed, np.array(images)))
        return real(cfg, images, run_dir, seed, verbose=verbose)

    monkeypatch.setattr(pretrain, "pretrain_autoencoder", spy)
    run_dir = run_in_fold(tmp_path / "results" / "runs", synthetic_painters)
    out = capsys.readouterr().out
    assert experiment.IN_FOLD_NOTE in out and "(in-fold pre-training)" in out and "transductive" not in out

    predictions = pd.read_csv(run_dir / "predictions.csv")
    paths = pd.read_csv(run_dir / "images.csv")["path"].astype(str).to_numpy()
    images, _ = load_images([synthetic_painters / p for p in paths], load_run_config(run_dir)[1].data, progress=False)
    details = {d["fold"]: d for d in read_json(run_dir / "metrics.json")["fold_details"]}
    assert [name for name, _, _ in seen] == ["fold00_pretrain", "fold01_pretrain"]
    assert len({seed for _, seed, _ in seen}) == 2  # a seed per fold
    for fold, (name, seed, pixels) in enumerate(seen):
        test_paths = set(predictions.loc[predictions["fold"] == fold, "path"].astype(str))
        train_idx = np.flatnonzero([p not in test_paths for p in paths])
        recorded = pd.read_csv(run_dir / "folds" / name / "pretrain_images.csv")["path"].astype(str)
        assert set(recorded) == set(paths[train_idx]) and not set(recorded) & test_paths
        np.testing.assert_array_equal(pixels, images[train_idx])  # exactly the training images, nothing else
        assert details[fold]["pretraining"] == "in-fold" and details[fold]["pretrain_seed"] == seed
        assert details[fold]["pretrain_images"] == details[fold]["n_train"] == len(train_idx)
        assert details[fold]["pretrain_images_digest"] == images_digest(paths[train_idx])
        assert (run_dir / "folds" / name / "encoder.keras").is_file()

    # One feature cache per fold encoder: no fold reads another's features.
    caches = sorted((run_dir / "cache").glob("fold??-*/features.npy"))
    assert [c.parent.name[:6] for c in caches] == ["fold00", "fold01"]
    assert not (run_dir / "cache" / "features.npy").exists()
    assert not np.allclose(np.load(caches[0]), np.load(caches[1]))

    record, metrics = read_json(run_dir / "config.json"), read_json(run_dir / "metrics.json")
    assert record["arguments"]["pretraining"] == "in-fold" and "transductive" not in record["arguments"]
    assert metrics["pretraining"] == "in-fold" and metrics["transductive"] is False
    assert read_json(run_dir / "encoder.json")["pretraining"] == "in-fold"
    assert "(in-fold pre-training)" in (run_dir / "paper_table.csv").read_text()

    report_cli.main(["--results", str(tmp_path / "results")])
    rows = [line for line in (tmp_path / "results" / "README.md").read_text().splitlines() if run_dir.name in line
            and line.startswith("| cae")]
    assert rows and all("(in-fold pre-training)" in row and "transductive" not in row for row in rows)


def test_in_fold_runs_resume_fold_by_fold(synthetic_painters, tmp_path, capsys):
    out = tmp_path / "runs"
    run_dir = run_in_fold(out, synthetic_painters, "--folds", "0")
    encoder = run_dir / "folds" / "fold00_pretrain" / "encoder.keras"
    stamp, first = os.stat(encoder).st_mtime_ns, pd.read_csv(run_dir / "folds" / "fold00.csv")
    for name in ("fold00.csv", "fold00.json"):  # a crash after the pre-training, before the fold's predictions
        (run_dir / "folds" / name).unlink()
    capsys.readouterr()
    assert run_in_fold(out, synthetic_painters, "--folds", "0") == run_dir
    assert "fold00_pretrain: re-using the finished in-fold pre-training" in capsys.readouterr().out
    assert os.stat(encoder).st_mtime_ns == stamp
    again = pd.read_csv(run_dir / "folds" / "fold00.csv")
    assert (again["predicted"] == first["predicted"]).all()
    assert run_in_fold(out, synthetic_painters) == run_dir  # the other folds, each with its own encoder
    assert (run_dir / "DONE").exists() and os.stat(encoder).st_mtime_ns == stamp
    assert len(list((run_dir / "folds").glob("fold??_pretrain/encoder.keras"))) == 2
    # The final model (never evaluated in a fold) pre-trains once on every image.
    assert run_in_fold(out, synthetic_painters, "--save-final-model") == run_dir
    assert (run_dir / "final_model.keras").is_file() and os.stat(encoder).st_mtime_ns == stamp
    assert len(pd.read_csv(run_dir / "final_pretrain" / "pretrain_images.csv")) == 60


def test_merging_in_fold_subsets_keeps_each_folds_encoder(synthetic_painters, tmp_path):
    first = run_in_fold(tmp_path / "a", synthetic_painters, "--folds", "0")
    second = run_in_fold(tmp_path / "b", synthetic_painters, "--folds", "1")
    cv10.main(["merge", str(first), str(second), "--out", str(tmp_path / "merged")])
    (merged,) = (tmp_path / "merged").glob("*_cv10_*")
    assert (merged / "DONE").exists()
    for fold, source in ((0, first), (1, second)):
        copied = merged / "folds" / f"fold{fold:02d}_pretrain"
        assert (copied / "encoder.keras").read_bytes() == (source / "folds" / copied.name / "encoder.keras").read_bytes()


def test_in_fold_encoder_models_cache_descriptors_per_fold(synthetic_painters, tmp_path):
    run_dir = run_in_fold(tmp_path, synthetic_painters, "--model", "cae-svm")
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["model"] == "cae-svm" and metrics["pretraining"] == "in-fold"
    assert len(list((run_dir / "cache").glob("fold??-*/descriptors.npy"))) == 2


@pytest.mark.parametrize("other", [["--transductive-pretrain"], ["--pretrain-data", "."]])
def test_in_fold_excludes_other_encoder_sources(synthetic_painters, tmp_path, capsys, other):
    with pytest.raises(SystemExit):
        run_in_fold(tmp_path, synthetic_painters, *other)
    assert "exclude each other" in capsys.readouterr().err
    assert not list(tmp_path.glob("*_cv10_*"))
