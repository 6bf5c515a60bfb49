"""Analytic FLOP and memory counts for the Keras models, from layer shapes alone (nothing is run).

A multiply-add is 2 FLOPs. Conv2D / Conv2DTranspose (stride 1, "same"): 2·H·W·k²·Cin·Cout with
H×W the output size; Dense: 2·in·out. Pooling, activations and element-wise ops are left out
(they are memory-bound and small next to the convolutions). A training step costs about 3× the
forward pass (forward, gradient w.r.t. activations, gradient w.r.t. weights).
"""
from __future__ import annotations

import math

import keras

TRAIN_FACTOR = 3
FP32_BYTES = 4
# fp32 weights + Adam's two moments (m, v); a training step also holds one gradient per weight.
ADAM_STATE_BYTES = 3 * FP32_BYTES
TRAIN_STEP_BYTES = ADAM_STATE_BYTES + FP32_BYTES


def layer_flops(layer: keras.layers.Layer) -> int:
    """Forward FLOPs of one layer for one example."""
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
        _, height, width, _ = layer.output.shape
        kernel_h, kernel_w = layer.kernel_size
        return 2 * height * width * kernel_h * kernel_w * int(layer.input.shape[-1]) * layer.filters
    if isinstance(layer, keras.layers.Dense):
        return 2 * int(layer.input.shape[-1]) * layer.units
    return 0


def forward_flops(model: keras.Model) -> int:
    """Forward FLOPs per example, summed over every layer (nested models included)."""
    total = 0
    for layer in model.layers:
        total += forward_flops(layer) if isinstance(layer, keras.Model) else layer_flops(layer)
    return total


def train_flops(model: keras.Model) -> int:
    return TRAIN_FACTOR * forward_flops(model)


def activation_elements(model: keras.Model) -> int:
    """Elements of every layer output for one example (what backpropagation keeps, roughly)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        outputs = layer.output if isinstance(layer.output, (list, tuple)) else [layer.output]
        total += sum(math.prod(int(d) for d in out.shape[1:]) for out in outputs)
    return total


def dense_stack_params(inputs: int, units: tuple[int, ...]) -> int:
    """Weights + biases of Dense layers of ``units`` stacked on ``inputs`` features."""
    total, width = 0, inputs
    for count in units:
        total += width * count + count
        width = count
    return total
