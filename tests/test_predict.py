"""predict / evaluate / explain from tiny saved cv10 models (CAE and a scikit-learn baseline)."""
from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from deeppainter.cli import cv10, evaluate, predict
from deeppainter.cli import explain as explain_cli
from deeppainter.eval import explain, inference
from deeppainter.runs import image_path, read_json


def saved_run(out, painters, model):
    cv10.main(["--preset", "smoke", "--data", str(painters), "--out", str(out), "--model", model,
               "--set", "cv.folds=2", "--save-final-model", "--transductive-pretrain"])
    (run_dir,) = [p for p in out.glob("*_cv10_*") if p.is_dir()]
    return run_dir


@pytest.fixture(scope="module")
def cae_run(synthetic_painters, tmp_path_factory):
    return saved_run(tmp_path_factory.mktemp("cae"), synthetic_painters, "cae")


@pytest.fixture(scope="module")
def baseline_run(synthetic_painters, tmp_path_factory):
    return saved_run(tmp_path_factory.mktemp("baseline"), synthetic_painters, "pixels-svm")


@pytest.fixture
def mixed_inputs(synthetic_painters, tmp_path):
    """A folder with two real images (one resized to an odd size) and a file that is not an image."""
    folder = tmp_path / "new"
    folder.mkdir()
    shutil.copy(synthetic_painters / "painter1" / "0.jpg", folder / "a.jpg")
    Image.open(synthetic_painters / "painter2" / "0.jpg").resize((97, 41)).save(folder / "b.png")
    (folder / "notes.jpg").write_text("not an image")
    return folder


def check_predictions(csv_path, classes):
    table = pd.read_csv(csv_path, keep_default_na=False)
    assert len(table) == 3
    bad = table[table["path"].str.endswith("notes.jpg")]
    assert len(bad) == 1 and "not an image" in bad["error"].iloc[0]
    good = table[table["error"] == ""]
    probabilities = good[[f"prob_{c}" for c in classes]].to_numpy(dtype=float)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert set(good["top1"]) <= set(classes) and (good["prob1"].astype(float) >= good["prob2"].astype(float)).all()
    return table


@pytest.mark.parametrize("which", ["cae_run", "baseline_run"])
def test_predict_lists_top_k_and_unreadable_files(which, request, mixed_inputs, tmp_path, capsys):
    run_dir = request.getfixturevalue(which)
    predict.main(["--run", str(run_dir), str(mixed_inputs), "--top-k", "2", "--out", str(tmp_path / "p")])
    (csv_path,) = (tmp_path / "p").glob("predictions_*.csv")
    check_predictions(csv_path, read_json(run_dir / "final_model.json")["classes"])
    assert "unreadable" in capsys.readouterr().out


def test_predict_standardises_like_training(cae_run, synthetic_painters):
    final = inference.load_final_model(cae_run)
    table = pd.read_csv(cae_run / "images.csv")
    table["path"] = [str(image_path(p, read_json(cae_run / "config.json"))) for p in table["path"]]
    images, reasons = inference.standardise_files(list(table["path"])[:4], final, progress=False)
    from deeppainter.config import DataConfig
    from deeppainter.data.datasets import load_images

    trained, _ = load_images(list(table["path"])[:4], DataConfig(image_size=32), progress=False)
    assert reasons == [""] * 4 and np.array_equal(images, np.asarray(trained))


