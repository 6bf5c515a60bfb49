"""EfficientNet-Lite0 (ImageNet) with its top blocks fine-tuned on cached activations: transfer on a CPU.

Fine-tuning the whole network costs a forward and backward pass of all 16 MBConv blocks per image
and epoch, hours per 10-fold run on 2 cores (``effnet-lite0-finetune-all`` does it, for a GPU).
Here the lower 16 − ``backbone.trainable_blocks`` blocks stay frozen, so what they compute is
computed once per image (and once for its mirror image: the flip augmentation) into the shared
feature cache, ``<cache>/features/lite0-tap<k>-<S>px-<hash>.npy``; in each fold only the top blocks
and the head train:

    cached activations → top MBConv blocks + 1x1 head conv (ImageNet init, BatchNorm in inference
    mode) → SpatialDropout2D → global average pool → dropout → dense softmax

in the two phases of every transfer backbone (deeppainter.train.backbone_model): the head alone at
``backbone.lr_head``, then top blocks and head together at ``lr_body`` / ``lr_head``. With
``trainable_blocks = 0`` nothing of the network trains: the replication's head (SpatialDropout2D →
dense) on frozen ImageNet conv maps.

The saved final model is one chain (image → Lite0 with the fine-tuned top → head), so predict,
evaluate and explain (Grad-CAM on the last conv maps) use it like any transfer backbone.
"""
from __future__ import annotations

import functools
from pathlib import Path

import keras
import numpy as np

from deeppainter.classical.featurize import shared_cache_root
from deeppainter.data.splits import fold_seed
from deeppainter.models.backbones import LITE0, BackbonePreprocess, head_layers
from deeppainter.models.feature_cache import extract_in_batches, shared_cache_file
from deeppainter.models.featurizers import LITE0 as LITE0_NETWORK
from deeppainter.models.pretrained import efficientnet_lite
from deeppainter.models.registry import FoldContext
from deeppainter.runs import cached_npy
from deeppainter.train.backbone_model import BackboneModel


def tap_cache_file(cache_root: Path, start_block: int, images: np.ndarray) -> Path:
    return shared_cache_file(cache_root, LITE0_NETWORK, images, name=f"lite0-tap{start_block}",
                             extra=str(efficientnet_lite.CONVERSION_VERSION))


@functools.lru_cache(maxsize=2)
def _tap_model(start_block: int, input_size: int):
    return efficientnet_lite.tap_model(start_block, input_size)


def tap_activations(start_block: int, images: np.ndarray) -> np.ndarray:
    """What enters block ``start_block`` for uint8 RGB squares, float32 (N, h, w, c)."""
    tap = _tap_model(start_block, images.shape[1])
    return extract_in_batches(lambda batch: np.asarray(tap.predict_on_batch(batch.astype(np.float32))), images,
                              LITE0_NETWORK.batch_size, desc=f"efficientnet-lite0 to block {start_block}")


class Lite0TopModel(BackboneModel):
    """EfficientNet-Lite0's top ``backbone.trainable_blocks`` blocks and a head trained per fold on cached activations."""

    def __init__(self, cfg, images: np.ndarray, num_classes: int, seed: int, cache_root: Path, verbose: int = 0):
        super().__init__(LITE0, cfg, images, num_classes, seed, verbose)
        self.start_block = efficientnet_lite.NUM_BLOCKS - cfg.backbone.trainable_blocks
        # ASSUMPTION: the mirror image is the only augmentation (rotations and colour jitter would
        # change the frozen activations, which are computed once).
        views = [images, np.ascontiguousarray(images[:, :, ::-1])] if cfg.backbone.augment else [images]
        self.array = np.concatenate([
            cached_npy(tap_cache_file(cache_root, self.start_block, view),
                       lambda view=view: tap_activations(self.start_block, view)) for view in views])
        self.scale, self.views = None, len(views)

    @classmethod
    def from_context(cls, ctx: FoldContext) -> Lite0TopModel:
        return cls(ctx.cfg, ctx.images, len(ctx.classes), ctx.seed, shared_cache_root(ctx.cfg), verbose=ctx.verbose)

    def build(self, seed: int) -> tuple[keras.Model, keras.Model]:
        top = efficientnet_lite.build_top(self.start_block, self.cfg.data.image_size)
        inputs = keras.Input(top.input_shape[1:], name="lite0_activations")
        x = top(inputs, training=False)  # BatchNorm keeps its ImageNet statistics, as in every backbone here
        for layer in head_layers(self.cfg.backbone, self.num_classes):
            x = layer(x)
        return keras.Model(inputs, x, name="lite0_top_classifier"), top

    def fit_predict(self, fold: int, train_idx, test_idx, labels):
        probabilities, info, history = super().fit_predict(fold, train_idx, test_idx, labels)
        return probabilities, {**info, "trainable_blocks": self.cfg.backbone.trainable_blocks}, history

    def save_final(self, labels: np.ndarray, path: Path) -> None:
        """Train on every image; save image [0, 1] → Lite0 (fine-tuned top copied in) → the trained head."""
        model, _ = self.train(np.arange(len(labels)), labels, seed=fold_seed(self.seed, None))
        top = model.layers[1]
        size = self.cfg.data.image_size
        network = efficientnet_lite.build_model(weights=True, input_size=size, top=False)
        for layer in top.layers:
            if layer.weights:
                network.get_layer(layer.name).set_weights(layer.get_weights())
        inputs = keras.Input((size, size, 3), name="image")
        x = network(BackbonePreprocess(LITE0, name="backbone_preprocess")(inputs), training=False)
        for layer in model.layers[2:]:  # after the input and the top: the trained head layers
            x = layer(x)
        keras.Model(inputs, x, name="efficientnet-lite0_classifier").save(path)
