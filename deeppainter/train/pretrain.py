"""Autoencoder pre-training: streaming uint8 batches, denoising masks, Keras callbacks, run artefacts."""
from __future__ import annotations

import dataclasses
import io
import json
import random
import shutil
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from deeppainter import plots
from deeppainter.config import Config, get_preset
from deeppainter.data.batches import DenoisingBatches
from deeppainter.data.splits import split_train_val
from deeppainter.models.autoencoder import build_autoencoder
from deeppainter.models.classifier import make_optimizer
from deeppainter.run_migration import migrate_run
from deeppainter.runs import atomic_write_bytes, atomic_write_json, read_json
from deeppainter.train import distribute

# Resume state of an unfinished run (removed when its artefacts are written): the batch-order state and
# the checkpoint of the last finished epoch.
RESUME_DIR = "resume"


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


class EpochCheckpoint(keras.callbacks.Callback):
    """After every epoch, one atomically written ``.npz`` with all a SIGKILLed run needs to go on as if
    never stopped: model weights, optimizer variables (Adam's moments, its step count), the number of
    finished epochs, whether training stopped there, and the state that callbacks carry from epoch to
    epoch (early stopping's best value and wait count, the best-only checkpoint's best value).

    Must be the last callback: an epoch's CSVLogger row and best-model file are written before its
    checkpoint, so after a kill they are at most one epoch ahead of it (``keep_history_rows`` drops that
    row; the best-model file is written again, identically, when the epoch is redone).
    """

    CARRIED = ((keras.callbacks.EarlyStopping, ("wait", "best", "best_epoch")),
               (keras.callbacks.ModelCheckpoint, ("best",)))

    def __init__(self, path: Path, callbacks):
        super().__init__()
        self.path = Path(path)
        self.stateful = [(c, names) for c in callbacks for kind, names in self.CARRIED if isinstance(c, kind)]
        self.restored = None

    def restore(self, model: keras.Model) -> tuple[int, bool]:
        """Load the last checkpoint into ``model``: ``(finished epochs, training had stopped)``; (0, False) if none."""
        if not self.path.exists():
            return 0, False
        with np.load(self.path) as stored:
            meta = json.loads(str(stored["meta"]))
            weights = [stored[f"weight{i}"] for i in range(meta["weights"])]
            optimizer = [stored[f"optimizer{i}"] for i in range(meta["optimizer"])]
        model.set_weights(weights)
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        if len(model.optimizer.variables) != len(optimizer):
            raise RuntimeError(f"{self.path}: the optimizer state does not fit this model; remove the run folder")
        for variable, value in zip(model.optimizer.variables, optimizer):
            variable.assign(value)
        self.restored = meta["callbacks"]
        return int(meta["epochs"]), bool(meta["stopped"])

    def on_train_begin(self, logs=None):  # after the callbacks' own on_train_begin, which resets them
        for (callback, _), state in zip(self.stateful, self.restored or []):
            for name, value in state.items():
                setattr(callback, name, value)

    def on_epoch_end(self, epoch, logs=None):
        weights = self.model.get_weights()
        optimizer = [keras.ops.convert_to_numpy(v) for v in self.model.optimizer.variables]
        meta = {"epochs": epoch + 1, "stopped": bool(self.model.stop_training),
                "weights": len(weights), "optimizer": len(optimizer),
                "callbacks": [{name: _plain(getattr(callback, name, None)) for name in names}
                              for callback, names in self.stateful]}
        buffer = io.BytesIO()
        np.savez(buffer, meta=np.array(json.dumps(meta)), **{f"weight{i}": w for i, w in enumerate(weights)},
                 **{f"optimizer{i}": v for i, v in enumerate(optimizer)})
        atomic_write_bytes(self.path, buffer.getvalue())


def _plain(value):
    """A callback attribute as JSON: numbers (inf included) as Python floats/ints, None as None."""
    if value is None or isinstance(value, (bool, int)):
        return value
    return float(keras.ops.convert_to_numpy(value))


