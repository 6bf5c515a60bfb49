"""Near-duplicate detection, so that versions of one work never sit on both sides of a fold split.

Two images are one work when their files are byte-identical or when their small grey thumbnails
(``size``×``size``) correlate above ``threshold``; groups are the connected components (union-find).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image


def thumbnail(path: Path, size: int = 16) -> np.ndarray:
    with Image.open(path) as image:
        image.draft("L", (4 * size, 4 * size))  # JPEG: decode at a reduced scale, much faster
        grey = image.convert("L").resize((size, size), Image.BILINEAR)
    return np.asarray(grey, dtype=np.float64).ravel()


def _thumbnail_or_zeros(path: Path, size: int) -> np.ndarray:
    """A zero thumbnail (correlates with nothing) for a file that cannot be decoded."""
    try:
        return thumbnail(path, size)
    except (OSError, ValueError, Image.DecompressionBombError):
        return np.zeros(size * size)


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


def find_duplicates(paths: list, threshold: float = 0.99, size: int = 16) -> tuple[np.ndarray, pd.DataFrame]:
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
        thumbs = np.stack([_thumbnail_or_zeros(p, size) for p in paths])
        thumbs -= thumbs.mean(axis=1, keepdims=True)
        norms = np.linalg.norm(thumbs, axis=1, keepdims=True)
        thumbs /= np.where(norms > 0, norms, 1.0)
        corr = thumbs @ thumbs.T
        rows, cols = np.nonzero(np.triu(corr > threshold, k=1))
        identical = {(a, b) for a, b, _, _ in pairs}
        for a, b in zip(rows.tolist(), cols.tolist()):
            if (a, b) not in identical:
                uf.union(a, b)
                pairs.append((a, b, f"thumbnail correlation {corr[a, b]:.4f}", float(corr[a, b])))
    roots = [uf.find(i) for i in range(len(paths))]
    renumber = {root: k for k, root in enumerate(dict.fromkeys(roots))}
    groups = np.array([renumber[r] for r in roots], dtype=int)
    pair_table = pd.DataFrame([{"path_a": str(paths[a]), "path_b": str(paths[b]), "reason": reason,
                                "correlation": value} for a, b, reason, value in pairs],
                              columns=["path_a", "path_b", "reason", "correlation"])
    return groups, pair_table


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
