"""How images are split: the stratified outer folds, the inner validation split of the training folds, and the autoencoder's train/validation split."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import (
    StratifiedGroupKFold,
    StratifiedKFold,
    train_test_split,
)


def label_indices(labels: pd.Series, classes: list[str]) -> np.ndarray:
    """Class names → integer targets in the order of ``classes`` (the softmax / probability columns)."""
    return labels.map({name: index for index, name in enumerate(classes)}).to_numpy()


def make_folds(labels: np.ndarray, n_folds: int, seed: int,
               groups: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified folds; with ``groups`` (e.g. near-duplicates) each group stays inside one fold.

    When every group is a single image the folds are plain StratifiedKFold, so runs on data without
    duplicates keep exactly the folds they had before grouping existed.
    """
    if groups is not None and len(np.unique(groups)) < len(labels):
        splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(len(labels)), labels, groups))
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


def split_train_val(count: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(count)
    val_count = max(1, int(round(count * val_fraction))) if count > 1 else 0
    return np.sort(order[val_count:]), np.sort(order[:val_count])


# (offset of fold 0, offset of the final model) within a run seed's block of 1000 seeds
_SEED_OFFSETS = {"train": (0, 999), "pretrain": (500, 900)}


def fold_seed(seed: int, fold: int | None, purpose: str = "train") -> int:
    """The seed of one fold's training (``fold`` None: the final model's, trained on every image), derived
    from the run seed as ``seed * 1000 + offset``. ASSUMPTION: in-fold pre-training ("pretrain") draws from
    500 on, apart from the models' own training ("train", from 0), so that the two never coincide."""
    start, final = _SEED_OFFSETS[purpose]
    return seed * 1000 + (final if fold is None else start + fold)