def keep_history_rows(path: Path, rows: int) -> None:
    """Cut ``history.csv`` to its header and first ``rows`` epochs (none: no file), atomically."""
    path = Path(path)
    if not path.exists():
        return
    if rows == 0:
        path.unlink()
        return
    lines = path.read_bytes().splitlines(keepends=True)  # bytes: CSVLogger's \r\n line ends stay as they are
    if len(lines) < rows + 1:
        raise RuntimeError(f"{path} has {len(lines) - 1} epochs, its checkpoint {rows}; remove the run folder")
    if len(lines) > rows + 1:
        atomic_write_bytes(path, b"".join(lines[:rows + 1]))


def batch_order_state(resume_dir: Path):
    """The global ``random`` state from which a run draws its batch order, saved on first use."""
    path = Path(resume_dir) / "batch_order.json"
    if path.exists():
        return read_json(path)
    state = random.getstate()
    atomic_write_json(path, state)
    return read_json(path)


@distribute.training_scope(run_dir_of=lambda cfg, images, run_dir, *args, **kwargs: run_dir)
def pretrain_autoencoder(cfg: Config, images: np.ndarray, run_dir: Path, seed: int,
                         verbose: int = 1) -> dict:
    """Train the autoencoder on ``images`` (uint8), writing models, history, plots and metrics to ``run_dir``.

    Resumable: killed at any point (SIGKILL included) and called again on the same ``run_dir``, it
    continues after the last finished epoch and ends with the numbers of an uninterrupted run.
    """
    run_dir = Path(run_dir)
    train_cfg = cfg.pretrain
    resume_dir = run_dir / RESUME_DIR
    if (run_dir / "metrics.json").exists() and not resume_dir.exists():  # finished: artefacts all written
        return read_json(run_dir / "metrics.json")
    train_idx, val_idx = split_train_val(len(images), train_cfg.val_fraction, seed)
    train = DenoisingBatches(images, train_idx, train_cfg.batch_size, train_cfg.denoise,
                             train_cfg.denoise_rate, seed=seed)
    val = DenoisingBatches(images, val_idx, train_cfg.batch_size, shuffle=False)

    autoencoder, encoder = build_autoencoder(cfg.autoencoder, cfg.data.image_size)
    loss = "mse" if train_cfg.loss == "mse" else keras.losses.KLDivergence()
    autoencoder.compile(optimizer=make_optimizer(train_cfg.optimizer, train_cfg.learning_rate),
                        loss=loss, metrics=["mse"], jit_compile=distribute.jit_compile_option(train_cfg.jit_compile))
    baseline_file = run_dir / "untrained_val.json"
    if baseline_file.exists():  # resumed run: the untrained reference was measured before the crash
        untrained_val_mse = float(read_json(baseline_file)["val_mse"])
    else:
        untrained_val_mse = float(autoencoder.evaluate(val, verbose=0, return_dict=True)["mse"])
        atomic_write_json(baseline_file, {"val_mse": untrained_val_mse})

    # fit(shuffle=True) would draw each epoch's batch order from the global `random` module, whose state
    # a restarted process cannot know; the same draws are made from this state, kept in the run folder.
    train.set_batch_order_state(batch_order_state(resume_dir))

    timer = EpochTimer()
    checkpoint = run_dir / "autoencoder_best.keras"
    callbacks = [
        # [P16] §1: learning rate × 0.98 after every epoch (lr_decay=1.0 leaves it constant).
        # First, so that its learning_rate entry is in the epoch logs before CSVLogger writes them.
        keras.callbacks.LearningRateScheduler(
            lambda epoch: train_cfg.learning_rate * train_cfg.lr_decay ** epoch),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
        keras.callbacks.ModelCheckpoint(str(checkpoint), monitor="val_loss", save_best_only=True),
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=train_cfg.patience),
        timer,
    ]
    last_epoch = EpochCheckpoint(resume_dir / "last_epoch.npz", callbacks)
    callbacks.append(last_epoch)  # last: see EpochCheckpoint
    finished_epochs, stopped = last_epoch.restore(autoencoder)
    keep_history_rows(run_dir / "history.csv", finished_epochs)
    if finished_epochs:
        print(f"resuming pre-training after epoch {finished_epochs}/{train_cfg.epochs}"
              f"{' (training had stopped)' if stopped else ''}")
    start = time.perf_counter()
    if train_cfg.epochs > 0:  # epochs=0 keeps the random initialisation: the "no pre-training" control
        if finished_epochs < train_cfg.epochs and not stopped:
            train.set_epoch(finished_epochs)  # fit() advances it once more before the first epoch
            autoencoder.fit(train, validation_data=val, epochs=train_cfg.epochs, initial_epoch=finished_epochs,
                            shuffle=False, callbacks=callbacks, verbose=verbose)
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
        "epochs_run": len(history),
        "images_train": len(train_idx),
        "images_val": len(val_idx),
        "images_per_second": (timer.epochs * len(train_idx) / timer.seconds) if timer.seconds else None,
        "wall_seconds": wall,
        "params": int(autoencoder.count_params()),
    }
    atomic_write_json(run_dir / "metrics.json", metrics)
    plots.loss_curves(history, run_dir / "loss.png", title="autoencoder reconstruction loss")
    shown = val_idx[np.linspace(0, len(val_idx) - 1, min(6, len(val_idx))).astype(int)]  # spread over folders
    originals = images[shown].astype("float32") / 255.0
    plots.reconstructions(originals, autoencoder.predict(originals, verbose=0), run_dir / "reconstructions.png")
    shutil.rmtree(resume_dir, ignore_errors=True)  # last: its absence says every artefact is written
    return metrics


