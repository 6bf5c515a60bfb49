import shutil

import numpy as np
from PIL import Image

from deeppainter.data.duplicates import choose_threshold, duplicates_table, find_duplicates
from deeppainter.data.splits import make_folds


def _painting(path, seed, noise=0.0):
    rng = np.random.default_rng(seed)
    base = np.kron(rng.integers(0, 255, (8, 8, 3)), np.ones((8, 8, 1)))  # blocky, so thumbnails differ
    if noise:
        base = base + np.random.default_rng(seed + 100).normal(0, noise, base.shape)
    Image.fromarray(np.clip(base, 0, 255).astype("uint8")).save(path, quality=95)


def test_near_and_exact_duplicates_are_grouped(tmp_path):
    paths = []
    for k in range(6):
        paths.append(tmp_path / f"{k}.jpg")
        _painting(paths[-1], k)
    paths.append(tmp_path / "0_rescan.jpg")  # same work, slightly different scan
    _painting(paths[-1], 0, noise=3.0)
    paths.append(tmp_path / "3_copy.jpg")
    shutil.copy(paths[3], paths[-1])
    groups, pairs = find_duplicates(paths, threshold=0.99)
    assert groups[0] == groups[6] and groups[3] == groups[7]
    assert len(set(groups.tolist())) == 6
    table = duplicates_table(paths, groups, pairs)
    assert len(table) == 4 and list(table.columns) == ["path", "group", "reason"]
    assert any("identical bytes" in r for r in table["reason"])
    assert any("thumbnail similarity" in r for r in table["reason"])


def _padded(painting: np.ndarray, height: int) -> np.ndarray:
    """``painting`` resized to 64 × ``height`` in the middle of a black 64 × 64 square (an earlier padding)."""
    square = np.zeros((64, 64, 3), dtype=np.uint8)
    top = (64 - height) // 2
    square[top:top + height] = np.asarray(Image.fromarray(painting).resize((64, height), Image.BILINEAR))
    return square


def test_padding_bars_neither_make_nor_hide_one_work(tmp_path):
    rng = np.random.default_rng(0)
    works = [np.kron(rng.integers(0, 255, (6, 8, 3)), np.ones((8, 8, 1))).astype("uint8") for _ in range(2)]
    views = {"a_wide_bars": _padded(works[0], 24), "b_wide_bars": _padded(works[1], 24),  # same bars, other works
             "a_thin_bars": _padded(works[0], 48)}  # the first work again, padded to another shape
    paths = []
    for name, pixels in views.items():
        paths.append(tmp_path / f"{name}.png")
        Image.fromarray(pixels).save(paths[-1])
    groups, _ = find_duplicates(paths, threshold=0.8169)
    assert groups[0] == groups[2] and groups[0] != groups[1]


def test_threshold_has_the_best_f1_above_the_floor():
    scores = np.array([0.99, 0.95, 0.90, 0.85, 0.80, 0.70])
    same = np.array([True, True, True, False, True, False])
    threshold, counts = choose_threshold(scores, same, floor=0.5)
    assert 0.70 < threshold < 0.80 and counts["true_pairs_found"] == 4 and counts["false_pairs"] == 1
    threshold, counts = choose_threshold(scores, same, floor=0.86)  # pairs between painters reach 0.86
    assert 0.86 < threshold < 0.90 and counts == {"f1": 6 / 7, "true_pairs_found": 3, "false_pairs": 0,
                                                   "true_pairs_missed": 1}


def test_group_folds_keep_groups_together_and_no_groups_keeps_old_folds():
    labels = np.repeat([0, 1], 20)
    groups = np.arange(40)
    old = make_folds(labels, 5, seed=0)
    same = make_folds(labels, 5, seed=0, groups=groups)  # all singletons: the plain stratified folds
    assert all((a[1] == b[1]).all() for a, b in zip(old, same))
    groups[[1, 2, 3]] = 1
    groups[[25, 30]] = 25
    for _, test_idx in make_folds(labels, 5, seed=0, groups=groups):
        for members in ([1, 2, 3], [25, 30]):
            inside = np.isin(members, test_idx)
            assert inside.all() or not inside.any()
