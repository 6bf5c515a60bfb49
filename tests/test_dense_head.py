"""The CAE classifier's dense head as a head for any featurizer (classical.heads "dense", train.dense_head)."""
import pickle

import numpy as np
import pytest

from deeppainter.classical import heads
from deeppainter.config import build_config
from deeppainter.models import registry


def toy_problem(seed=0, per_class=40, dim=8):
    """Three Gaussian blobs in ``dim`` dimensions, one class apart by one unit in its own coordinate."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(["a", "b", "c"], per_class)
    features = rng.normal(size=(len(labels), dim))
    for column, painter in enumerate("abc"):
        features[labels == painter, column] += 2.5
    return features.astype(np.float32), labels


@pytest.fixture(scope="module")
def fitted():
    features, labels = toy_problem()
    head = heads.build_head("dense", build_config("smoke").classifier, 7, {"toy": np.arange(8)})
    return head.fit(features[::2], labels[::2]), features[1::2], labels[1::2]


def test_the_dense_head_learns_a_toy_three_class_problem(fitted):
    head, test_features, test_labels = fitted
    probabilities = head.predict_proba(test_features)
    assert list(head.classes_) == ["a", "b", "c"] and probabilities.shape == (60, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    assert (head.predict(test_features) == test_labels).mean() > 0.7  # chance is 1/3
    logits = heads.decision_scores(head, test_features)  # what the energy score reads
    softmax = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(softmax / softmax.sum(axis=1, keepdims=True), probabilities, atol=1e-5)


def test_the_dense_head_is_deterministic_for_a_seed(fitted):
    head, test_features, _ = fitted
    features, labels = toy_problem()
    ccfg = build_config("smoke").classifier
    again = heads.build_head("dense", ccfg, 7, {}).fit(features[::2], labels[::2])
    np.testing.assert_array_equal(again.predict_proba(test_features), head.predict_proba(test_features))
    other = heads.build_head("dense", ccfg, 8, {}).fit(features[::2], labels[::2])
    assert not np.array_equal(other.predict_proba(test_features), head.predict_proba(test_features))


def test_a_fitted_dense_head_pickles_and_predicts_the_same(fitted):
    head, test_features, _ = fitted
    loaded = pickle.loads(pickle.dumps(head))
    np.testing.assert_array_equal(loaded.predict_proba(test_features), head.predict_proba(test_features))
    np.testing.assert_array_equal(loaded.decision_function(test_features), head.decision_function(test_features))


def mean_colour(images):
    """A toy featurizer's function: each image's mean R, G and B."""
    return images.reshape(len(images), -1, 3).mean(axis=1)


def test_a_featurizer_with_the_dense_head_runs_through_cv10_and_saves_a_final_model(synthetic_painters, monkeypatch,
                                                                                    tmp_path):
    from deeppainter import cv10
    from deeppainter.eval.inference import load_final_model
    from deeppainter.models import featurizers
    from deeppainter.runs import read_json

    monkeypatch.setattr(featurizers, "_FEATURIZERS", dict(featurizers._FEATURIZERS))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    featurizers.register_featurizer(featurizers.Featurizer("toy-mean-colour", "numpy", f"{__name__}:mean_colour",
                                                           output_dim=3, cache="none"))
    registry.register_model("toy-dense", featurizer="toy-mean-colour", head="dense", group="study", help="a toy")

    cv10.main(["--preset", "smoke", "--model", "toy-dense", "--data", str(synthetic_painters), "--out", str(tmp_path),
               "--save-final-model"])
    (run_dir,) = tmp_path.glob("*_cv10_*")
    assert read_json(run_dir / "metrics.json")["accuracy_mean"] > 0.6  # chance is 1/3; each painter has its palette
    for fold in (run_dir / "folds").glob("fold*.json"):  # where each fold's head stopped is recorded
        info = read_json(fold)
        assert 1 <= int(info["chose_dense.best_epoch"]) <= int(info["chose_dense.epochs_run"]) <= 15
    final = load_final_model(run_dir)
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_allclose(final.predict_proba(images).sum(axis=1), 1, atol=1e-5)


def test_effnet_lite0_dense_is_lite0_features_under_the_dense_head():
    spec = registry.get_model("effnet-lite0-dense")
    assert (spec.featurizer, spec.head, spec.final_format) == ("efficientnet-lite0", "dense", "pkl")
    assert "data.image_size=224" in spec.recipe
