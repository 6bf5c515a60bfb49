import keras
import numpy as np
import pytest

from deeppainter import config
from deeppainter.models.autoencoder import build_autoencoder
from deeppainter.models.classifier import build_classifier, build_head
from deeppainter.models.layers import MaxPoolingWithSwitches, MaxUnpooling2D


def numpy_pool_unpool(x):
    """Reference: 2×2 max-pool recording the first (row-major) argmax; unpool puts values back there."""
    b, h, w, c = x.shape
    pooled = np.zeros((b, h // 2, w // 2, c), x.dtype)
    unpooled = np.zeros_like(x)
    for n in range(b):
        for i in range(h // 2):
            for j in range(w // 2):
                for k in range(c):
                    window = x[n, 2 * i:2 * i + 2, 2 * j:2 * j + 2, k].reshape(-1)
                    arg = int(np.argmax(window))
                    pooled[n, i, j, k] = window[arg]
                    unpooled[n, 2 * i + arg // 2, 2 * j + arg % 2, k] = window[arg]
    return pooled, unpooled


def unpool_model(shape):
    inputs = keras.Input(shape)
    pooled, switches = MaxPoolingWithSwitches()(inputs)
    return keras.Model(inputs, [pooled, MaxUnpooling2D()([pooled, switches])])


@pytest.mark.parametrize("ties", [False, True])
def test_unpooling_matches_numpy_reference(ties):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 6, 8, 3)).astype("float32")
    if ties:  # few distinct values → many windows with several maxima
        x = rng.integers(0, 3, size=x.shape).astype("float32")
    pooled, unpooled = unpool_model(x.shape[1:])(x)
    expected_pooled, expected_unpooled = numpy_pool_unpool(x)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(pooled), expected_pooled)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(unpooled), expected_unpooled)


def test_unpooling_gradient_reaches_switch_positions():
    x = np.random.default_rng(1).normal(size=(1, 4, 4, 2)).astype("float32")
    model = unpool_model(x.shape[1:])
    if keras.backend.backend() != "tensorflow":
        pytest.skip("gradient check written with tf.GradientTape")
    import tensorflow as tf

    variable = tf.Variable(x)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(variable)[1])
    gradient = tape.gradient(loss, variable).numpy()
    _, expected_unpooled = numpy_pool_unpool(x)
    np.testing.assert_array_equal(gradient, (expected_unpooled != 0).astype("float32"))


def test_unpool_reuses_switch_channels_cyclically():
    values = np.arange(1, 1 + 2 * 2 * 4, dtype="float32").reshape(1, 2, 2, 4)
    switches = np.zeros((1, 2, 2, 2, 4), "float32")
    switches[..., 0, 3] = 1  # channel 0: bottom-right
    switches[..., 1, 0] = 1  # channel 1: top-left
    out = keras.ops.convert_to_numpy(MaxUnpooling2D()([values, switches]))
    assert out.shape == (1, 4, 4, 4)
    np.testing.assert_array_equal(out[0, 1, 1], [values[0, 0, 0, 0], 0, values[0, 0, 0, 2], 0])
    np.testing.assert_array_equal(out[0, 0, 0], [0, values[0, 0, 0, 1], 0, values[0, 0, 0, 3]])


def test_maxunpool_autoencoder_survives_save_and_reload(tmp_path):
    cfg = config.build_config("smoke", ["autoencoder.unpooling=maxunpool", "autoencoder.decoder_filters=8,8"])
    autoencoder, encoder = build_autoencoder(cfg.autoencoder, 16)
    x = np.random.default_rng(2).random((2, 16, 16, 3)).astype("float32")
    autoencoder.save(tmp_path / "ae.keras")
    encoder.save(tmp_path / "enc.keras")
    reloaded = keras.models.load_model(tmp_path / "ae.keras")
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), autoencoder.predict(x, verbose=0), atol=1e-6)
    assert keras.models.load_model(tmp_path / "enc.keras").output_shape == (None, 4, 4, 8)


@pytest.mark.parametrize("unpooling", ["upsample", "maxunpool"])
def test_tiny_autoencoder_shapes_and_shared_layers(unpooling):
    cfg = config.build_config("smoke", [f"autoencoder.unpooling={unpooling}"])
    autoencoder, encoder = build_autoencoder(cfg.autoencoder, 16)
    assert autoencoder.output_shape == (None, 16, 16, 3)
    assert encoder.output_shape == (None, 4, 4, 8)
    assert encoder.get_layer("encoder_conv1") is autoencoder.get_layer("encoder_conv1")


def test_golden_parameter_count_replication2021():
    cfg = config.get_preset("replication2021")
    autoencoder, encoder = build_autoencoder(cfg.autoencoder, cfg.data.image_size)
    assert autoencoder.count_params() == 3_016_403  # [R21] Table I
    assert encoder.count_params() == 15_200 + 1_000_200
    assert autoencoder.get_layer("decoder_upsample1") is not None


def test_golden_parameter_count_paper2016():
    cfg = config.get_preset("paper2016")
    autoencoder, encoder = build_autoencoder(cfg.autoencoder, cfg.data.image_size)
    # conv100 7,600 + conv200 500,200 + deconv200 1,000,200 + deconv100 500,100 + 1×1 conv 303
    assert autoencoder.count_params() == 2_008_403
    assert encoder.output_shape == (None, 64, 64, 200)
    assert autoencoder.get_layer("decoder_unpool1") is not None


def test_golden_head_size_replication2021():
    cfg = config.get_preset("replication2021")
    head = build_head((64, 64, 200), cfg.classifier, 3)
    # [R21] Table II: Dense 300 on 819,200 inputs = 245,760,300; Dense 300 = 90,300; softmax = 903.
    assert head.count_params() == 245_760_300 + 90_300 + 903


def test_classifier_freezes_encoder_by_default():
    cfg = config.build_config("smoke")
    _, encoder = build_autoencoder(cfg.autoencoder, 16)
    classifier = build_classifier(encoder, cfg.classifier, 3)
    assert classifier.output_shape == (None, 3)
    assert not encoder.trainable
    assert len(classifier.trainable_weights) == 2 * (len(cfg.classifier.head) + 1)
