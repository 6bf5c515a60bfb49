import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deeppainter import config
from deeppainter.cli import cv10
from deeppainter.config import DataConfig
from deeppainter.data import splits
from deeppainter.data.datasets import list_labelled, load_images, sample_dir
from deeppainter.eval.comparison import comparison_table, render
from deeppainter.eval.published import PAPER3
from deeppainter.runs import read_json
from deeppainter.train.cae_model import EncoderHeadModel


def run_cv10(out, painters, *extra):
    cv10.main(["--preset", "smoke", "--data", str(painters), "--out", str(out), *extra])
    return sorted(p for p in out.glob("*_cv10_*") if p.is_dir())


def test_folds_are_disjoint_stratified_and_deterministic():
    labels = np.repeat([0, 1, 2], [40, 33, 50])
    folds = splits.make_folds(labels, 10, seed=3)
    test_sets = [set(test) for _, test in folds]
    assert sorted(i for s in test_sets for i in s) == list(range(len(labels)))  # each image tested once
    for train, test in folds:
        assert not set(train) & set(test)
        for cls, total in zip([0, 1, 2], [40, 33, 50]):
            assert abs((labels[test] == cls).sum() - total / 10) <= 1
    again = splits.make_folds(labels, 10, seed=3)
    assert all((a[1] == b[1]).all() for a, b in zip(folds, again))
    assert any((a[1] != b[1]).any() for a, b in zip(folds, splits.make_folds(labels, 10, seed=4)))


def test_inner_split_stays_inside_training_folds():
    labels = np.repeat([0, 1, 2], 30)
    train, test = splits.make_folds(labels, 10, seed=0)[0]
    fit, val = splits.inner_split(train, labels, 0.1, seed=0)
    assert set(fit) | set(val) == set(train) and not set(val) & set(test) and not set(fit) & set(val)


def test_end_to_end_smoke_run_beats_chance(synthetic_painters, smoke_encoder, tmp_path):
    (run_dir,) = run_cv10(tmp_path, synthetic_painters, "--encoder", str(smoke_encoder), "--save-final-model")
    predictions = pd.read_csv(run_dir / "predictions.csv")
    assert len(predictions) == 60 and predictions["path"].is_unique  # one out-of-fold prediction per image
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["accuracy_mean"] > 0.5  # chance is 1/3
    assert metrics["accuracy_ci95"][0] <= metrics["accuracy_pooled"] <= metrics["accuracy_ci95"][1]
    for name in ("folds.csv", "confusion_matrix.csv", "confusion_matrix.png", "classification_report.txt",
                 "history.csv", "paper_table.csv", "env.json", "final_model.keras", "final_model.json", "DONE"):
        assert (run_dir / name).exists(), name
    assert np.array(metrics["confusion_matrix"]).sum() == 60


def test_cached_features_give_the_same_model(synthetic_painters, smoke_encoder, tmp_path):
    cfg = config.build_config("smoke", ["classifier.spatial_dropout=0", "classifier.dropout=0",
                                        "classifier.epochs=3", "data.image_size=32"])
    table = list_labelled(synthetic_painters)
    images, _ = load_images(list(table["path"]), DataConfig(image_size=32), progress=False)
    labels = table["label"].map({"painter0": 0, "painter1": 1, "painter2": 2}).to_numpy()
    train, test = splits.make_folds(labels, 3, seed=0)[0]
    results = []
    for use_cache in (True, False):
        model = EncoderHeadModel(smoke_encoder / "encoder.keras", cfg, images, 3, seed=0,
                                          cache_dir=tmp_path / str(use_cache), use_cache=use_cache)
        assert model.use_cache is use_cache
        results.append(model.fit_predict(0, train, test, labels)[0])
    np.testing.assert_allclose(results[0], results[1], atol=1e-4)


