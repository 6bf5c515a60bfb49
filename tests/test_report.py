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
    assert "## The embedded sample" in text and "## Table 3" not in text  # the sample has its own table
    assert "96.52" in text and "73.00" in text  # published rows beside ours
    assert run_dir.name in text and "reconstructions.png" in text


def _fake_run(runs, name, model, data, correct, overrides=(), arguments=None):
    """A finished cv10 run folder with only what the report reads (40 images, 4 folds)."""
    import numpy as np
    import pandas as pd

    from deeppainter import config
    from deeppainter.eval.metrics import summarise
    from deeppainter.runs import atomic_write_csv, atomic_write_json, mark_done

    run_dir = runs / name
    classes = ["pierre-auguste-renoir", "rembrandt", "vincent-van-gogh"]
    truth = np.array(classes)[np.arange(40) % 3]
    predictions = pd.DataFrame({"path": [f"{k}.jpg" for k in range(40)], "true": truth,
                                "predicted": np.where(correct, truth, np.roll(truth, 1)), "fold": np.arange(40) % 4})
    cfg = config.build_config("cpu", list(overrides))
    atomic_write_json(run_dir / "config.json", {"command": "cv10", "preset": "cpu", "seed": 0, "config": config.to_dict(cfg),
                                                "arguments": {"model": model, "data": data, "classes": classes,
                                                              **(arguments or {})}, "path_format": 2})
    atomic_write_csv(run_dir / "predictions.csv", predictions)
    atomic_write_json(run_dir / "metrics.json", {**summarise(predictions, classes, 10, 0), "model": model,
                                                 "task": "3painters", "fold_details": []})
    mark_done(run_dir)
    return run_dir


def test_ablations_carry_paired_tests_and_the_sample_is_apart(tmp_path):
    import numpy as np

    runs = tmp_path / "runs"
    right = np.arange(40) % 5 != 1  # 32 of 40
    _fake_run(runs, "a_cv10_cpu_seed0", "cae", "../data/wikiart14", right)
    _fake_run(runs, "b_cv10_cpu_seed0", "cae", "../data/wikiart14", np.ones(40, bool), ["classifier.head=300,300"])
    _fake_run(runs, "c_cv10_cpu_seed0", "cae", "sample:", np.ones(40, bool))
    _fake_run(runs, "d_cv10_cpu_seed0", "features-svm", "../data/wikiart14", np.arange(40) % 4 != 1)
    (tmp_path / report.POST_HOC).write_text("run,reason\nb_cv10_cpu_seed0,tried after a\n")
    text = report.render(tmp_path)
    ablation = next(line for line in text.splitlines() if "b_cv10_cpu_seed0](" in line)
    # 8 images right only in b: exact McNemar 2 / 2^8; the folds agree, so the corrected t-test is there too
    assert "| cae† |" in ablation and "| +20.00 | 0.008 |" in ablation and "| — |" not in ablation
    assert "`b_cv10_cpu_seed0` — tried after a" in text
    sample = text.split("## The embedded sample")[1].split("## Table")[0]
    assert "c_cv10_cpu_seed0" in sample and "a_cv10_cpu_seed0" not in sample
    table1 = text.split("## Table 1")[1].split("## Table 3")[0]
    assert "Best against runner-up: `a_cv10_cpu_seed0` (cae, 80.00) against `d_cv10_cpu_seed0`" in table1


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

    from deeppainter.models import registry

    recipe = list(registry.get_model("effnet-lite0-logreg").recipe)
    assert report.config_changes(record("effnet-lite0-logreg", recipe)) == ""
    assert report.config_changes(record("cae", ["data.image_size=224"])) == "data.image_size=224"  # not cae's recipe
    # a section the model never reads is no change (a probe run made when trainable_blocks defaulted to 1)
    assert report.config_changes(record("effnet-lite0-logreg", [*recipe, "backbone.trainable_blocks=1"])) == ""
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
