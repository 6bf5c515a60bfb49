"""Grad-CAM (Selvaraju et al. 2017) for the Keras classifiers.

For the CAE classifier the map is taken at the last encoder convolution (encoder_conv<k>), for the
transfer backbones at the backbone's last feature map; python -m deeppainter.explain (cli/explain.py)
applies it to new images."""
from __future__ import annotations

import io

import keras
import numpy as np
from keras import ops

from deeppainter.errors import UserError


def value_and_gradient(fn, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``fn(x)`` (a scalar) and its gradient with respect to ``x``, on the active Keras backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = fn(x)
        return np.asarray(value), np.asarray(tape.gradient(value, x))
    if backend == "jax":
        import jax

        value, gradient = jax.value_and_grad(fn)(jax.numpy.asarray(x))
        return np.asarray(value), np.asarray(gradient)
    if backend == "torch":
        import torch

        x = torch.tensor(x, requires_grad=True)
        value = fn(x)
        value.backward()
        return value.detach().cpu().numpy(), x.grad.cpu().numpy()
    raise UserError(f"Grad-CAM supports the tensorflow, jax and torch backends, not KERAS_BACKEND={backend}")


def _real_layers(model: keras.Model) -> list:
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def split_model(model: keras.Model):
    """``(before, features, after)``: callables with after(features(before(x))) == model(x) at inference.

    ``features`` ends at the Grad-CAM layer: the last ``encoder_conv*`` of a CAE encoder, or the
    whole nested backbone. The saved classifiers are chains (image → [augmentation] → [preprocessing]
    → encoder/backbone → head), so the layers are re-applied in order; augmentation is skipped.
    """
    chain = [layer for layer in _real_layers(model) if not layer.name.startswith("augment_")]
    nested = [i for i, layer in enumerate(chain) if isinstance(layer, keras.Model)]
    if not nested:
        raise UserError(f"Grad-CAM: {model.name} has no encoder or backbone sub-model; expected a DeepPainter "
                        f"CAE classifier or a transfer backbone saved by cv10")
    cut = nested[0]
    inner = chain[cut]
    inner_layers = _real_layers(inner)
    convs = [i for i, layer in enumerate(inner_layers) if layer.name.startswith("encoder_conv")]
    if convs:
        features = keras.Model(inner.input, inner_layers[convs[-1]].output, name="gradcam_features")
        rest = inner_layers[convs[-1] + 1:] + chain[cut + 1:]
    else:
        features, rest = inner, chain[cut + 1:]

    def apply(layers, x):
        for layer in layers:
            x = layer(x, training=False)
            if isinstance(x, (tuple, list)):  # MaxPoolingWithSwitches: (pooled, switches)
                x = x[0]
        return x

    return (lambda x: apply(chain[:cut], x)), (lambda x: features(x, training=False)), (lambda a: apply(rest, a))


def grad_cam(model: keras.Model, image: np.ndarray, class_index: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (S, S, 3) image → (heat map (S, S) in [0, 1], class probabilities)."""
    from PIL import Image

    before, features, after = split_model(model)
    x = before(ops.convert_to_tensor(image[None].astype("float32") / 255.0))
    activations = ops.convert_to_numpy(features(x)).astype("float32")
    probabilities = ops.convert_to_numpy(after(ops.convert_to_tensor(activations)))[0].astype("float64")
    target = int(np.argmax(probabilities)) if class_index is None else int(class_index)
    _, gradients = value_and_gradient(lambda a: after(a)[0, target], activations)
    weights = gradients.mean(axis=(1, 2), keepdims=True)  # one weight per channel: pooled gradients
    cam = np.maximum((weights * activations).sum(axis=-1)[0], 0.0)
    if cam.max() > 0:
        cam = cam / cam.max()
    size = image.shape[0]
    heat = np.asarray(Image.fromarray(cam.astype("float32"), mode="F").resize((size, size), Image.BILINEAR))
    return np.clip(heat, 0.0, 1.0), probabilities


def overlay_png(image: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> bytes:
    """The image with the heat map blended over it (jet colours), PNG bytes, same pixel size."""
    from matplotlib import colormaps
    from PIL import Image

    colours = colormaps["jet"](heat)[..., :3]
    blended = (1 - alpha) * image.astype("float32") / 255.0 + alpha * colours
    buffer = io.BytesIO()
    Image.fromarray(np.clip(255 * blended, 0, 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()