def pretraining_identity(cfg: Config, preset: str) -> Config:
    """The part of ``cfg`` that shapes the encoder: autoencoder, pre-training and how images are standardised.

    Classifier and CV settings, and which labelled images are evaluated, come from the preset, so
    classifier-only studies share one pre-training run; any data field that changes the pixels does not.
    """
    identity = get_preset(preset)
    identity.autoencoder, identity.pretrain = cfg.autoencoder, cfg.pretrain
    identity.data = dataclasses.replace(cfg.data, classes=identity.data.classes,
                                        min_per_class=identity.data.min_per_class,
                                        max_per_class=identity.data.max_per_class)
    return identity


def capped_pool(count: int, max_images: int, seed: int) -> np.ndarray:
    """Positions of the unlabelled pool kept under ``pretrain.max_images`` (0 = all), in order.

    The draw is pandas' ``DataFrame.sample(max_images, random_state=seed)``, which the committed
    pool-size runs used; pretrain_ae and --pretrain-in-fold share it.
    """
    if not max_images or count <= max_images:
        return np.arange(count)
    return np.sort(np.random.RandomState(seed).choice(count, max_images, replace=False))


def pretraining_run(cfg: Config, preset: str, seed: int, out_root: Path, data: Path,
                    exclude: tuple[str, ...] = (), verbose: int = 1, fresh: bool = False) -> Path:
    """Pre-train on every image under ``data`` (minus ``exclude`` folders) in a (resumable) run folder.

    A finished run with the same fingerprint is reused as it is, so cv10 re-runs never pre-train twice;
    ``fresh`` starts a new run folder instead.
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
    finished = None if fresh else find_run("pretrain_ae", preset, seed, cfg, arguments, out_root, done=True,
                                           upgrade=migrate_run)
    if finished is not None:
        print(f"re-using finished pre-training run {finished} (same settings and images; --fresh pre-trains again)")
        return finished
    run_dir, resumed = open_run("pretrain_ae", preset, seed, cfg, arguments, out_root, resume=not fresh,
                                upgrade=migrate_run)
    print(f"resuming unfinished pre-training run {run_dir} (--fresh starts a new one)" if resumed
          else f"writing pre-training run {run_dir}")
    table = table.iloc[capped_pool(len(table), cfg.pretrain.max_images, seed)].sort_values("path")
    images, ok = load_images(list(table["path"]), cfg.data, skipped_csv=run_dir / "skipped.csv", root=data)
    atomic_write_csv(run_dir / "pretrain_images.csv", relative_images(table[ok], data))
    keras.utils.set_random_seed(seed)
    metrics = pretrain_autoencoder(cfg, images, run_dir, seed, verbose=verbose)
    print(f"val MSE {metrics['val_mse_untrained']:.5f} (untrained) → {metrics['val_mse_best']:.5f} "
          f"({100 * metrics['val_mse_relative_drop']:.1f}% drop) in {metrics['epochs_run']} epochs, "
          f"{metrics['wall_seconds']:.0f}s")
    mark_done(run_dir)
    return run_dir
