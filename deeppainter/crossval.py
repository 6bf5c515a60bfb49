"""The 10-fold protocol and the models it evaluates.

``run_protocol`` is the whole protocol in one function: scikit-learn ``StratifiedKFold`` folds,
one out-of-fold prediction per image, model selection (early stopping) on a validation split
carved from the training folds only, and one result file per finished fold so a re-run resumes.
"""
from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.utils.class_weight import compute_class_weight
from tqdm.auto import tqdm

from deeppainter import distribute
from deeppainter.config import Config
from deeppainter.models import build_classifier, build_head, make_optimizer
from deeppainter.runs import atomic_npy, atomic_write_csv, atomic_write_json, cached_npy, read_json
from deeppainter.training import ArrayBatches


def label_indices(labels: pd.Series, classes: list[str]) -> np.ndarray:
    """Class names → integer targets in the order of ``classes`` (the softmax / probability columns)."""
    return labels.map({name: index for index, name in enumerate(classes)}).to_numpy()


def make_folds(labels: np.ndarray, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(labels)), labels))


def inner_split(train_idx: np.ndarray, labels: np.ndarray, val_fraction: float,
                seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A stratified validation split of the training folds (never the test fold) for early stopping."""
    classes = len(np.unique(labels[train_idx]))
    # Stratification needs at least one validation image per class.
    val_count = max(int(round(val_fraction * len(train_idx))), classes)
    fit_idx, val_idx = train_test_split(train_idx, test_size=val_count, random_state=seed,
                                        stratify=labels[train_idx])
    return np.sort(fit_idx), np.sort(val_idx)


def fold_file(run_dir: Path, fold: int) -> Path:
    return Path(run_dir) / "folds" / f"fold{fold:02d}.csv"


def run_protocol(model, table: pd.DataFrame, classes: list[str], cfg: Config, seed: int, run_dir: Path,
                 only_folds: list[int] | None = None) -> pd.DataFrame:
    """Run (or resume) the folds and return every finished fold's out-of-fold predictions."""
    labels = label_indices(table["label"], classes)
    folds = make_folds(labels, cfg.cv.folds, seed)
    selected = only_folds if only_folds is not None else list(range(len(folds)))
    todo = [k for k in selected if not fold_file(run_dir, k).exists()]
    if len(todo) < len(selected):
        print(f"resuming: folds {sorted(set(selected) - set(todo))} already finished, skipping them")
    for fold in tqdm(todo, desc=f"{cfg.cv.folds}-fold CV", unit="fold"):
        train_idx, test_idx = folds[fold]
        start = time.perf_counter()
        probabilities, info, history = model.fit_predict(fold, train_idx, test_idx, labels)
        info = {"fold": fold, "n_train": len(train_idx), "n_test": len(test_idx),
                "seconds": time.perf_counter() - start, **info}
        frame = pd.DataFrame({"path": table["path"].to_numpy()[test_idx], "true": table["label"].to_numpy()[test_idx],
                              "predicted": np.array(classes)[probabilities.argmax(axis=1)], "fold": fold})
        for index, name in enumerate(classes):
            frame[f"prob_{name}"] = probabilities[:, index]
        if history is not None:
            atomic_write_csv(fold_file(run_dir, fold).with_suffix(".history.csv"), history.assign(fold=fold))
        atomic_write_json(fold_file(run_dir, fold).with_suffix(".json"), info)
        atomic_write_csv(fold_file(run_dir, fold), frame)  # written last: its presence marks the fold done
    return collect_folds([run_dir])


def collect_folds(run_dirs: list[Path]) -> pd.DataFrame:
    frames = [pd.read_csv(f) for run_dir in run_dirs for f in sorted((Path(run_dir) / "folds").glob("fold??.csv"))]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def fold_infos(run_dirs: list[Path]) -> list[dict]:
    return [read_json(f) for run_dir in run_dirs for f in sorted((Path(run_dir) / "folds").glob("fold??.json"))]


class EncoderHeadModel:
    """The DeepPainter classifier: a pre-trained encoder under a dense head, trained per fold.

    With a frozen encoder and no augmentation the encoder's outputs are computed once per image
    (``features.npy`` in the run's cache) and each fold trains only the head on them: the same
    function of the same inputs, ten times cheaper. Otherwise the encoder runs in every step.
    """

    def __init__(self, encoder_path: Path, cfg: Config, images: np.ndarray, num_classes: int, seed: int,
                 cache_dir: Path, use_cache: bool | None = None, verbose: int = 0):
        self.encoder_path, self.cfg, self.images = Path(encoder_path), cfg, images
        self.num_classes, self.seed, self.verbose = num_classes, seed, verbose
        cacheable = not cfg.classifier.fine_tune and not cfg.classifier.augment
        self.use_cache = cacheable if use_cache is None else (use_cache and cacheable)
        self.features = self._encode_all(Path(cache_dir)) if self.use_cache else None

    def load_encoder(self) -> keras.Model:
        return keras.models.load_model(self.encoder_path, compile=False)

    def _encode_all(self, cache_dir: Path) -> np.ndarray:
        feature_file = cache_dir / "features.npy"
        if feature_file.exists():
            return np.load(feature_file, mmap_mode="r")
        encoder = self.load_encoder()
        batches = ArrayBatches(self.images, np.arange(len(self.images)), batch_size=64, shuffle=False)
        shape = (len(self.images),) + tuple(encoder.output_shape[1:])
        with atomic_npy(feature_file, "float32", shape) as features:
            for index in tqdm(range(len(batches)), desc="encoding images once (frozen encoder)", unit="batch"):
                rows = batches.batch_indices(index)
                features[rows] = keras.ops.convert_to_numpy(encoder(batches.inputs(rows), training=False))
        return np.load(feature_file, mmap_mode="r")

    @property
    def inputs(self) -> tuple[np.ndarray, float | None]:
        """What the trainable model reads (cached features, or images) and the scale applied to it."""
        return (self.features, None) if self.use_cache else (self.images, 1 / 255.0)

    def build(self, seed: int) -> keras.Model:
        """The trainable model: the head alone on cached features, else encoder + head.

        The head is initialised from ``seed`` after the encoder is loaded, so the cached and the
        uncached path start from identical weights.
        """
        cfg = self.cfg.classifier
        encoder = None if self.use_cache else self.load_encoder()
        feature_shape = tuple(self.features.shape[1:]) if self.use_cache else tuple(encoder.output_shape[1:])
        keras.utils.set_random_seed(seed)
        head = build_head(feature_shape, cfg, self.num_classes)
        return head if self.use_cache else build_classifier(encoder, cfg, self.num_classes, head=head)

    @distribute.training_scope(config_of=lambda self, *args, **kwargs: self.cfg)
    def train(self, train_idx: np.ndarray, labels: np.ndarray, seed: int) -> tuple[keras.Model, pd.DataFrame]:
        cfg = self.cfg.classifier
        fit_idx, val_idx = inner_split(train_idx, labels, cfg.val_fraction, seed)
        model = self.build(seed)
        array, scale = self.inputs
        model.compile(optimizer=make_optimizer(cfg.optimizer, cfg.learning_rate),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                      jit_compile=distribute.jit_compile_option(cfg.jit_compile))
        class_weight = None
        if cfg.class_weights:
            weights = compute_class_weight("balanced", classes=np.arange(self.num_classes), y=labels[fit_idx])
            class_weight = dict(enumerate(weights))
        fit = ArrayBatches(array, fit_idx, labels, cfg.batch_size, shuffle=True, seed=seed, scale=scale)
        val = ArrayBatches(array, val_idx, labels, cfg.batch_size, shuffle=False, scale=scale)
        stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.patience,
                                                restore_best_weights=True)
        history = model.fit(fit, validation_data=val, epochs=cfg.epochs, callbacks=[stopper],
                            class_weight=class_weight, verbose=self.verbose)
        return model, pd.DataFrame(history.history).rename_axis("epoch").reset_index()

    def predict(self, model: keras.Model, indices: np.ndarray) -> np.ndarray:
        array, scale = self.inputs
        batches = ArrayBatches(array, indices, batch_size=64, shuffle=False, scale=scale)
        return np.asarray(model.predict(batches, verbose=0), dtype="float64")

    def fit_predict(self, fold: int, train_idx, test_idx, labels):
        model, history = self.train(train_idx, labels, seed=self.seed * 1000 + fold)
        best_epoch = int(history["val_loss"].idxmin()) + 1
        return self.predict(model, test_idx), {"epochs_run": len(history), "best_epoch": best_epoch}, history

    def save_final(self, labels: np.ndarray, path: Path) -> None:
        """Train on every image (early stopping on an inner split) and save encoder+head as one model."""
        model, _ = self.train(np.arange(len(labels)), labels, seed=self.seed * 1000 + 999)
        if self.use_cache:  # stack the trained head back on the encoder: one file predicts from pixels
            classifier_cfg = self.cfg.classifier
            model = build_classifier(self.load_encoder(), classifier_cfg, self.num_classes, head=model)
        model.save(path)


