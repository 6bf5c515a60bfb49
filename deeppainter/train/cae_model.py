"""The DeepPainter fold model: a frozen pre-trained encoder under a dense head."""
from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pandas as pd

from deeppainter.config import Config
from deeppainter.data.splits import fold_seed, inner_split
from deeppainter.models import layers  # noqa: F401  (registers the max-unpooling layers a paper2016 encoder holds)
from deeppainter.models.classifier import build_classifier, build_head, make_optimizer
from deeppainter.models.feature_cache import extract_in_batches
from deeppainter.models.registry import FoldContext
from deeppainter.runs import atomic_npy
from deeppainter.train import distribute, keras_head
from deeppainter.train.keras_head import CompiledHead, balanced_class_weight


ENCODE_BATCH = 64


class EncoderHeadModel:
    """The DeepPainter classifier: a pre-trained encoder under a dense head, trained per fold.

    With a frozen encoder and no augmentation the encoder's outputs are computed once per image
    (``features.npy`` in the run's cache) and each fold trains only the head on them: the same
    function of the same inputs. Otherwise the encoder runs in every step. Either way the model is
    compiled once per run and reset per fold (train.keras_head.CompiledHead).
    """

    def __init__(self, encoder_path: Path, cfg: Config, images: np.ndarray, num_classes: int, seed: int,
                 cache_dir: Path, use_cache: bool | None = None, verbose: int = 0):
        self.encoder_path, self.cfg, self.images = Path(encoder_path), cfg, images
        self.num_classes, self.seed, self.verbose = num_classes, seed, verbose
        cacheable = not cfg.classifier.fine_tune and not cfg.classifier.augment
        self.use_cache = cacheable if use_cache is None else (use_cache and cacheable)
        self.features = self._encode_all(Path(cache_dir)) if self.use_cache else None
        self._compiled: CompiledHead | None = None
        self._encoder_shape: tuple[int, ...] | None = None

    @classmethod
    def from_context(cls, ctx: FoldContext) -> EncoderHeadModel:
        return cls(ctx.encoder_path, ctx.cfg, ctx.images, len(ctx.classes), ctx.seed, ctx.cache_dir,
                   verbose=ctx.verbose)

    def load_encoder(self) -> keras.Model:
        return keras.models.load_model(self.encoder_path, compile=False)

    def _encode_all(self, cache_dir: Path) -> np.ndarray:
        feature_file = cache_dir / "features.npy"
        if feature_file.exists():
            return np.load(feature_file, mmap_mode="r")
        encoder = self.load_encoder()
        shape = (len(self.images),) + tuple(encoder.output_shape[1:])

        def encode(batch: np.ndarray) -> np.ndarray:
            return keras.ops.convert_to_numpy(encoder(batch.astype("float32") * (1 / 255.0), training=False))

        with atomic_npy(feature_file, "float32", shape) as features:
            extract_in_batches(encode, self.images, ENCODE_BATCH, "encoding images once (frozen encoder)", out=features)
        return np.load(feature_file, mmap_mode="r")

    @property
    def inputs(self) -> tuple[np.ndarray, float | None]:
        """What the trainable model reads (cached features, or images) and the scale applied to it."""
        return (self.features, None) if self.use_cache else (self.images, 1 / 255.0)

    def fresh_head(self, seed: int) -> keras.Model:
        """The head as a new build from ``seed`` would initialise it, on cached features or on the encoder."""
        keras.utils.set_random_seed(seed)
        return build_head(self.feature_shape, self.cfg.classifier, self.num_classes)

    @property
    def feature_shape(self) -> tuple[int, ...]:
        if self.use_cache:
            return tuple(self.features.shape[1:])
        if self._encoder_shape is None:
            self._encoder_shape = tuple(self.load_encoder().output_shape[1:])
        return self._encoder_shape

    def compiled(self) -> CompiledHead:
        """The trainable model, built and compiled once per run: the head alone on cached features, else
        encoder + head."""
        if self._compiled is None:
            cfg = self.cfg.classifier
            head = self.fresh_head(self.seed)
            model = head if self.use_cache else build_classifier(self.load_encoder(), cfg, self.num_classes,
                                                                 head=head)
            model.compile(optimizer=make_optimizer(cfg.optimizer, cfg.learning_rate),
                          loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                          jit_compile=distribute.jit_compile_option(cfg.jit_compile))
            self._compiled = CompiledHead(model, head, self.fresh_head)
        return self._compiled

    @distribute.training_scope(config_of=lambda self, *args, **kwargs: self.cfg)
    def train(self, train_idx: np.ndarray, labels: np.ndarray, seed: int) -> tuple[keras.Model, pd.DataFrame]:
        cfg = self.cfg.classifier
        fit_idx, val_idx = inner_split(train_idx, labels, cfg.val_fraction, seed)
        model = self.compiled().reset(seed)
        array, scale = self.inputs
        history = keras_head.fit(model, array, fit_idx, val_idx, labels, epochs=cfg.epochs,
                                 batch_size=cfg.batch_size, patience=cfg.patience, seed=seed, scale=scale,
                                 class_weight=balanced_class_weight(labels[fit_idx]) if cfg.class_weights else None,
                                 verbose=self.verbose)
        return model, history.rename_axis("epoch").reset_index()

    def predict(self, model: keras.Model, indices: np.ndarray) -> np.ndarray:
        array, scale = self.inputs
        return keras_head.predict(model, array, indices, scale)

    def fit_predict(self, fold: int, train_idx, test_idx, labels):
        model, history = self.train(train_idx, labels, seed=fold_seed(self.seed, fold))
        best_epoch = int(history["val_loss"].idxmin()) + 1
        return self.predict(model, test_idx), {"epochs_run": len(history), "best_epoch": best_epoch}, history

    def save_final(self, labels: np.ndarray, path: Path) -> None:
        """Train on every image (early stopping on an inner split) and save encoder+head as one model."""
        model, _ = self.train(np.arange(len(labels)), labels, seed=fold_seed(self.seed, None))
        if self.use_cache:  # stack the trained head back on the encoder: one file predicts from pixels
            classifier_cfg = self.cfg.classifier
            model = build_classifier(self.load_encoder(), classifier_cfg, self.num_classes, head=model)
        model.save(path)
