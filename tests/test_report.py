from deeppainter.cli import cv10
from deeppainter.cli import report as report_cli
from deeppainter.eval import report
from deeppainter.runs import read_json


def test_report_regenerates_tables_from_run_folders(tmp_path):
    runs = tmp_path / "results" / "runs"
    cv10.main(["--preset", "smoke", "--out", str(runs), "--set", "classifier.head=8",
               "--transductive-pretrain", "--no-with-baselines"])  # the sample; no shipped encoder for smoke
    report_cli.main(["--results", str(tmp_path / "results")])
    text = (tmp_path / "results" / "README.md").read_text()
    (run_dir,) = runs.glob("*_cv10_*")
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["task"] == "3painters"
    assert f"{100 * metrics['accuracy_mean']:.2f} ± {100 * metrics['accuracy_std']:.2f}" in text
    assert "classifier.head=8" in text  # the override is shown, not hidden
    assert "(transductive pre-training)" in text  # and so is an encoder that saw the test folds
    assert "## Table 3 — ablations" in text  # a run with a changed value is an ablation row
    assert "96.52" in text and "73.00" in text  # published rows beside ours
    assert run_dir.name in text and "reconstructions.png" in text
    assert f"Best run (post-hoc ensembles left out): `{run_dir.name}`" in text


def test_stack_weights_are_averaged_over_folds():
    metrics = {"fold_details": [{"fold": 0, "weight_features-svm": 0.7, "weight_cae-svm": 0.3},
                                {"fold": 1, "weight_features-svm": 0.5, "weight_cae-svm": 0.5}]}
    assert report.stack_weights(metrics) == "features-svm 0.60, cae-svm 0.40"


def test_inner_choices_are_counted_over_folds():
    metrics = {"fold_details": [{"chose_svm.power": "signed_sqrt", "chose_svm.C": "10.0"},
                                {"chose_svm.power": "signed_sqrt", "chose_svm.C": "100.0"},
                                {"chose_svm.power": "passthrough", "chose_svm.C": "10.0"}]}
    assert report.inner_choices(metrics) == "svm.power: signed_sqrt ×2, passthrough ×1; svm.C: 10.0 ×2, 100.0 ×1"
    assert report.inner_choices({"fold_details": [{"fold": 0}]}) == ""


def test_changes_are_counted_from_the_models_recipe_and_the_fold_regime_is_a_marker():
    from deeppainter import config

    def record(model, overrides, **arguments):
        cfg = config.build_config("cpu", overrides)
        return {"config": config.to_dict(cfg), "preset": "cpu", "arguments": {"model": model, **arguments}}

    recipe = ["data.image_size=224"]  # effnet-lite0-logreg's registered recipe
    assert report.config_changes(record("effnet-lite0-logreg", recipe)) == ""
    assert report.config_changes(record("cae", recipe)) == "data.image_size=224"  # not cae's recipe
    assert report.config_changes(record("effnet-lite0-logreg", [*recipe, "classifier.probe_view=grey"])) == \
        "classifier.probe_view=grey"
    ungrouped = record("effnet-lite0-logreg", [*recipe, "cv.group_duplicates=false"])
    assert report.config_changes(ungrouped) == ""
    grouped = record("effnet-lite0-logreg", recipe, duplicate_groups="0123456789abcdef", duplicate_rule="trimmed")
    assert report.config_changes(grouped) == "(grouped folds)"
    old_rule = record("effnet-lite0-logreg", [*recipe, "cv.duplicate_threshold=0.99"], duplicate_groups="0123")
    assert report.config_changes(old_rule) == "(grouped folds, padded thumbnails)"


def test_an_old_run_whose_encoder_saw_its_test_images_is_marked_transductive(tmp_path):
    from deeppainter.runs import atomic_write_json

    def folder(name, config, files):
        run_dir = tmp_path / name
        run_dir.mkdir()
        atomic_write_json(run_dir / "config.json", config)
        for file_name, text in files.items():
            (run_dir / file_name).write_text(text)
        return run_dir

    # made before cv10 recorded "transductive": only the encoder's image list tells
    folder("p_pretrain_ae", {"command": "pretrain_ae", "arguments": {"data": "sample:"}},
           {"pretrain_images.csv": "path\nrembrandt/1.jpg\nrembrandt/2.jpg\n"})
    record = {"command": "cv10", "arguments": {"data": "sample:", "encoder": ""}}
    images = {"images.csv": "path,label\nrembrandt/2.jpg,rembrandt\n",
              "encoder.json": '{"encoder": "runs:p_pretrain_ae/encoder.keras"}'}
    assert report.encoder_saw_test_images(folder("cv_old", record, images), tmp_path, record)
    other_root = {"command": "cv10", "arguments": {"data": "../shared/data/wikiart14", "encoder": ""}}
    assert not report.encoder_saw_test_images(folder("cv_other_data", other_root, images), tmp_path, other_root)
    disjoint = {**images, "images.csv": "path,label\nrembrandt/3.jpg,rembrandt\n"}
    assert not report.encoder_saw_test_images(folder("cv_disjoint", record, disjoint), tmp_path, record)