def chosen_hyperparameters(estimator) -> dict[str, str]:
    """What every grid search inside a fitted pipeline picked (recorded per fold, so choices can be audited)."""
    def describe(value) -> str:
        func = getattr(value, "func", None)  # a FunctionTransformer candidate: name its function
        return func.__name__ if func is not None else str(value)

    steps = getattr(estimator, "steps", [("model", estimator)])
    return {f"chose_{name}.{key}": describe(value)
            for name, step in steps if hasattr(step, "best_params_") for key, value in step.best_params_.items()}


class BaselineModel:
    """A scikit-learn baseline (deeppainter.baselines) evaluated in exactly the same folds."""

    def __init__(self, name: str, images: np.ndarray, seed: int, svm_power: str = "none",
                 feature_scales: tuple[int, ...] = (1,)):
        self.name, self.images, self.seed = name, images, seed
        self.svm_power, self.feature_scales = svm_power, feature_scales

    def _fit(self, indices: np.ndarray, labels: np.ndarray):
        from deeppainter.baselines import build_baseline

        estimator = build_baseline(self.name, seed=self.seed, power=self.svm_power, feature_scales=self.feature_scales)
        return estimator.fit(np.asarray(self.images[indices]), labels[indices])

    def fit_predict(self, fold: int, train_idx, test_idx, labels):
        estimator = self._fit(train_idx, labels)
        return estimator.predict_proba(np.asarray(self.images[test_idx])), chosen_hyperparameters(estimator), None

    def save_final(self, labels: np.ndarray, path: Path) -> None:
        import pickle

        from deeppainter.runs import atomic_write_bytes

        atomic_write_bytes(path, pickle.dumps(self._fit(np.arange(len(labels)), labels)))


