"""Classical baselines: handcrafted features (shape, invariances) and every Table 1 pipeline."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from deeppainter.classical.baselines import BASELINES, build_baseline, downsample_pixels
from deeppainter.classical.features import (
    content_box,
    feature_count,
    feature_groups,
    image_features,
)
from deeppainter.errors import UserError

GROUPS = feature_groups()


def _texture(rng, size, kind):
    """A stroke texture in [0, 1]: horizontal streaks, soft blobs or fine vertical hatching."""
    h, w = size
    if kind == 0:
        base = np.repeat(rng.random((h, 1)), w, axis=1) * 0.7 + rng.random((h, w)) * 0.3
    elif kind == 1:
        coarse = rng.random((h // 8 + 1, w // 8 + 1))
        base = np.kron(coarse, np.ones((8, 8)))[:h, :w]
    else:
        base = np.tile((np.arange(w) % 2).astype(float), (h, 1)) * 0.6 + rng.random((h, w)) * 0.4
    return base


PALETTES = (
    ((200, 120, 40), (250, 220, 120)),  # warm orange → yellow
    ((20, 15, 10), (120, 80, 40)),  # dark brown
    ((30, 60, 160), (140, 200, 230)),  # blues
)


def _painting(rng, painter, size=(32, 32)):
    low, high = (np.array(c, float) for c in PALETTES[painter])
    t = _texture(rng, size, painter)[..., None]
    jitter = rng.normal(0, 12, 3)
    img = low + (high - low) * t + jitter + rng.normal(0, 6, size + (3,))
    return np.clip(img, 12, 255).astype(np.uint8)  # ≥ 12: no accidental "padding"


def _pad(img, top, bottom, left, right):
    return np.pad(img, ((top, bottom), (left, right), (0, 0)))


def synthetic_painters(per_class=20, size=32, seed=0):
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for painter in range(3):
        for i in range(per_class):
            if i % 2:  # half of them letterboxed like the real padded data
                content = _painting(rng, painter, (size - 8, size))
                img = _pad(content, 4, 4, 0, 0)
            else:
                img = _painting(rng, painter, (size, size))
            images.append(img)
            labels.append(painter)
    return np.stack(images), np.array(labels)


# --- features -------------------------------------------------------------------------------

def test_feature_shape_dtype_finite():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (5, 32, 40, 3), dtype=np.uint8)
    images[0] = 0  # an all-black image must not produce NaNs
    images[1, :, :10] = 0  # a wide bar
    feats = image_features(images)
    assert feats.shape == (5, feature_count())
    assert feats.dtype == np.float32
    assert np.isfinite(feats).all()
    assert image_features(images[:0]).shape == (0, feature_count())
    assert image_features(np.full((2, 64, 64, 3), 99, np.uint8)).shape[1] == feature_count()
    assert max(s.stop for s in GROUPS.values()) == feature_count()


def test_feature_rejects_bad_shape():
    with pytest.raises(UserError):
        image_features(np.zeros((2, 32, 32), np.uint8))


def test_content_box_finds_bars():
    img = _pad(np.full((20, 30, 3), 150, np.uint8), 6, 6, 1, 1)
    img[:6] = 5  # near-black JPEG noise still counts as padding
    top, bottom, left, right = content_box(img[None])[0]
    assert (top, bottom) == (7, 25)  # 6-row bars + 1 px margin for resampling blur
    assert (left, right) == (2, 30)


def test_padding_does_not_change_colour_features():
    rng = np.random.default_rng(2)
    content = _painting(rng, 0, (30, 20))
    narrow = _pad(content, 1, 1, 6, 6)  # 32×32
    wide = _pad(content, 9, 9, 14, 14)  # 48×48: very different bar widths
    a = image_features(narrow[None])[0]
    b = image_features(wide[None])[0]
    for group in ("colour", "layout", "gray", "texture"):
        np.testing.assert_allclose(a[GROUPS[group]], b[GROUPS[group]], atol=1e-4, err_msg=group)
    # without the mask, the bars would dominate the value histogram
    unmasked_dark = (wide.max(axis=2) == 0).mean()
    assert unmasked_dark > 0.5


def test_horizontal_flip_keeps_colour_histograms():
    images, _ = synthetic_painters(per_class=2)
    flipped = images[:, :, ::-1]
    a, b = image_features(images), image_features(flipped)
    for group in ("colour", "gray", "texture"):
        np.testing.assert_allclose(a[:, GROUPS[group]], b[:, GROUPS[group]], atol=1e-4, err_msg=group)
    assert not np.allclose(a[:, GROUPS["layout"]], b[:, GROUPS["layout"]], atol=1e-3)


def test_brightness_shift_changes_colour_stats():
    images, _ = synthetic_painters(per_class=2)
    brighter = np.clip(images.astype(int) + 40, 0, 255).astype(np.uint8)
    brighter[images == 0] = 0  # keep the padding black
    a, b = image_features(images), image_features(brighter)
    gray_mean = GROUPS["gray"].start
    assert np.all(b[:, gray_mean] > a[:, gray_mean] + 0.1)
    assert np.abs(a[:, GROUPS["colour"]] - b[:, GROUPS["colour"]]).max() > 0.1


def test_downsample_pixels_range_and_shape():
    images, _ = synthetic_painters(per_class=1, size=48)
    pix = downsample_pixels(images, 16)
    assert pix.shape == (3, 16 * 16 * 3) and pix.dtype == np.float32
    assert 0 <= pix.min() and pix.max() <= 1
    small = downsample_pixels(images[:, :8, :8], 16)  # upsampling path
    assert small.shape == (3, 16 * 16 * 3)


# --- pipelines --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def split():
    images, labels = synthetic_painters(per_class=20)
    test = np.arange(len(labels)) % 3 == 0  # 7 held-out images per painter
    return images[~test], labels[~test], images[test], labels[test]


@pytest.mark.parametrize("name", BASELINES)
def test_baseline_fits_and_beats_chance(name, split):
    x_train, y_train, x_test, y_test = split
    model = build_baseline(name, seed=0)
    model.fit(x_train, y_train)
    pred = model.predict(x_test)
    proba = model.predict_proba(x_test)
    assert proba.shape == (len(x_test), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    accuracy = (pred == y_test).mean()
    assert accuracy >= 0.6, f"{name}: accuracy {accuracy:.2f} (chance 0.33)"


def test_baseline_pickles(split):
    x_train, y_train, x_test, _ = split
    model = build_baseline("features-rbm-svm", seed=3).fit(x_train, y_train)
    clone = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(clone.predict(x_test), model.predict(x_test))


def test_unknown_baseline_lists_names():
    with pytest.raises(UserError) as info:
        build_baseline("genetic-algorithm")
    for name in BASELINES:
        assert name in str(info.value)


def test_power_normalisation_is_chosen_inside_the_training_data(split):
    from deeppainter.classical.heads import signed_sqrt

    np.testing.assert_allclose(signed_sqrt(np.array([-4.0, 0.0, 9.0])), [-2.0, 0.0, 3.0])
    x_train, y_train, x_test, y_test = split
    model = build_baseline("features-svm", seed=0, power="select").fit(x_train, y_train)
    search = model.named_steps["svm"]
    assert len({str(p) for p in search.cv_results_["param_power"]}) == 2  # both candidates were scored
    assert (model.predict(x_test) == y_test).mean() >= 0.6
    sqrt_model = build_baseline("features-svm", seed=0, power="sqrt")
    assert [name for name, _ in sqrt_model.steps] == ["features", "power", "scale", "svm"]
    with pytest.raises(UserError, match="svm_power"):
        build_baseline("features-svm", power="log")
    from deeppainter.classical.heads import chosen_hyperparameters

    chosen = chosen_hyperparameters(model)
    assert set(chosen) == {"chose_svm.power", "chose_svm.svm__estimator__C"}
    assert chosen["chose_svm.power"] in ("passthrough", "signed_sqrt")


def test_multiscale_features_add_a_box_averaged_copy(split):
    from deeppainter.classical.features import multiscale_features

    images = split[0][:6]
    np.testing.assert_array_equal(multiscale_features(images, (1,)), image_features(images))
    both = multiscale_features(images, (1, 2))
    assert both.shape == (6, 2 * feature_count())
    half = images.reshape(6, images.shape[1] // 2, 2, images.shape[2] // 2, 2, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(both[:, feature_count():], image_features(np.rint(half).astype(np.uint8)), atol=1e-6)
    x_train, y_train, x_test, y_test = split
    model = build_baseline("features-svm", seed=0, feature_scales=(1, 2)).fit(x_train, y_train)
    assert (model.predict(x_test) == y_test).mean() >= 0.6
