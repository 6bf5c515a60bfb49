import shutil

import numpy as np
from PIL import Image

from deeppainter.data.duplicates import duplicates_table, find_duplicates
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
    assert any("thumbnail correlation" in r for r in table["reason"])


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
