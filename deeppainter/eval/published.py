"""Published numbers the project compares against (REFERENCE.md §1–3), in percent."""
from __future__ import annotations

PAPER3 = ("pierre-auguste-renoir", "rembrandt", "vincent-van-gogh")

# task -> list of (source, model, metrics in %).
PUBLISHED = {
    "3painters": [
        ("David & Netanyahu 2016, Table 1 (120 curated paintings)", "features-knn", {"accuracy": 65.71}),
        ("David & Netanyahu 2016, Table 1", "features-svm", {"accuracy": 68.33}),
        ("David & Netanyahu 2016, Table 1", "features-ga", {"accuracy": 78.33}),
        ("David & Netanyahu 2016, Table 1", "rbm-knn", {"accuracy": 64.41}),
        ("David & Netanyahu 2016, Table 1", "rbm-svm", {"accuracy": 77.50}),
        ("David & Netanyahu 2016, Table 1", "rbm-ga", {"accuracy": 73.92}),
        ("David & Netanyahu 2016, Table 1", "features-rbm-knn", {"accuracy": 68.71}),
        ("David & Netanyahu 2016, Table 1", "features-rbm-svm", {"accuracy": 71.66}),
        ("David & Netanyahu 2016, Table 1", "features-rbm-ga", {"accuracy": 90.44}),
        ("David & Netanyahu 2016, Table 1", "cae", {"accuracy": 96.52}),
        ("Angus & Thorsteinsson 2021, Sec. V (WikiArt)", "cae",
         {"accuracy": 73.0, "precision": 73.0, "recall": 72.0, "f1": 72.0}),
    ],
    "10artists": [
        ("Angus & Thorsteinsson 2021, Sec. V (WikiArt)", "cae", {"accuracy": 35.0}),
    ],
}


def task_name(classes) -> str:
    """Which published table a class list corresponds to ('' when none)."""
    if tuple(sorted(classes)) == PAPER3:
        return "3painters"
    if len(classes) == 10:
        return "10artists"
    return ""
