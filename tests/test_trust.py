"""Open-set scores, calibration and the leave-painters-out folds (issue 24), end to end on tiny models."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deeppainter.cli import cv10, evaluate, predict
from deeppainter.errors import UserError
from deeppainter.eval import calibration, openset, trust
from deeppainter.runs import read_json


def test_scores_rank_known_above_unknown():
    rng = np.random.default_rng(0)
    means = np.eye(3, 8) * 6
    labels = np.repeat(np.arange(3), 40)
    known = means[labels] + rng.normal(size=(120, 8))
    outside = rng.normal(size=(60, 8)) + 3 * np.r_[np.zeros(4), np.ones(4)]  # far from every class mean
    for name in openset.FEATURE_SCORERS:
        scorer = openset.feature_scorer(name, knn_k=5).fit(known[:90], labels[:90])
        assert openset.auroc(scorer.score(known[90:]), scorer.score(outside)) > 0.95, name
    probabilities = np.array([[0.9, 0.05, 0.05], [0.4, 0.3, 0.3]])
    assert openset.msp(probabilities).tolist() == [0.9, 0.4]
    np.testing.assert_allclose(openset.energy(np.log(probabilities)), 0.0, atol=1e-12)  # log p: no information
    with_background = np.array([[0.6, 0.1, 0.1, 0.2]])
    assert openset.probability_score("background", with_background, None, True)[0] == pytest.approx(0.8)
    assert openset.probability_score("energy", with_background, None, True) is None


def test_mahalanobis_threshold_from_smaller_inner_fits_keeps_the_knowns_of_a_larger_fit():
    # The threshold is set on the scores of fits to two thirds of the training paintings and applied to the scores
    # of the fit to all of them, so both must be on one scale. Features wider than 2,048 (Lite0 ‖ tiles: 2,560) once went
    # through a projection on n - 1 principal components, which made the scale follow n: 0% of knowns were kept.
    rng = np.random.default_rng(3)
    dim = 2100
    labels = np.repeat(np.arange(3), 400)
    features = rng.normal(size=(1200, dim)) / np.sqrt(np.arange(1, dim + 1))  # a decaying spectrum
    features[:, :3] += np.eye(3)[labels] * 2
    train, test = np.arange(0, 1200, 3), np.arange(1, 1200, 3)
    inner_fit, held_out = train[:266], train[266:]
    inner = openset.MahalanobisScorer().fit(features[inner_fit], labels[inner_fit]).score(features[held_out])
    threshold = openset.threshold_keeping(inner, 0.95)
    outer = openset.MahalanobisScorer().fit(features[train], labels[train]).score(features[test])
    assert 0.85 <= np.mean(outer >= threshold) <= 1.0


def test_threshold_fpr_and_auroc_by_hand():
    known, unknown = np.arange(100.0), np.array([-1.0, 10.0, 50.0, 99.5])
    threshold = openset.threshold_keeping(known, 0.95)
    assert np.mean(known >= threshold) == pytest.approx(0.95, abs=0.01)
    assert openset.fpr_at_tpr(known, unknown) == 0.75  # 10, 50 and 99.5 lie above the 5% quantile (4.95)
    assert openset.auroc(np.array([2.0, 3.0]), np.array([1.0, 2.5])) == 0.75


def test_calibration_error_and_temperature():
    truth = np.array([0, 0, 0, 0, 1])
    confident = np.array([[0.99, 0.01]] * 4 + [[0.99, 0.01]])  # 80% right at 99% confidence
    assert calibration.expected_calibration_error(confident, truth) == pytest.approx(0.19)
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(400, 3)) * 5
    truth = np.array([rng.choice(3, p=calibration.apply_temperature(row[None], 5.0)[0]) for row in logits])
    assert calibration.fit_temperature(logits, truth) == pytest.approx(5.0, rel=0.35)  # over-confident by ×5


def test_leave_painters_out_rotation():
    table = pd.DataFrame({"path": [f"{p}/{i}.jpg" for p in "abcde" for i in range(7)],
                          "label": [p for p in "abcde" for _ in range(7)]})
    pool = trust.make_pool(table, offset=100, n_groups=2, n_folds=10, seed=0)
    tested = np.concatenate([pool.test_indices(fold) for fold in range(10)])
    assert sorted(tested) == list(range(100, 135))  # each unknown painting is tested exactly once
    for fold in range(10):
        roles = pool.roles(fold)
        assert not set(roles["unknown_painters"]) & set(roles["background_painters"])
        painters = set(table["label"].to_numpy()[pool.test_indices(fold) - 100])
        background = set(table["label"].to_numpy()[pool.background_indices(fold) - 100])
        assert painters <= set(roles["unknown_painters"]) and background == set(roles["background_painters"])


@pytest.fixture(scope="module")
def five_painters(tmp_path_factory):
    from deeppainter.data.synthetic import make_synthetic_painters

    return make_synthetic_painters(tmp_path_factory.mktemp("five"), painters=5, per_painter=18, seed=2)


@pytest.fixture(scope="module")
def open_run(five_painters, tmp_path_factory):
    out = tmp_path_factory.mktemp("open")
    cv10.main(["--preset", "smoke", "--data", str(five_painters), "--classes", "painter0,painter1,painter2",
               "--model", "features-svm", "--out", str(out), "--save-final-model",
               "--set", "trust.background=true", "--set", "trust.final_scorer=background"])
    (run_dir,) = out.glob("*_cv10_*")
    return run_dir


def test_cv10_open_set_run_records_folds_thresholds_and_unknowns(open_run):
    metrics = read_json(open_run / "metrics.json")
    assert metrics["unknown_painters"] == ["painter3", "painter4"]
    assert set(metrics["openset"]) == {"msp", "mahalanobis", "knn", "background"}  # an SVM has no logits: no energy
    for values in metrics["openset"].values():
        assert 0 <= values["pooled"]["auroc"] <= 1 and 0 <= values["fpr95_mean"] <= 1
    assert 0 <= metrics["calibration"]["ece"] <= 1 and "ece_temperature_scaled" in metrics["calibration"]
    unknown = pd.read_csv(open_run / "unknown_predictions.csv")
    assert len(unknown) == 36 and set(unknown["true"]) == {"painter3", "painter4"}
    for info in metrics["fold_details"]:  # a fold's tested unknown painters were never its background
        assert not set(info["unknown_painters"]) & set(info["background_painters"])
        assert info["temperature"] > 0 and set(info["thresholds"]) == set(metrics["openset"])
    assert (open_run / "reliability.png").is_file() and (open_run / "reliability_temperature.png").is_file()
    record = read_json(open_run / "final_model.json")["trust"]
    assert record["scorer"] == "background" and record["background"]


def test_predict_and_evaluate_use_the_final_trust_record(open_run, five_painters, tmp_path, capsys):
    csv_path = predict.run(predict.parse_args(["--run", str(open_run), str(five_painters / "painter4"),
                                               "--claim", "painter1", "--out", str(tmp_path)]))
    table = pd.read_csv(csv_path)
    assert {"known_score", "threshold", "unknown", "claim_probability", "claim_percentile"} <= set(table.columns)
    probabilities = table[[f"prob_painter{k}" for k in range(3)]].to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    printed = capsys.readouterr().out
    assert printed.count("claim painter1:") == 18
    assert printed.count("none of the known painters") == int(table["unknown"].sum())
    known = tmp_path / "known"
    known.mkdir()
    for painter in ("painter0", "painter1", "painter2"):
        (known / painter).symlink_to(five_painters / painter)
    unknown = tmp_path / "unknown"
    unknown.mkdir()
    (unknown / "painter4").symlink_to(five_painters / "painter4")
    run_dir = evaluate.run(evaluate.parse_args(["--run", str(open_run), "--data", str(known),
                                                "--unknown", str(unknown), "--out", str(tmp_path / "e")]))
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["openset"]["n_unknown"] == 18 and 0 <= metrics["openset"]["auroc"] <= 1
    assert (run_dir / "reliability.png").is_file() and (run_dir / "unknown_predictions.csv").is_file()
    with pytest.raises(UserError, match="among the task's painters"):
        evaluate.run(evaluate.parse_args(["--run", str(open_run), "--data", str(known), "--unknown", str(known),
                                          "--out", str(tmp_path / "e")]))
    with pytest.raises(UserError, match="--claim rubens"):
        predict.run(predict.parse_args(["--run", str(open_run), str(five_painters / "painter4"),
                                        "--claim", "rubens"]))


def test_unknown_folder_errors(five_painters, tmp_path):
    empty = tmp_path / "empty"
    (empty / "somebody").mkdir(parents=True)
    with pytest.raises(UserError, match="--unknown .*no images"):
        trust.unknown_table(str(empty), five_painters, ["painter0", "painter1"])
    with pytest.raises(UserError, match="painter0, painter1 are among the task.s painters"):
        trust.unknown_table(str(five_painters), five_painters, ["painter0", "painter1"])
    assert trust.unknown_table("none", five_painters, ["painter0"]).empty
    assert sorted(trust.unknown_table("auto", five_painters, ["painter0", "painter1"])["label"].unique()) == \
        ["painter2", "painter3", "painter4"]


def test_closed_set_final_model_of_an_open_set_run(five_painters, tmp_path):
    """Without outlier exposure the final model learns the task's images only (the unknown painters' images,
    seen by the fold model after them, are scored, never fitted)."""
    cv10.main(["--preset", "smoke", "--data", str(five_painters), "--classes", "painter0,painter1,painter2",
               "--model", "features-knn", "--out", str(tmp_path), "--save-final-model",
               "--set", "cv.folds=2", "--set", "trust.inner_folds=2"])
    (run_dir,) = tmp_path.glob("*_cv10_*")
    record = read_json(run_dir / "final_model.json")["trust"]
    assert record["scorer"] == "msp" and not record["background"]
    assert read_json(run_dir / "metrics.json")["unknown_painters"] == ["painter3", "painter4"]


def test_report_paired_compares_two_open_set_runs_and_their_other_source_evaluations(open_run, five_painters,
                                                                                        capsys):
    from deeppainter.cli import report

    known = open_run.parent / "known"
    known.mkdir(exist_ok=True)
    for painter in ("painter0", "painter1", "painter2"):
        (known / painter).symlink_to(five_painters / painter)
    (open_run.parent / "unknown").mkdir(exist_ok=True)
    (open_run.parent / "unknown" / "painter3").symlink_to(five_painters / "painter3")
    run_dir = evaluate.run(evaluate.parse_args(["--run", str(open_run), "--data", str(known),
                                                "--unknown", str(open_run.parent / "unknown"),
                                                "--out", str(open_run.parent)]))
    assert "known_score" in pd.read_csv(run_dir / "predictions.csv")
    capsys.readouterr()
    assert report.main(["--paired", str(open_run), str(open_run)]) == 0
    lines = capsys.readouterr().out.splitlines()
    pooled = read_json(open_run / "metrics.json")["openset"]["background"]["pooled"]["auroc"]
    assert f"A {pooled:.3f}, B {pooled:.3f}, Δ +0.000; corrected t over 3 folds p = 1" in lines[2]
    dev_auroc = read_json(run_dir / "metrics.json")["openset"]["auroc"]
    assert lines[3].startswith("other source") and "Δ +0.00 points on 54 images" in lines[3]
    assert f"A {dev_auroc:.3f}, B {dev_auroc:.3f}, Δ +0.000" in lines[4] and "paired bootstrap" in lines[4]
    with pytest.raises(SystemExit):
        report.main(["--paired", str(open_run), str(run_dir)])  # an evaluate run: a one-line error


def test_paired_scores_match_images_by_painter_and_file_whatever_root_was_recorded():
    from deeppainter.eval.paired import matched_scores

    old = pd.DataFrame({"path": ["../data/wikiart14/monet/1.jpg", "../data/wikiart14/monet/2.jpg"], "fold": [0, 1],
                        "score_msp": [0.2, 0.9]})
    new = pd.DataFrame({"path": ["monet/2.jpg", "monet/1.jpg"], "fold": [1, 0], "score_background": [0.7, 0.1]})
    matched = matched_scores(old, new, "score_msp", "score_background").sort_values("fold")
    assert matched.to_dict("list") == {"fold": [0, 1], "a": [0.2, 0.9], "b": [0.1, 0.7]}
    assert matched_scores(old, new.assign(fold=[0, 1]), "score_msp", "score_background") is None  # other folds
