"""The CAE classifier's SpatialDropout2D dense head as a head for any featurizer (classical.heads kind ``dense``).

The layers are the ones :func:`deeppainter.models.classifier.build_head` puts on the frozen encoder
(SpatialDropout2D → pooling → [Dropout → Dense relu] per ``classifier.head`` → softmax), trained as the CAE
head is (:func:`deeppainter.train.keras_head.fit`: early stopping with the best weights on a stratified inner
split of the training rows) with the ``classifier.*`` settings. Wrapped as a scikit-learn classifier, it sits
in a featurizer + head pipeline like the others: fitted per fold, stacked, pickled as the final model.
"""
from __future__ import annotations

import keras
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from deeppainter.config import ClassifierConfig
from deeppainter.data.splits import inner_split
from deeppainter.models.classifier import build_head, make_optimizer
from deeppainter.train import distribute, keras_head
from deeppainter.train.keras_head import balanced_class_weight


def feature_maps(features) -> np.ndarray:
    """(N, D) feature vectors as (N, 1, 1, D) maps. ASSUMPTION: a vector is a 1×1 map of D channels, so the
    head's SpatialDropout2D drops whole features (classifier.spatial_dropout) and Flatten gives the vector back."""
    features = np.asarray(features, dtype=np.float32)
    return features.reshape(len(features), 1, 1, -1)


class DenseHeadClassifier(ClassifierMixin, BaseEstimator):
    """The dense head on feature vectors; ``seed`` fixes its initial weights, dropout masks, split and batch order."""

    def __init__(self, ccfg: ClassifierConfig, seed: int = 0):
        self.ccfg, self.seed = ccfg, seed

    def fit(self, X, y):
        cfg, maps = self.ccfg, feature_maps(X)
        self.classes_, labels = np.unique(y, return_inverse=True)
        self.n_features_in_ = maps.shape[-1]
        fit_idx, val_idx = inner_split(np.arange(len(labels)), labels, cfg.val_fraction, self.seed)
        keras.utils.set_random_seed(self.seed)  # as the CAE head's fresh build: same seed, same head
        model = build_head(maps.shape[1:], cfg, len(self.classes_))
        model.compile(optimizer=make_optimizer(cfg.optimizer, cfg.learning_rate),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                      jit_compile=distribute.jit_compile_option(cfg.jit_compile))
        history = keras_head.fit(model, maps, fit_idx, val_idx, labels, epochs=cfg.epochs, batch_size=cfg.batch_size,
                                 patience=cfg.patience, seed=self.seed, scale=None,
                                 class_weight=balanced_class_weight(labels[fit_idx]) if cfg.class_weights else None)
        self.model_, self.epochs_run_ = model, len(history)
        self.best_epoch_ = int(history["val_loss"].idxmin()) + 1
        return self

    def predict_proba(self, X) -> np.ndarray:
        maps = feature_maps(X)
        return keras_head.predict(self.model_, maps, np.arange(len(maps)), scale=None)

    def decision_function(self, X) -> np.ndarray:
        """The logits (n, K) the softmax turns into ``predict_proba`` (the energy score needs them)."""
        output = self.model_.get_layer("softmax")
        hidden = keras.Model(self.model_.inputs, output.input).predict(feature_maps(X), verbose=0)
        kernel, bias = output.get_weights()
        return np.asarray(hidden, dtype=np.float64) @ kernel + bias

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    # A Keras model does not pickle; the final model (a pickled pipeline) keeps the weights and rebuilds the layers.
    def __getstate__(self):
        state = dict(super().__getstate__())
        model = state.pop("model_", None)
        if model is not None:
            state["head_weights_"] = model.get_weights()
        return state

    def __setstate__(self, state):
        weights = state.pop("head_weights_", None)
        super().__setstate__(state)
        if weights is not None:
            self.model_ = build_head((1, 1, self.n_features_in_), self.ccfg, len(self.classes_))
            self.model_.set_weights(weights)


def dense_head(ccfg: ClassifierConfig, seed: int, blocks=None) -> Pipeline:
    # ASSUMPTION: features are standardised first, as for the other heads: handcrafted and pretrained features
    # come on very different scales (the CAE head reads its encoder's maps as they are). ASSUMPTION: ``seed`` is
    # the run's seed in every fold, as for every head's random_state (the CAE head draws fold_seed per fold).
    return Pipeline([("scale", StandardScaler()), ("dense", DenseHeadClassifier(ccfg, seed))])
