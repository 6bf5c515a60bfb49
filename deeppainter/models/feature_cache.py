"""The feature cache and the one batched extraction loop (with progress) every featurizer runs through.

Features of the pretrained networks are kept in one user-wide cache shared by every run and every
model, ``<cache>/features/<name>-<S>px-<key>.npy`` (``<cache>`` = data.cache_dir or
``deeppainter.data.datasets.default_cache_dir()``; ``S`` the side of the squares). The key hashes
the uint8 pixels (so the image set and its standardisation), the weights (package version and the
file's sha256) and anything else that changes the output (``extra``: a conversion version, an input
size other than the network's own). Features that depend on one run (the CAE encoder's descriptors,
the handcrafted features at the run's scales) live in the run's cache folder under a fixed name;
that folder is per run, or per fold encoder with --pretrain-in-fold.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Callable
from pathlib import Path

import numpy as np

from deeppainter.models.featurizers import Featurizer
from deeppainter.progress import progress


def pixels_digest(images: np.ndarray) -> str:
    """sha256 of the uint8 pixels and their shape (the image set and its preprocessing)."""
    images = np.ascontiguousarray(images)
    digest = hashlib.sha256(repr((images.shape, str(images.dtype))).encode())
    for start in range(0, len(images), 256):
        digest.update(images[start:start + 256].tobytes())
    return digest.hexdigest()


def weights_identity(featurizer: Featurizer) -> tuple[str, str]:
    """``(package version, sha256)`` of a pretrained featurizer's weights file, checked against its record."""
    from deeppainter.errors import UserError
    from deeppainter.models.pretrained import cache

    path = cache.package_file(featurizer.module, featurizer.file)
    digest = cache.sha256_file(path)
    if featurizer.sha256 and digest != featurizer.sha256:
        raise UserError(f"{path}: sha256 {digest[:16]}… is not {featurizer.name}'s {featurizer.sha256[:16]}…; "
                        f"reinstall {featurizer.source_package}: {cache.INSTALL_HINT}")
    return importlib.metadata.version(featurizer.source_package), digest


def shared_cache_file(cache_root: Path, featurizer: Featurizer, images: np.ndarray, name: str = "",
                      extra: str = "") -> Path:
    """``<cache_root>/features/<name>-<S>px-<key>.npy`` for a pretrained featurizer (``name`` defaults to its own)."""
    version, digest = weights_identity(featurizer)
    text = f"{pixels_digest(images)}\0{version}\0{digest}" + (f"\0{extra}" if extra else "")
    key = hashlib.sha256(text.encode()).hexdigest()[:20]
    return Path(cache_root) / "features" / f"{name or featurizer.name}-{images.shape[1]}px-{key}.npy"


def extract_in_batches(function: Callable[[np.ndarray], np.ndarray], images: np.ndarray, batch_size: int,
                       desc: str, out: np.ndarray | None = None) -> np.ndarray:
    """``function`` over ``images`` ``batch_size`` at a time, rows written into ``out`` (made from the first
    batch's shape and dtype when not given, e.g. a memory-map to fill), with a progress bar."""
    with progress(total=len(images), desc=desc, unit="img") as bar:
        for start in range(0, len(images), batch_size):
            rows = np.asarray(function(images[start:start + batch_size]))
            if out is None:
                out = np.empty((len(images), *rows.shape[1:]), rows.dtype)
            out[start:start + len(rows)] = rows
            bar.update(len(rows))
    if out is None:  # no images
        out = np.asarray(function(images[:0]))
    return out
