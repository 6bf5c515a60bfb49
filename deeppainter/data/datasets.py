"""Folders of class folders (or manifests) → tables of (path, label) → uint8 image arrays.

Arrays are cached on disk as ``.npy`` memory-maps keyed by the file list (with sizes and
modification times), the image size and the standardisation mode, so 5,000×256×256×3 images
are decoded once and never need float32 in RAM.
"""
from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from deeppainter.config import DataConfig
from deeppainter.errors import UserError
from deeppainter.progress import progress as progress_bar
from deeppainter.runs import atomic_npy, atomic_write_csv, sample_dir  # noqa: F401  (sample_dir: re-exported)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def list_labelled(root: Path | str, classes: tuple[str, ...] = (), min_per_class: int = 1,
                  max_per_class: int = 0, seed: int = 0) -> pd.DataFrame:
    """Table (path, label) from ``root/<class>/**/image`` or a manifest CSV with path,label columns."""
    root = Path(root)
    if root.is_file() and root.suffix.lower() == ".csv":
        table = pd.read_csv(root, dtype=str)
        if not {"path", "label"} <= set(table.columns):
            raise UserError(f"{root}: a manifest needs 'path' and 'label' columns")
        table["path"] = [str((root.parent / p) if not os.path.isabs(p) else p) for p in table["path"]]
        table = table[["path", "label"]]
    elif root.is_dir():
        rows = [(str(path), folder.name) for folder in sorted(p for p in root.iterdir() if p.is_dir())
                for path in _image_files(folder)]
        table = pd.DataFrame(rows, columns=["path", "label"])
    else:
        raise UserError(f"--data {root}: no such folder or manifest CSV")
    if table.empty:
        raise UserError(f"--data {root}: no images found; expected class folders like {root}/<painter>/*.jpg")
    available = sorted(table["label"].unique())
    if classes:
        unknown = [c for c in classes if c not in available]
        if unknown:
            raise UserError(f"--classes: {', '.join(unknown)} not found in {root}; available: {', '.join(available)}")
        table = table[table["label"].isin(classes)]
    if max_per_class:
        # shuffle, then the first max_per_class of each label (groupby.apply drops the key in pandas 3)
        table = table.sample(frac=1.0, random_state=seed).groupby("label").head(max_per_class)
    counts = table["label"].value_counts()
    too_small = counts[counts < min_per_class]
    if len(too_small):
        listed = ", ".join(f"{label} ({n})" for label, n in too_small.items())
        raise UserError(f"classes with fewer than {min_per_class} images: {listed}; "
                        f"drop them with --classes or add images")
    return table.sort_values(["label", "path"]).reset_index(drop=True)


def resolve_classes(root: Path | str, spec: str) -> tuple[str, ...]:
    """``a,b,c`` → those classes; ``largest:N`` → the N class folders with most images; "" → all."""
    spec = spec.strip()
    if not spec.startswith("largest:"):
        return tuple(c.strip() for c in spec.split(",") if c.strip())
    try:
        count = int(spec.split(":", 1)[1])
    except ValueError:
        raise UserError(f"--classes {spec!r}: expected largest:N with an integer N") from None
    sizes = list_labelled(root)["label"].value_counts()
    ranked = sorted(sizes.items(), key=lambda item: (-item[1], item[0]))  # ties broken by name: deterministic
    return tuple(label for label, _ in ranked[:count])


def list_unlabelled(root: Path | str, exclude: tuple[str, ...] = ()) -> pd.DataFrame:
    """Every image under ``root`` (labels ignored), leaving out top-level folders named in ``exclude``."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"--data {root}: no such folder")
    paths = [p for p in _image_files(root) if p.relative_to(root).parts[0] not in exclude]
    if not paths:
        raise UserError(f"--data {root}: no images found (after excluding {', '.join(exclude) or 'nothing'})")
    return pd.DataFrame({"path": [str(p) for p in paths]})


def default_cache_dir() -> Path:
    return Path(os.environ.get("DEEPPAINTER_CACHE", Path.home() / ".cache" / "deeppainter"))


def _cache_key(paths: list[str], cfg: DataConfig) -> str:
    digest = hashlib.sha256()
    settings = [cfg.image_size, cfg.mode, list(cfg.pad_color)] + (["trim_bars"] if cfg.trim_bars else [])
    digest.update(json.dumps(settings).encode())
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{os.path.abspath(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def load_images(paths: list[str], cfg: DataConfig, workers: int = 2, progress: bool = True,
                skipped_csv: Path | None = None, root: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images, ok)``: uint8 (N_ok, S, S, 3) standardised images and a bool mask over ``paths``.

    Unreadable files are left out and listed (with the reason) in ``skipped_csv`` when given;
    nothing is dropped silently; there, paths under ``root`` (the data root) are written relative to it.
    """
    from deeppainter.data.standardize import UnreadableImage, load_standardized

    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = _cache_key(paths, cfg)
    array_file, status_file = cache_dir / f"{key}.npy", cache_dir / f"{key}.status.json"
    if array_file.exists() and status_file.exists():
        status = json.loads(status_file.read_text())
    else:
        size = cfg.image_size
        with atomic_npy(array_file, np.uint8, (len(paths), size, size, 3)) as images:

            def decode(index: int) -> str:
                try:
                    images[index] = load_standardized(paths[index], size, cfg.mode, tuple(cfg.pad_color),
                                                       cfg.trim_bars)
                    return ""
                except UnreadableImage as exc:
                    return str(exc)

            with ThreadPoolExecutor(max(1, workers)) as pool:
                reasons = list(progress_bar(pool.map(decode, range(len(paths))), total=len(paths), enabled=progress,
                                            desc=f"decoding {len(paths)} images at {size}px", unit="img"))
        status = {"reasons": reasons}
        status_file.write_text(json.dumps(status))
    reasons = status["reasons"]
    ok = np.array([not r for r in reasons], dtype=bool)
    if skipped_csv is not None and not ok.all():
        from deeppainter.runs import portable_path

        skipped = pd.DataFrame({"path": [portable_path(p, root) if root is not None else p
                                         for p, good in zip(paths, ok) if not good],
                                "reason": [r for r in reasons if r]})
        atomic_write_csv(skipped_csv, skipped)
    if not ok.any():
        raise UserError(f"none of the {len(paths)} images could be read (first: {paths[0]}: {reasons[0]})")
    images = np.load(array_file, mmap_mode="r")
    return (images if ok.all() else np.asarray(images[ok])), ok
