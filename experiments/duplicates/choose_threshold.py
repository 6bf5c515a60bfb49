"""Choose cv.duplicate_threshold on labelled pairs, and count the groups it makes per task.

    PYTHONPATH=. python experiments/duplicates/choose_threshold.py [--data ../shared/data/wikiart14]

Scores every pair of wikiart14 images with deeppainter.data.duplicates (trimmed-bar grey + gradient
thumbnails); the threshold must stay above the highest score between two different painters (a
painting is never by two of them) and, above that, has the best F1 on labelled_pairs.csv ("same" work
against "different" works of one painter; "series" — one motif painted again — count for neither).
Writes threshold.json beside this file: the threshold, its counts, the old rule's counts on the same
pairs (padded grey thumbnails correlating above 0.99), and the groups per task at the threshold.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from deeppainter.data.datasets import list_labelled, resolve_classes, sample_dir
from deeppainter.data.duplicates import choose_threshold, find_duplicates, similarity, thumbnails
from deeppainter.progress import progress
from deeppainter.runs import atomic_write_json

HERE = Path(__file__).resolve().parent
OLD_THRESHOLD = 0.99
TASKS = {"task 1 (3 painters)": "vincent-van-gogh,rembrandt,pierre-auguste-renoir",
         "task 2 (10 largest)": "largest:10", "all 14 painters": ""}


def padded_grey(path: Path, size: int = 16) -> np.ndarray:
    """The old rule's view: the grey thumbnail with the padding bars in it."""
    with Image.open(path) as image:
        image.draft("L", (4 * size, 4 * size))
        return np.asarray(image.convert("L").resize((size, size), Image.BILINEAR), dtype=np.float64).ravel()


def group_counts(table: pd.DataFrame, threshold: float, labelled: pd.DataFrame, root: Path) -> dict:
    groups, _ = find_duplicates(list(table["path"]), threshold)
    sizes = np.bincount(groups)
    grouped = table.assign(group=groups)[sizes[groups] > 1]
    index = {Path(p).relative_to(root).as_posix(): g for p, g in zip(table["path"], groups)}
    same = labelled[(labelled["label"] == "same") & labelled["path_a"].isin(index) & labelled["path_b"].isin(index)]
    return {"images": len(table), "groups": int((sizes > 1).sum()), "images_in_groups": len(grouped),
            "groups_across_painters": int((grouped.groupby("group")["label"].nunique() > 1).sum()),
            "labelled_same_pairs": len(same),
            "labelled_same_pairs_not_grouped": int(sum(index[a] != index[b] for a, b in zip(same["path_a"],
                                                                                             same["path_b"])))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/wikiart14"))
    args = parser.parse_args()
    table = list_labelled(args.data)
    names = [Path(p).relative_to(args.data).as_posix() for p in table["path"]]
    index = {name: i for i, name in enumerate(names)}
    views = np.stack([thumbnails(Path(p)) for p in progress(list(table["path"]), desc="thumbnails", unit="img")])
    scores = similarity(views)
    painters = table["label"].to_numpy()
    floor = float(scores[painters[:, None] != painters[None, :]].max())
    labelled = pd.read_csv(HERE / "labelled_pairs.csv")
    decided = labelled[labelled["label"] != "series"]
    a, b = decided["path_a"].map(index).to_numpy(), decided["path_b"].map(index).to_numpy()
    threshold, counts = choose_threshold(scores[a, b], (decided["label"] == "same").to_numpy(), floor)
    old = similarity(np.stack([padded_grey(Path(p)) for p in table["path"]])[:, None, :])
    old_kept = old[a, b] > OLD_THRESHOLD
    same = (decided["label"] == "same").to_numpy()
    cross = painters[:, None] != painters[None, :]
    result = {
        "rule": "mean correlation of rank-transformed 16 px grey and gradient-magnitude thumbnails, bars trimmed",
        "labelled_pairs": labelled["label"].value_counts().to_dict(),
        "highest_score_between_painters": floor, "threshold": round(threshold, 4), **counts,
        "old_rule": {"threshold": OLD_THRESHOLD, "true_pairs_found": int((old_kept & same).sum()),
                     "false_pairs": int((old_kept & ~same).sum()),
                     "true_pairs_missed": int((~old_kept & same).sum()),
                     "pairs_across_painters_above": int(np.triu(cross & (old > OLD_THRESHOLD), 1).sum())},
        "tasks": {},
    }
    for task, spec in TASKS.items():
        subset = table[table["label"].isin(resolve_classes(args.data, spec) or painters)]
        result["tasks"][task] = group_counts(subset.reset_index(drop=True), threshold, labelled, args.data)
    sample = list_labelled(sample_dir())
    result["tasks"]["embedded sample (120)"] = group_counts(sample, threshold, labelled.iloc[:0], sample_dir())
    atomic_write_json(HERE / "threshold.json", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
