import numpy as np
import pandas as pd
import pytest

from deeppainter.eval.stats import (
    corrected_t,
    format_p,
    mcnemar,
    paired_auroc,
    paired_tests,
)


def test_mcnemar_is_exact_for_few_discordant_images_and_chi2_otherwise():
    # 1 vs 9 discordant: two-sided binomial, 2 · (1 + 10) / 2^10
    assert mcnemar([True] + [False] * 9, [False] + [True] * 9) == {
        "a_only": 1, "b_only": 9, "p": pytest.approx(22 / 1024), "method": "exact"}
    # 10 vs 30: (|10 − 30| − 1)² / 40 = 9.025 on one degree of freedom
    result = mcnemar([True] * 10 + [False] * 30 + [True] * 5, [False] * 10 + [True] * 30 + [True] * 5)
    assert result["method"] == "chi2" and result["p"] == pytest.approx(0.0026631, rel=1e-4)
    assert mcnemar([True, False], [True, False])["p"] == 1.0  # no discordant image: no evidence either way


def test_corrected_t_inflates_the_variance_by_the_test_train_ratio():
    # differences 1..5: mean 3, variance 2.5; (1/5 + 1/4) · 2.5 = 1.125 → t = 3 / √1.125
    result = corrected_t([1, 2, 3, 4, 5], [0] * 5, 0.25)
    assert result["t"] == pytest.approx(2.8284271) and result["df"] == 4
    assert result["p"] == pytest.approx(0.047421, rel=1e-4)
    assert corrected_t([1, 2, 3, 4, 5], [0] * 5, 0.0)["p"] < result["p"]  # the uncorrected test is overconfident
    assert corrected_t([0.5, 0.5], [0.5, 0.5], 0.1)["p"] == 1.0


def test_paired_tests_match_images_and_need_the_same_folds_for_the_t_test():
    paths = [f"{k}.jpg" for k in range(40)]
    truth = ["x"] * 40
    a = pd.DataFrame({"path": paths, "true": truth, "predicted": ["x"] * 30 + ["y"] * 10, "fold": np.arange(40) % 4})
    b = a.assign(predicted=["y"] * 10 + ["x"] * 30).sample(frac=1, random_state=0)  # another row order
    result = paired_tests(a, b)
    assert result["images"] == 40 and result["difference"] == 0.0
    assert result["mcnemar"]["a_only"] == 10 and result["mcnemar"]["b_only"] == 10
    assert result["corrected_t"]["df"] == 3
    assert paired_tests(a, b.assign(fold=(np.arange(40) + 1) % 4))["corrected_t"] is None


def test_p_values_fit_a_table_cell():
    assert [format_p(p) for p in (0.5, 0.0312, 7.6e-15, 0.0, None)] == ["0.500", "0.031", "8e-15", "<1e-300", "—"]


def _scored(rng, n, folds, shift):
    """Known (label 1) and unknown frames: ``a`` separates them by ``shift``, ``b`` is noise."""
    frames = []
    for known in (True, False):
        a = rng.normal(shift if known else 0.0, 1.0, n)
        frames.append(pd.DataFrame({"fold": np.arange(n) % folds, "a": a, "b": rng.normal(0.0, 1.0, n)}))
    return frames


def test_paired_auroc_over_folds_and_by_bootstrap():
    rng = np.random.default_rng(0)
    known, unknown = _scored(rng, 200, 10, shift=2.0)
    folds = paired_auroc(known, unknown)
    assert folds["method"] == "corrected t over 10 folds" and folds["a"] > 0.85 and abs(folds["b"] - 0.5) < 0.1
    assert folds["difference"] == pytest.approx(folds["a"] - folds["b"]) and folds["p"] < 0.01
    one_set = paired_auroc(known.assign(fold=0), unknown.assign(fold=0))
    assert one_set["method"].startswith("paired bootstrap") and one_set["p"] < 0.01
    assert 0 < one_set["ci95"][0] < one_set["difference"] < one_set["ci95"][1]
    same = paired_auroc(known.assign(b=known["a"], fold=0), unknown.assign(b=unknown["a"], fold=0))
    assert same["difference"] == 0 and same["p"] == 1
    weak_known, weak_unknown = _scored(np.random.default_rng(1), 40, 1, shift=0.1)
    assert paired_auroc(weak_known, weak_unknown)["p"] > 0.05  # a small difference on few images: no claim


def test_auroc_equals_scikit_learn_with_ties():
    from sklearn.metrics import roc_auc_score

    from deeppainter.eval.openset import auroc

    rng = np.random.default_rng(3)
    known, unknown = rng.integers(0, 5, 30).astype(float), rng.integers(0, 4, 20).astype(float)  # many ties
    assert auroc(known, unknown) == pytest.approx(roc_auc_score(np.r_[np.ones(30), np.zeros(20)], np.r_[known, unknown]))