def encoder_descriptors(encoder: keras.Model, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Style statistics of every encoder conv layer: per-channel mean and std plus the Gram matrix.

    The Gram matrix (channel co-activations, Gatys et al.) describes texture independent of where
    things are in the picture, which is what tells painters apart; flattened feature maps mostly
    describe layout.
    """
    conv_layers = [layer for layer in encoder.layers if layer.name.startswith("encoder_conv")]
    probe = keras.Model(encoder.inputs, [layer.output for layer in conv_layers])
    batches = ArrayBatches(images, np.arange(len(images)), batch_size=batch_size, shuffle=False)
    rows = []
    for index in tqdm(range(len(batches)), desc="encoder style descriptors", unit="batch"):
        outputs = probe(batches.inputs(batches.batch_indices(index)), training=False)
        parts = []
        for maps in outputs if isinstance(outputs, (list, tuple)) else [outputs]:
            maps = keras.ops.convert_to_numpy(maps)
            flat = maps.reshape(len(maps), -1, maps.shape[-1])
            gram = np.einsum("npc,npd->ncd", flat, flat) / flat.shape[1]
            upper = np.triu_indices(maps.shape[-1])
            parts += [flat.mean(axis=1), flat.std(axis=1), gram[:, upper[0], upper[1]]]
        rows.append(np.concatenate(parts, axis=1))
    return np.concatenate(rows).astype("float32")


class EncoderSVMModel:
    """Frozen-encoder style descriptors (optionally beside the handcrafted features) → scaled RBF SVM."""

    def __init__(self, encoder_path: Path, images: np.ndarray, seed: int, cache_dir: Path,
                 with_image_features: bool = False, svm_power: str = "none"):
        self.seed, self.svm_power = seed, svm_power

        def compute() -> np.ndarray:
            descriptors = encoder_descriptors(keras.models.load_model(encoder_path, compile=False), images)
            if not with_image_features:
                return descriptors
            from deeppainter.features import image_features

            return np.concatenate([descriptors, image_features(np.asarray(images))], axis=1)

        cache_file = Path(cache_dir) / f"descriptors{'_features' if with_image_features else ''}.npy"
        self.descriptors = cached_npy(cache_file, compute)

    def _fit(self, indices: np.ndarray, labels: np.ndarray):
        from sklearn.pipeline import Pipeline

        from deeppainter.baselines import scaled_svm_steps

        return Pipeline(scaled_svm_steps(self.seed, self.svm_power)).fit(self.descriptors[indices], labels[indices])

    def fit_predict(self, fold: int, train_idx, test_idx, labels):
        estimator = self._fit(train_idx, labels)
        return estimator.predict_proba(self.descriptors[test_idx]), chosen_hyperparameters(estimator), None
