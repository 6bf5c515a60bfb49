"""Autoencoder pre-training: streaming uint8 batches, denoising masks, Keras callbacks, run artefacts."""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from deeppainter import plots
from deeppainter.config import Config, get_preset
from deeppainter.data.batches import DenoisingBatches
from deeppainter.data.migrate import migrate_run
from deeppainter.data.splits import split_train_val
from deeppainter.models.autoencoder import build_autoencoder
from deeppainter.models.classifier import make_optimizer
from deeppainter.runs import atomic_write_json, read_json
from deeppainter.train import distribute


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = 0.0
        self.epochs = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds += time.perf_counter() - self._start
        self.epochs += 1


@distribute.training_scope(run_dir_of=lambda cfg, images, run_dir, *args, **kwargs: run_dir)
def pretrain_autoencoder(cfg: Config, images: np.ndarray, run_dir: Path, seed: int,
                         verbose: int = 1) -> dict:
    """Train the autoencoder on ``images`` (uint8), writing models, history, plots and metrics to ``run_dir``."""
    run_dir = Path(run_dir)
    train_cfg = cfg.pretrain
    train_idx, val_idx = split_train_val(len(images), train_cfg.val_fraction, seed)
    train = DenoisingBatches(images, train_idx, train_cfg.batch_size, train_cfg.denoise,
                             train_cfg.denoise_rate, seed=seed)
    val = DenoisingBatches(images, val_idx, train_cfg.batch_size, shuffle=False)

    autoencoder, encoder = build_autoencoder(cfg.model, cfg.data.image_size)
    loss = "mse" if train_cfg.loss == "mse" else keras.losses.KLDivergence()
    autoencoder.compile(optimizer=make_optimizer(train_cfg.optimizer, train_cfg.learning_rate),
                        loss=loss, metrics=["mse"], jit_compile=distribute.jit_compile_option(train_cfg.jit_compile))
    baseline_file = run_dir / "untrained_val.json"
    if baseline_file.exists():  # resumed run: the untrained reference was measured before the crash
        untrained_val_mse = float(read_json(baseline_file)["val_mse"])
    else:
        untrained_val_mse = float(autoencoder.evaluate(val, verbose=0, return_dict=True)["mse"])
        atomic_write_json(baseline_file, {"val_mse": untrained_val_mse})

    timer = EpochTimer()
    checkpoint = run_dir / "autoencoder_best.keras"
    callbacks = [
        # [P16] §1: learning rate × 0.98 after every epoch (lr_decay=1.0 leaves it constant).
        # First, so that its learning_rate entry is in the epoch logs before CSVLogger writes them.
        keras.callbacks.LearningRateScheduler(
            lambda epoch: train_cfg.learning_rate * train_cfg.lr_decay ** epoch),
        keras.callbacks.BackupAndRestore(str(run_dir / "backup")),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
        keras.callbacks.ModelCheckpoint(str(checkpoint), monitor="val_loss", save_best_only=True),
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=train_cfg.patience),
        timer,
    ]
    start = time.perf_counter()
    if train_cfg.epochs > 0:  # epochs=0 keeps the random initialisation: the "no pre-training" control
        autoencoder.fit(train, validation_data=val, epochs=train_cfg.epochs, callbacks=callbacks, verbose=verbose)
        history = pd.read_csv(run_dir / "history.csv")
    else:
        history = pd.DataFrame({"epoch": [], "loss": [], "mse": [], "val_loss": [], "val_mse": []})
    wall = time.perf_counter() - start
    if checkpoint.exists():  # best epoch by validation loss, not the last one
        autoencoder.load_weights(checkpoint)
    autoencoder.save(run_dir / "autoencoder.keras")
    encoder.save(run_dir / "encoder.keras")

    val_mse = float(history["val_mse"].min()) if len(history) else untrained_val_mse
    metrics = {
        "train_mse_final": float(history["mse"].iloc[-1]) if len(history) else None,
        "val_mse_best": val_mse,
        "val_mse_untrained": untrained_val_mse,
        "val_mse_relative_drop": 1.0 - val_mse / untrained_val_mse if untrained_val_mse else None,
        "epochs_run": int(len(history)),
        "images_train": int(len(train_idx)),
        "images_val": int(len(val_idx)),
        "images_per_second": (timer.epochs * len(train_idx) / timer.seconds) if timer.seconds else None,
        "wall_seconds": wall,
        "params": int(autoencoder.count_params()),
    }
    atomic_write_json(run_dir / "metrics.json", metrics)
    plots.loss_curves(history, run_dir / "loss.png", title="autoencoder reconstruction loss")
    shown = val_idx[np.linspace(0, len(val_idx) - 1, min(6, len(val_idx))).astype(int)]  # spread over folders
    originals = images[shown].astype("float32") / 255.0
    plots.reconstructions(originals, autoencoder.predict(originals, verbose=0), run_dir / "reconstructions.png")
    return metrics