def test_resume_skips_finished_folds_and_merge_combines_subsets(synthetic_painters, smoke_encoder, tmp_path):
    encoder = ["--encoder", str(smoke_encoder)]
    (partial,) = run_cv10(tmp_path / "a", synthetic_painters, *encoder, "--folds", "0")
    assert not (partial / "metrics.json").exists() and not (partial / "DONE").exists()
    assert (partial / "folds" / "fold00.csv").exists()  # the resume marker of an unfinished run
    finished_fold = partial / "folds" / "fold00.json"  # kept after finish (the CSV copy is then removed)
    stamp = os.stat(finished_fold).st_mtime_ns
    (resumed,) = run_cv10(tmp_path / "a", synthetic_painters, *encoder)  # the same command without --folds
    assert resumed == partial and os.stat(finished_fold).st_mtime_ns == stamp
    assert not list((resumed / "folds").glob("fold??.csv"))  # predictions.csv holds them once
    full = read_json(resumed / "metrics.json")
    metrics_stamp = os.stat(resumed / "metrics.json").st_mtime_ns
    assert run_cv10(tmp_path / "a", synthetic_painters, *encoder) == [resumed]  # finished: nothing retrained
    assert os.stat(resumed / "metrics.json").st_mtime_ns == metrics_stamp
    # Asking for the final model afterwards adds it to the same run without redoing the folds.
    assert run_cv10(tmp_path / "a", synthetic_painters, *encoder, "--save-final-model") == [resumed]
    assert (resumed / "final_model.keras").exists() and os.stat(finished_fold).st_mtime_ns == stamp

    run_cv10(tmp_path / "b", synthetic_painters, *encoder, "--folds", "0")
    run_cv10(tmp_path / "c", synthetic_painters, *encoder, "--folds", "1,2")
    (first,), (second,) = (list((tmp_path / x).glob("*_cv10_*")) for x in "bc")
    cv10.main(["merge", str(first), str(second), "--out", str(tmp_path / "merged")])
    (merged,) = (tmp_path / "merged").glob("*_cv10_*")
    merged_metrics = read_json(merged / "metrics.json")
    assert merged_metrics["n_images"] == 60 and merged_metrics["n_folds"] == 3
    assert merged_metrics["accuracy_mean"] == pytest.approx(full["accuracy_mean"], abs=1e-9)


def test_baselines_run_in_the_same_folds_and_ensemble(synthetic_painters, tmp_path):
    (pixels,) = run_cv10(tmp_path / "a", synthetic_painters, "--model", "pixels-svm")
    (knn,) = run_cv10(tmp_path / "b", synthetic_painters, "--model", "features-knn")
    metrics = read_json(pixels / "metrics.json")
    assert metrics["model"] == "pixels-svm" and metrics["n_images"] == 60
    cv10.main(["ensemble", str(pixels), str(knn), "--out", str(tmp_path / "c")])
    (combined,) = (tmp_path / "c").glob("*_cv10_*")
    assert read_json(combined / "metrics.json")["model"] == "ensemble(pixels-svm+features-knn)"
    frames = [pd.read_csv(d / "predictions.csv").sort_values("path").reset_index(drop=True)
              for d in (pixels, knn, combined)]
    np.testing.assert_allclose(frames[2]["prob_painter1"], (frames[0]["prob_painter1"] + frames[1]["prob_painter1"]) / 2)
    (other_seed,) = run_cv10(tmp_path / "d", synthetic_painters, "--model", "pixels-svm", "--seed", "1")
    with pytest.raises(SystemExit):
        cv10.main(["ensemble", str(pixels), str(other_seed)])


def test_encoder_style_descriptors_with_svm(synthetic_painters, smoke_encoder, tmp_path):
    (run_dir,) = run_cv10(tmp_path, synthetic_painters, "--model", "cae-svm", "--encoder", str(smoke_encoder))
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["model"] == "cae-svm" and metrics["accuracy_mean"] > 0.5
    # mean + std + upper-triangular Gram for each conv layer of the 4/8-filter smoke encoder
    assert np.load(run_dir / "cache" / "descriptors.npy").shape == (60, 4 + 4 + 10 + 8 + 8 + 36)


def test_stack_learns_member_weights_inside_training_folds(synthetic_painters, smoke_encoder, tmp_path):
    (run_dir,) = run_cv10(tmp_path, synthetic_painters, "--model", "stack", "--encoder", str(smoke_encoder))
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["model"] == "stack" and metrics["accuracy_mean"] > 0.5
    for fold in metrics["fold_details"]:
        assert fold["weight_features-svm"] + fold["weight_cae-svm"] == pytest.approx(1.0)


