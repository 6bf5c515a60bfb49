"""Near-duplicate detection, so that versions of one work never sit on both sides of a fold split.

Two images are one work when their files are byte-identical or when their similarity is above
``threshold``; groups are the connected components (union-find). The similarity is the mean of two
correlations between small views of the painting with the dark bars of an earlier zero-padding cut
off (bars would make any two paintings of one shape look alike): the grey ``size``×``size`` thumbnails
(rank-transformed, so a scan's tone curve does not matter) and their gradient-magnitude maps (where
the edges are). experiments/duplicates/ holds the labelled pairs the default threshold was chosen on.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from deeppainter.data.standardize import content_box


RULE = "trimmed grey + gradient thumbnails"  # recorded with grouped runs; before: padded grey thumbnails


def _ranks(values: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(values.ravel(), kind="stable"), kind="stable").astype(np.float64)


def thumbnails(path: Path, size: int = 16) -> np.ndarray:
    """``(2, size²)``: the rank-transformed grey thumbnail of the painting inside its bars, and the
    rank-transformed gradient magnitude (from a grey view twice the size, averaged over 2×2 blocks)."""
    with Image.open(path) as image:
        image.draft("RGB", (8 * size, 8 * size))  # JPEG: decode at a reduced scale, much faster
        pixels = np.asarray(image.convert("RGB"))
    top, bottom, left, right = content_box(pixels[None])[0]
    grey = Image.fromarray(pixels[top:bottom, left:right]).convert("L")
    small = np.asarray(grey.resize((size, size), Image.BILINEAR), dtype=np.float64)
    fine = np.asarray(grey.resize((2 * size, 2 * size), Image.BILINEAR), dtype=np.float64)
    gradient = np.hypot(*np.gradient(fine)).reshape(size, 2, size, 2).mean(axis=(1, 3))
    return np.stack([_ranks(small), _ranks(gradient)])


def _thumbnails_or_zeros(path: Path, size: int) -> np.ndarray:
    """Zero views (correlate with nothing) for a file that cannot be decoded."""
    try:
        return thumbnails(path, size)
    except (OSError, ValueError, Image.DecompressionBombError):
        return np.zeros((2, size * size))


def similarity(views: np.ndarray) -> np.ndarray:
    """``(N, N)`` mean over the views (``(N, V, D)``) of the Pearson correlation between images."""
    centred = views - views.mean(axis=2, keepdims=True)
    norms = np.linalg.norm(centred, axis=2, keepdims=True)
    unit = centred / np.where(norms > 0, norms, 1.0)
    return np.einsum("avd,bvd->ab", unit, unit) / views.shape[1]


class _UnionFind:
    def __init__(self, count: int):
        self.parent = list(range(count))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        self.parent[max(ra, rb)] = min(ra, rb)
        return True


def find_duplicates(paths: list, threshold: float, size: int = 16) -> tuple[np.ndarray, pd.DataFrame]:
    """``(group per image, pairs)``: group ids 0.. (singletons get their own); pairs lists every merging pair."""
    paths = [Path(p) for p in paths]
    uf = _UnionFind(len(paths))
    pairs = []
    first_with_hash: dict[str, int] = {}
    for i, path in enumerate(paths):
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:  # unreadable: a singleton here; the loader lists it in skipped.csv
            continue
        if digest in first_with_hash:
            j = first_with_hash[digest]
            uf.union(j, i)
            pairs.append((j, i, "identical bytes", 1.0))
        else:
            first_with_hash[digest] = i
    if len(paths) > 1:
        scores = similarity(np.stack([_thumbnails_or_zeros(p, size) for p in paths]))
        rows, cols = np.nonzero(np.triu(scores > threshold, k=1))
        identical = {(a, b) for a, b, _, _ in pairs}
        for a, b in zip(rows.tolist(), cols.tolist()):
            if (a, b) not in identical:
                uf.union(a, b)
                pairs.append((a, b, f"thumbnail similarity {scores[a, b]:.4f}", float(scores[a, b])))
    roots = [uf.find(i) for i in range(len(paths))]
    renumber = {root: k for k, root in enumerate(dict.fromkeys(roots))}
    groups = np.array([renumber[r] for r in roots], dtype=int)
    pair_table = pd.DataFrame([{"path_a": str(paths[a]), "path_b": str(paths[b]), "reason": reason,
                                "similarity": value} for a, b, reason, value in pairs],
                              columns=["path_a", "path_b", "reason", "similarity"])
    return groups, pair_table


def choose_threshold(scores: np.ndarray, same: np.ndarray, floor: float) -> tuple[float, dict]:
    """The threshold (pairs strictly above it are one work) with the best F1 on labelled pairs
    (``scores``, ``same``: True for versions of one work), never at or below ``floor`` (e.g. the highest
    similarity between two different painters' images, which must never group). Returns it with its
    counts: the midpoint between the lowest labelled score kept and the highest one left out."""
    scores, same = np.asarray(scores, dtype=np.float64), np.asarray(same, dtype=bool)
    best = None
    for cut in np.unique(np.r_[floor, scores[scores > floor]]):
        kept = scores > cut
        tp, fp, fn = int((kept & same).sum()), int((kept & ~same).sum()), int((~kept & same).sum())
        f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        if best is None or f1 > best[0]:
            best = (f1, cut, tp, fp, fn)
    f1, cut, tp, fp, fn = best
    above = scores[scores > cut]
    threshold = (cut + above.min()) / 2 if len(above) else cut
    return float(threshold), {"f1": f1, "true_pairs_found": tp, "false_pairs": fp, "true_pairs_missed": fn}


def duplicates_table(paths: list, groups: np.ndarray, pairs: pd.DataFrame) -> pd.DataFrame:
    """One row (path, group, reason) per image in a group of two or more; reason: why it joined."""
    sizes = np.bincount(groups)
    reasons: dict[str, str] = {}
    for row in pairs.itertuples():
        reasons.setdefault(row.path_b, f"{row.reason} with {row.path_a}")
        reasons.setdefault(row.path_a, f"{row.reason} with {row.path_b}")
    rows = [{"path": str(p), "group": int(g), "reason": reasons.get(str(Path(p)), "")}
            for p, g in zip(paths, groups) if sizes[g] > 1]
    return pd.DataFrame(rows, columns=["path", "group", "reason"]).sort_values(["group", "path"])
