"""In-fold pre-training (``cv10 --pretrain-in-fold``): a new encoder per fold, from that fold's training images only.

For every outer fold the autoencoder is pre-trained (labels ignored; the run's model and pre-training
settings, as ``pretrain_ae`` would use them) on the fold's training images, and then the
encoder-based model (``cae``, ``cae-svm``, ``cae-features-svm``, ``stack``) trains and predicts on
that fold with it. No test image is seen in pre-training: what the papers' protocol gets from a pool of
other paintings, got from the labelled images themselves, honestly.

Run-folder layout, per fold ``k``: ``folds/foldKK_pretrain/`` (the pre-training run: ``encoder.keras``,
``pretrain_images.csv`` — the images it saw —, ``history.csv``, ``metrics.json``, plots, ``DONE`` when
finished). A re-run reuses a finished fold pre-training, and Keras ``BackupAndRestore`` continues an
interrupted one. Per-image arrays the model caches (encoder features, descriptors) live in
``cache/foldKK-<encoder sha256>/``, so no fold reads another fold's features.
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from deeppainter.data.splits import fold_seed
from deeppainter.models import registry
from deeppainter.models.registry import FoldContext
from deeppainter.runs import atomic_write_csv, images_digest, mark_done, read_json

IN_FOLD = "in-fold"  # the run record's ``arguments.pretraining`` value


def fold_pretrain_dir(run_dir: Path, fold: int) -> Path:
    return Path(run_dir) / "folds" / f"fold{fold:02d}_pretrain"


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


class InFoldPretrainModel:
    """Wraps the encoder-based model ``ctx.name``: per fold, pre-train on the training images, then fit and predict."""

    def __init__(self, ctx: FoldContext, run_dir: Path, paths: list[str]):
        if len(paths) != len(ctx.images):
            raise ValueError(f"{len(paths)} image paths for {len(ctx.images)} images")
        self.ctx, self.run_dir, self.paths = ctx, Path(run_dir), [str(p) for p in paths]

    def pretrain(self, pretrain_dir: Path, indices: np.ndarray, seed: int) -> tuple[Path, dict]:
        """Pre-train on ``images[indices]`` only (or reuse the finished run in ``pretrain_dir``); the
        encoder file and what the fold record says about it."""
        from deeppainter.train.pretrain import capped_pool

        cfg = self.ctx.cfg
        indices = np.sort(np.asarray(indices))
        indices = indices[capped_pool(len(indices), cfg.pretrain.max_images, seed)]
        used = [self.paths[i] for i in indices]
        digest = images_digest(used)
        images_file = pretrain_dir / "pretrain_images.csv"
        if (pretrain_dir / "DONE").exists():
            if images_digest(pd.read_csv(images_file)["path"].astype(str)) != digest:
                raise RuntimeError(f"{pretrain_dir} was pre-trained on other images than this fold's training "
                                   f"images; remove that folder and re-run")
            metrics = read_json(pretrain_dir / "metrics.json")
            print(f"{pretrain_dir.name}: re-using the finished in-fold pre-training")
        else:
            import keras

            from deeppainter.train.pretrain import pretrain_autoencoder

            pretrain_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_csv(images_file, pd.DataFrame({"path": used}))
            keras.utils.set_random_seed(seed)
            metrics = pretrain_autoencoder(cfg, np.asarray(self.ctx.images[indices]), pretrain_dir, seed,
                                           verbose=self.ctx.verbose)
            mark_done(pretrain_dir)
            print(f"{pretrain_dir.name}: pre-trained on {len(used)} training images (labels ignored), val MSE "
                  f"{metrics['val_mse_untrained']:.5f} → {metrics['val_mse_best']:.5f} in {metrics['epochs_run']} "
                  f"epochs, {metrics['wall_seconds']:.0f}s")
        return pretrain_dir / "encoder.keras", {
            "pretraining": IN_FOLD, "pretrain_images": len(used), "pretrain_images_digest": digest,
            "pretrain_seed": seed, "pretrain_val_mse": metrics["val_mse_best"],
            "pretrain_val_mse_untrained": metrics["val_mse_untrained"], "pretrain_epochs": metrics["epochs_run"],
            "pretrain_seconds": metrics["wall_seconds"]}

    def inner_model(self, encoder: Path, tag: str):
        """The registered model on ``encoder``, caching its per-image arrays under this encoder's own key."""
        cache_dir = Path(self.ctx.cache_dir) / f"{tag}-{file_digest(encoder)}"
        return registry.create_model(dataclasses.replace(self.ctx, encoder_path=encoder, cache_dir=cache_dir))

    def fit_predict(self, fold: int, train_idx, test_idx, labels):
        encoder, record = self.pretrain(fold_pretrain_dir(self.run_dir, fold), train_idx,
                                        fold_seed(self.ctx.seed, fold, "pretrain"))
        seen = set(pd.read_csv(fold_pretrain_dir(self.run_dir, fold) / "pretrain_images.csv")["path"].astype(str))
        if seen & {self.paths[i] for i in test_idx}:  # cannot happen; checked because it is the point of all this
            raise RuntimeError(f"fold {fold}: the in-fold encoder saw test images")
        probabilities, info, history = self.inner_model(encoder, f"fold{fold:02d}").fit_predict(
            fold, train_idx, test_idx, labels)
        return probabilities, {**record, **info}, history

    def save_final(self, labels: np.ndarray, path: Path) -> None:
        """The final model: pre-trained on every image (no fold is evaluated with it), then the model's own save."""
        encoder, _ = self.pretrain(self.run_dir / "final_pretrain", np.arange(len(labels)),
                                   fold_seed(self.ctx.seed, None, "pretrain"))
        self.inner_model(encoder, "final").save_final(labels, path)