def test_stack_never_reads_the_test_fold_labels(synthetic_painters, tmp_path):
    from deeppainter.classical.stacking import StackModel

    cfg = config.build_config("smoke", ["classifier.stack_members=features-svm,pixels-svm"])
    table = list_labelled(synthetic_painters, [], min_per_class=3)
    images, _ = load_images(list(table["path"]), cfg.data, progress=False)
    labels = splits.label_indices(table["label"], sorted(table["label"].unique()))
    train_idx, test_idx = splits.make_folds(labels, 3, seed=0)[0]
    from deeppainter.models.registry import FoldContext

    model = StackModel.from_context(FoldContext("stack", cfg, images, ["a", "b", "c"], 0, tmp_path))
    probabilities, weights, _ = model.fit_predict(0, train_idx, test_idx, labels)
    scrambled = labels.copy()
    scrambled[test_idx] = np.random.default_rng(0).permutation(3)[labels[test_idx]]  # relabel the test fold only
    again, _, _ = model.fit_predict(0, train_idx, test_idx, scrambled)
    np.testing.assert_array_equal(probabilities, again)
    assert probabilities.shape == (len(test_idx), 3) and set(weights) == {"weight_features-svm", "weight_pixels-svm"}


@pytest.mark.parametrize("make_args, message", [
    (lambda d, e: ["--classes", "painter0"], "only one class"),
    (lambda d, e: ["--set", "cv.folds=30"], "fewer than 30 images"),
    (lambda d, e: ["--encoder", str(e), "--set", "data.image_size=16"], "expects 32px images"),
    (lambda d, e: ["--folds", "0,9"], "must be in 0..2"),
    (lambda d, e: ["--encoder", str(d)], "no such encoder.keras"),
    (lambda d, e: ["--model", "stack", "--set", "classifier.stack_members=features-svm"], "two or more"),
    (lambda d, e: ["--model", "stack", "--save-final-model"], "study model"),
])
def test_bad_inputs_give_one_line_errors(synthetic_painters, smoke_encoder, tmp_path, capsys, make_args, message):
    with pytest.raises(SystemExit) as exit_info:
        run_cv10(tmp_path, synthetic_painters, *make_args(synthetic_painters, smoke_encoder))
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert message in error and error.startswith("error:")


def test_experiment_files_parse():
    from pathlib import Path

    from deeppainter.cli import experiments

    files = sorted(Path(__file__).resolve().parent.parent.joinpath("experiments").glob("*.toml"))
    assert files
    for path in files:
        spec = experiments.load(path)
        config.build_config(spec.get("preset", "cpu"), spec.get("set", []))


