"""Where a decision comes from: Grad-CAM (Selvaraju et al. 2017) for the Keras classifiers, occlusion (Zeiler &
Fergus 2014) for any model.

For the CAE classifier the Grad-CAM map is taken at the last encoder convolution (encoder_conv<k>), for the
transfer backbones at the backbone's last feature map; python -m deeppainter.explain (cli/explain.py)
applies it to new images. Models without gradients (scikit-learn pipelines on frozen features) get an
occlusion map, which only asks the model for probabilities and so is faithful to any model; the web page
(``explain_image``) picks the map and says which it shows."""
from __future__ import annotations

import io
from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from deeppainter.errors import UserError
from deeppainter.eval.inference import apply_chain, chain_layers


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


def split_model(model: keras.Model):
    """``(before, features, after)``: callables with after(features(before(x))) == model(x) at inference.

    ``features`` ends at the Grad-CAM layer: the last ``encoder_conv*`` of a CAE encoder, or the
    whole nested backbone. The saved classifiers are chains (image → [augmentation] → [preprocessing]
    → encoder/backbone → head), so the layers are re-applied in order; augmentation is skipped.
    """
    chain = chain_layers(model)
    nested = [i for i, layer in enumerate(chain) if isinstance(layer, keras.Model)]
    if not nested:
        raise UserError(f"Grad-CAM: {model.name} has no encoder or backbone sub-model; expected a DeepPainter "
                        f"CAE classifier or a transfer backbone saved by cv10")
    cut = nested[0]
    inner = chain[cut]
    inner_layers = [layer for layer in inner.layers if not isinstance(layer, keras.layers.InputLayer)]
    convs = [i for i, layer in enumerate(inner_layers) if layer.name.startswith("encoder_conv")]
    if convs:
        features = keras.Model(inner.input, inner_layers[convs[-1]].output, name="gradcam_features")
        rest = inner_layers[convs[-1] + 1:] + chain[cut + 1:]
    else:
        features, rest = inner, chain[cut + 1:]
    return (lambda x: apply_chain(chain[:cut], x)), (lambda x: features(x, training=False)), \
        (lambda a: apply_chain(rest, a))


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


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """uint8 image with the heat map (same height and width, [0, 1]) blended over it in jet colours."""
    from matplotlib import colormaps

    colours = colormaps["jet"](heat)[..., :3]
    blended = (1 - alpha) * image.astype("float32") / 255.0 + alpha * colours
    return np.clip(255 * blended, 0, 255).astype(np.uint8)


def overlay_png(image: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> bytes:
    """:func:`overlay` as PNG bytes, same pixel size."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(overlay(image, heat, alpha)).save(buffer, format="PNG")
    return buffer.getvalue()


def occlusion_map(predict_proba, image: np.ndarray, class_index: int, probability: float, grid: int) -> np.ndarray:
    """How much the class's probability drops when each cell of a ``grid``×``grid`` partition is covered.

    All ``grid``² covered copies go to ``predict_proba`` (uint8 (N, S, S, 3) → (N, K)) in one batch;
    ``probability`` is the uncovered image's. Returns (S, S) in [0, 1], each cell's drop relative to the
    largest (all zero when no cell lowers it), cells kept square-edged so the map shows what was measured.
    """
    size = image.shape[0]
    edges = np.linspace(0, size, grid + 1).round().astype(int)
    # ASSUMPTION: a cell is covered with the image's mean colour, so colour statistics move as little as possible.
    fill = image.reshape(-1, 3).mean(axis=0).round().astype(np.uint8)
    covered = np.repeat(image[None], grid * grid, axis=0)
    for row in range(grid):
        for column in range(grid):
            covered[row * grid + column, edges[row]:edges[row + 1], edges[column]:edges[column + 1]] = fill
    drops = np.maximum(probability - np.asarray(predict_proba(covered))[:, class_index], 0.0).reshape(grid, grid)
    if drops.max() > 0:
        drops = drops / drops.max()
    return np.repeat(np.repeat(drops, np.diff(edges), axis=0), np.diff(edges), axis=1).astype("float32")


@dataclass
class HeatMap:
    heat: np.ndarray  # (S, S) in [0, 1]
    method: str  # what the map is, in words for the page
    note: str  # "" or why the map is uniform


def explain_image(final, image: np.ndarray, class_index: int, probability: float, occlusion_grid: int) -> HeatMap:
    """Grad-CAM where the model is a Keras chain with an encoder or backbone; otherwise an occlusion map."""
    if final.is_neural:
        try:
            heat, _ = grad_cam(final.model, image, class_index)
        except UserError:
            pass  # no encoder or backbone to take gradients at: occlusion below
        else:
            note = "" if np.ptp(heat) > 0 else (f"uniform: the feature map is 1×1 at {final.image_size}px, or there "
                                                 f"is no positive evidence for the class")
            return HeatMap(heat, "Grad-CAM (Selvaraju et al. 2017) at the last encoder or backbone feature map: "
                                 "where the evidence for this painter lies", note)
    heat = occlusion_map(final.predict_proba, image, class_index, probability, occlusion_grid)
    note = "" if heat.max() > 0 else "uniform: covering no single cell lowers this painter's probability"
    return HeatMap(heat, f"occlusion map ({occlusion_grid}×{occlusion_grid} cells, each covered in turn): how much "
                         f"this painter's probability drops without that cell — faithful to any model", note)