def test_predict_without_final_model_says_how_to_make_one(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        predict.main(["--run", str(tmp_path), "x.jpg"])
    assert exit_info.value.code == 2
    assert "--save-final-model" in capsys.readouterr().err


def test_predict_cli_writes_a_fresh_folder_not_into_the_run_folder(cae_run, mixed_inputs, tmp_path):
    import os
    from pathlib import Path

    before = sorted(p.name for p in cae_run.iterdir())
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    done = subprocess.run([sys.executable, "-m", "deeppainter.predict", "--run", str(cae_run),
                           str(mixed_inputs / "a.jpg")], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "a.jpg: painter" in done.stdout
    assert sorted(p.name for p in cae_run.iterdir()) == before  # the model's run folder is left alone
    (folder,) = (tmp_path / "results" / "runs").glob("*_predict_cae")
    assert len(list(folder.glob("predictions_*.csv"))) == 1


@pytest.mark.parametrize("make_inputs, reason", [
    (lambda d: [d / "notes.txt"], "notes.txt: unreadable ("),
    (lambda d: [d / "missing.jpg"], "missing.jpg: unreadable (no such file)"),
    (lambda d: [d / "empty"], "no images given"),
    (lambda d: [d / "notes.txt", d / "missing.jpg", d / "empty"], "missing.jpg: unreadable (no such file)"),
])
def test_predict_fails_when_no_input_can_be_read(cae_run, tmp_path, capsys, make_inputs, reason):
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("no images here")
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        predict.main(["--run", str(cae_run), *map(str, make_inputs(tmp_path)), "--out", str(out)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert reason in err and err.strip().splitlines()[-1].startswith("error:")
    assert not list(out.glob("predictions_*.csv"))


def test_evaluate_scores_an_external_folder(cae_run, synthetic_painters, tmp_path):
    evaluate.main(["--preset", "smoke", "--run", str(cae_run), "--data", str(synthetic_painters),
                   "--out", str(tmp_path)])
    (run_dir,) = tmp_path.glob("*_evaluate_*")
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["n_images"] == 60 and 0 <= metrics["balanced_accuracy"] <= 1 and 0 <= metrics["macro_f1"] <= 1
    for name in ("predictions.csv", "confusion_matrix.png", "classification_report.txt", "DONE"):
        assert (run_dir / name).exists(), name


def test_evaluate_rejects_unknown_class_folders(cae_run, synthetic_painters, tmp_path, capsys):
    data = tmp_path / "external"
    shutil.copytree(synthetic_painters / "painter0", data / "painter0")
    shutil.copytree(synthetic_painters / "painter1", data / "monet")
    with pytest.raises(SystemExit):
        evaluate.main(["--run", str(cae_run), "--data", str(data), "--out", str(tmp_path / "runs")])
    error = capsys.readouterr().err
    assert "monet" in error and "painter0, painter1, painter2" in error


def test_grad_cam_of_the_cae_has_the_image_size_and_structure(cae_run, synthetic_painters):
    final = inference.load_final_model(cae_run)
    images, _ = inference.standardise_files([synthetic_painters / "painter0" / "3.jpg"], final, progress=False)
    heat, probabilities = explain.grad_cam(final.model, images[0])
    assert heat.shape == (32, 32) and np.ptp(heat) > 0 and 0 <= heat.min() and heat.max() <= 1
    np.testing.assert_allclose(probabilities, final.predict_proba(images)[0], atol=1e-5)


def test_explain_cli_writes_overlays(cae_run, mixed_inputs, tmp_path):
    explain_cli.main(["--run", str(cae_run), str(mixed_inputs), "--class", "painter1", "--out", str(tmp_path)])
    (folder,) = tmp_path.glob("gradcam_*")
    table = pd.read_csv(folder / "gradcam.csv", keep_default_na=False)
    assert len(table) == 3 and (table["error"] != "").sum() == 1
    assert set(table.loc[table["error"] == "", "class"]) == {"painter1"}
    pngs = sorted(folder.glob("*_gradcam.png"))
    # the painting and its heat map side by side, each at least 256 px (the model sees 32 px)
    assert len(pngs) == 2 and all(Image.open(p).width >= 2 * 256 and Image.open(p).height >= 256 for p in pngs)
    with pytest.raises(SystemExit):
        explain_cli.main(["--run", str(cae_run), str(mixed_inputs), "--display-size", "64"])


def test_explain_refuses_baselines(baseline_run, synthetic_painters, capsys):
    with pytest.raises(SystemExit):
        explain_cli.main(["--run", str(baseline_run), str(synthetic_painters / "painter0" / "0.jpg")])
    assert "needs a neural model" in capsys.readouterr().err


def test_grad_cam_of_a_backbone():
    from deeppainter import config
    from deeppainter.models import backbones

    model, _ = backbones.build_backbone_classifier("resnet50", 64, 3, config.build_config("smoke"))
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    heat, probabilities = explain.grad_cam(model, image)
    assert heat.shape == (64, 64) and np.isfinite(heat).all() and probabilities.shape == (3,)


def test_model_is_a_deprecated_alias_of_run(cae_run, mixed_inputs, tmp_path, capsys):
    predict.main(["--model", str(cae_run), str(mixed_inputs / "a.jpg"), "--out", str(tmp_path)])
    assert "--model RUN_DIR is deprecated" in capsys.readouterr().err


def test_predict_and_evaluate_standardise_alike_with_non_default_preprocessing(synthetic_painters, tmp_path):
    """A model trained with trim_bars + crop is evaluated with the same preprocessing record as predict uses."""
    cv10.main(["--preset", "smoke", "--data", str(synthetic_painters), "--out", str(tmp_path / "train"),
               "--model", "cae", "--set", "cv.folds=2", "--set", "data.trim_bars=true", "--set", "data.mode=crop",
               "--set", "pretrain.epochs=1", "--save-final-model", "--transductive-pretrain"])
    (run_dir,) = [p for p in (tmp_path / "train").glob("*_cv10_*") if p.is_dir()]
    record = read_json(run_dir / "final_model.json")
    assert record["trim_bars"] is True and record["mode"] == "crop"
    final = inference.load_final_model(run_dir)
    assert final.data_config().trim_bars is True and final.data_config().mode == "crop"
    # New images with black letterbox bars: trimming them changes what the model sees.
    data = tmp_path / "external"
    for painter in ("painter0", "painter1", "painter2"):
        (data / painter).mkdir(parents=True)
        for number in range(3):
            image = Image.open(synthetic_painters / painter / f"{number}.jpg").convert("RGB")
            canvas = Image.new("RGB", (image.width, image.height * 2), (0, 0, 0))
            canvas.paste(image, (0, image.height // 2))
            canvas.save(data / painter / f"{number}.png")
    predict.main(["--run", str(run_dir), str(data), "--out", str(tmp_path / "predicted")])
    (csv_path,) = (tmp_path / "predicted").glob("predictions_*.csv")
    predicted = pd.read_csv(csv_path, keep_default_na=False)
    evaluate.main(["--preset", "smoke", "--run", str(run_dir), "--data", str(data), "--out", str(tmp_path / "ev")])
    (eval_dir,) = (tmp_path / "ev").glob("*_evaluate_*")
    evaluated = pd.read_csv(eval_dir / "predictions.csv")
    key = lambda table: table["path"].map(lambda p: "/".join(str(p).split("/")[-2:]))  # noqa: E731
    predicted, evaluated = predicted.set_index(key(predicted)), evaluated.set_index(key(evaluated))
    assert len(predicted) == len(evaluated) == 9 and set(predicted.index) == set(evaluated.index)
    columns = [f"prob_{c}" for c in final.classes]
    np.testing.assert_allclose(predicted.loc[evaluated.index, columns].to_numpy(float),
                               evaluated[columns].to_numpy(float), atol=1e-6)
    trimmed, _ = inference.standardise_files(sorted(data.rglob("*.png")), final, progress=False)
    final.trim_bars = False
    plain, _ = inference.standardise_files(sorted(data.rglob("*.png")), final, progress=False)
    assert not np.array_equal(trimmed, plain)  # the bars matter, so the check above can fail