def test_same_predictions_as_before_the_registry(tmp_path):
    """Folds 0 and 1 of a smoke run equal those of the flat-layout code that re-built the head per fold.

    Fold 1 runs on the head compiled for fold 0 and reset, so this checks the reset as well as the
    registry and layout (tests/golden/README.md says how the golden file was made).
    """
    golden = pd.read_csv(Path(__file__).parent / "golden" / "cv10_smoke_cae_folds01.csv")
    cv10.main(["--preset", "smoke", "--set", "classifier.epochs=5", "--folds", "0,1", "--out", str(tmp_path),
               "--transductive-pretrain"])  # the golden run pre-trained on the sample itself
    (run_dir,) = tmp_path.glob("*_cv10_*")
    ours = pd.concat([pd.read_csv(run_dir / "folds" / f"fold{k:02d}.csv") for k in (0, 1)])
    ours["path"] = ours["path"].str.split("/").str[-2:].str.join("/")
    ours = ours.sort_values(["fold", "path"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(ours[["path", "fold", "predicted"]], golden[["path", "fold", "predicted"]],
                                  check_dtype=False)
    probabilities = [c for c in golden if c.startswith("prob_")]
    assert np.abs(ours[probabilities].to_numpy() - golden[probabilities].to_numpy()).max() <= 1e-4


def test_no_silent_pretraining_on_the_test_folds(synthetic_painters, tmp_path, capsys):
    """Neither --encoder nor --pretrain-data on user data: a one-line refusal, no run folder."""
    with pytest.raises(SystemExit):
        run_cv10(tmp_path, synthetic_painters)
    err = capsys.readouterr().err
    assert "--pretrain-data" in err and "--pretrain-in-fold" in err and "--transductive-pretrain" in err
    assert "Traceback" not in err
    assert not list(tmp_path.glob("*_cv10_*"))


def test_transductive_pretraining_is_recorded_and_labelled(synthetic_painters, tmp_path, capsys):
    (run_dir,) = run_cv10(tmp_path, synthetic_painters, "--transductive-pretrain", "--set", "cv.folds=2")
    out = capsys.readouterr().out
    assert "WARNING: --transductive-pretrain" in out and "(transductive pre-training)" in out
    assert read_json(run_dir / "config.json")["arguments"]["transductive"] is True
    assert read_json(run_dir / "metrics.json")["transductive"] is True
    assert "(transductive pre-training)" in (run_dir / "paper_table.csv").read_text()
    assert "duplicates: none found" in out  # the synthetic painters have no duplicates
    assert list(pd.read_csv(run_dir / "duplicates.csv").columns) == ["path", "group", "reason"]


def test_sample_default_uses_the_shipped_encoder_only_when_it_fits():
    from deeppainter.config import build_config

    from deeppainter.eval import experiment

    experiment.SHIPPED_ENCODERS.joinpath("cpu", "encoder.keras").is_file() or pytest.skip("no shipped cpu encoder")
    assert experiment.shipped_encoder(build_config("cpu", []), "cpu") is not None
    assert experiment.shipped_encoder(build_config("cpu", ["data.image_size=128"]), "cpu") is None
    assert experiment.shipped_encoder(build_config("smoke", []), "smoke") is None
    request = experiment.Cv10Request("cpu", 0, Path("results/runs"))
    path, transductive = experiment.encoder_source(request, build_config("cpu", []), sample_dir())
    assert path == experiment.SHIPPED_ENCODERS / "cpu" / "encoder.keras" and not transductive


def test_main_job_table_puts_every_model_beside_the_published_rows(synthetic_painters, tmp_path, capsys):
    run_dirs = [run_cv10(tmp_path / name, synthetic_painters, "--model", name)[0]
                for name in ("features-knn", "features-svm")]
    capsys.readouterr()
    cv10.print_table(run_dirs)
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()[3:5]] == ["features-knn", "features-svm"]
    assert out.count("features-knn") == 1  # synthetic painters: no published column or row for this task
    # On the paper's task each published source is a column beside our row, and its other methods follow.
    summaries = [{**read_json(d / "metrics.json"), "classes": list(PAPER3)} for d in run_dirs]
    table, notes = comparison_table(summaries)
    assert list(table.columns[-2:]) == ["D&N 2016", "A&T 2021"] and len(notes) == 2
    assert table.loc[1, "D&N 2016"] == "68.33" and table.loc[1, "method"] == "features-svm"
    assert list(table["method"]).count("features-knn") == 1 and table["method"].str.startswith("rbm-").sum() == 3
    assert max(map(len, render(summaries).splitlines())) <= 100


def test_committed_runs_are_a_record_not_a_cache(synthetic_painters, tmp_path, capsys):
    import shutil
    import subprocess

    out = tmp_path / "runs"
    (first,) = run_cv10(out, synthetic_painters, "--model", "features-knn")
    capsys.readouterr()
    assert run_cv10(out, synthetic_painters, "--model", "features-knn") == [first]  # the user's own run: reused
    said = capsys.readouterr().out
    assert "already finished here" in said and "--fresh runs it again" in said
    (second,) = set(run_cv10(out, synthetic_painters, "--model", "features-knn", "--fresh")) - {first}
    shutil.rmtree(second)
    # Committed (tracked by git): the project's record, never replayed as if the user had run it.
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "runs"], cwd=tmp_path, check=True)
    capsys.readouterr()
    runs = run_cv10(out, synthetic_painters, "--model", "features-knn")
    assert len(runs) == 2 and "already finished" not in capsys.readouterr().out