def pretraining_identity(cfg: Config, preset: str) -> Config:
    """The part of ``cfg`` that shapes the encoder: model, pre-training and how images are standardised.

    Classifier and CV settings, and which labelled images are evaluated, come from the preset, so
    classifier-only studies share one pre-training run; any data field that changes the pixels does not.
    """
    identity = get_preset(preset)
    identity.model, identity.pretrain = cfg.model, cfg.pretrain
    identity.data = dataclasses.replace(cfg.data, classes=identity.data.classes,
                                        min_per_class=identity.data.min_per_class,
                                        max_per_class=identity.data.max_per_class)
    return identity


def pretraining_run(cfg: Config, preset: str, seed: int, out_root: Path, data: Path,
                    exclude: tuple[str, ...] = (), verbose: int = 1) -> Path:
    """Pre-train on every image under ``data`` (minus ``exclude`` folders) in a (resumable) run folder.

    A finished run with the same fingerprint is reused as it is, so cv10 re-runs never pre-train twice.
    """
    from deeppainter.data.datasets import list_unlabelled, load_images
    from deeppainter.runs import (
        atomic_write_csv,
        find_run,
        images_digest,
        mark_done,
        open_run,
        portable_path,
        relative_images,
    )

    cfg = pretraining_identity(cfg, preset)
    table = list_unlabelled(data, exclude)
    # Portable paths; the image list relative to the data stands for the data in the fingerprint.
    arguments = {"data": portable_path(data), "exclude": sorted(exclude),
                 "images": images_digest([portable_path(p, data) for p in table["path"]])}
    finished = find_run("pretrain_ae", preset, seed, cfg, arguments, out_root, done=True, upgrade=migrate_run)
    if finished is not None:
        print(f"re-using finished pre-training run {finished}")
        return finished
    run_dir, resumed = open_run("pretrain_ae", preset, seed, cfg, arguments, out_root, upgrade=migrate_run)
    print(f"{'resuming' if resumed else 'writing'} pre-training run {run_dir}")
    if cfg.pretrain.max_images and len(table) > cfg.pretrain.max_images:
        table = table.sample(cfg.pretrain.max_images, random_state=seed).sort_values("path")
    images, ok = load_images(list(table["path"]), cfg.data, skipped_csv=run_dir / "skipped.csv", root=data)
    atomic_write_csv(run_dir / "pretrain_images.csv", relative_images(table[ok], data))
    keras.utils.set_random_seed(seed)
    metrics = pretrain_autoencoder(cfg, images, run_dir, seed, verbose=verbose)
    print(f"val MSE {metrics['val_mse_untrained']:.5f} (untrained) → {metrics['val_mse_best']:.5f} "
          f"({100 * metrics['val_mse_relative_drop']:.1f}% drop) in {metrics['epochs_run']} epochs, "
          f"{metrics['wall_seconds']:.0f}s")
    mark_done(run_dir)
    return run_dir
