"""Open-set scores, thresholds and temperature scaling inside cv10's folds (issue 24; REFERENCE.md §6).

Leave-painters-out: the unknown pool (painters outside the task, e.g. wikiart14's other folders) is dealt
into ``trust.unknown_groups`` groups of painters (``openset.painter_groups``). Fold k tests the unknown
paintings of group ``k mod G`` — each of them in exactly one fold, split within each painter — and, with
outlier exposure (``trust.background``), trains on every painting of the *other* groups as one
background class. So no painter tested as unknown in a fold was ever in that fold's training or
background pool.

Inside each fold, ``trust.inner_folds`` stratified inner folds of the training paintings give
out-of-fold outputs for the known paintings of the *training* folds only: the temperature is fitted on
them and each scorer's threshold keeps ``trust.keep`` of them. The fold's test paintings are never used
for either. The thresholds, the temperature and the painters of each role are recorded per fold.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from deeppainter.data.splits import fold_seed, label_indices
from deeppainter.errors import UserError
from deeppainter.eval import calibration, openset

BACKGROUND = "(other painters)"  # the outlier-exposure class's name: no painter folder can be called so


@dataclass(frozen=True)
class UnknownPool:
    """Paintings by painters outside the task, stored after the task's images in one array."""

    table: pd.DataFrame  # path, label (the painter)
    offset: int  # index of its first image in the images the fold model sees
    groups: dict[str, int]  # painter → group
    n_folds: int

    @property
    def n_groups(self) -> int:
        return max(self.groups.values()) + 1

    def _painters(self, fold: int, tested: bool) -> list[str]:
        return sorted(p for p, g in self.groups.items() if (g == fold % self.n_groups) == tested)

    def test_indices(self, fold: int) -> np.ndarray:
        """The unknown paintings fold ``fold`` tests: its group's, each painter's split over the group's folds."""
        parts = len(range(fold % self.n_groups, self.n_folds, self.n_groups))
        part = fold // self.n_groups
        labels = self.table["label"].to_numpy()
        rank = self.table.groupby("label").cumcount().to_numpy()  # position within its painter
        chosen = np.isin(labels, self._painters(fold, True)) & (rank % parts == part)
        return self.offset + np.flatnonzero(chosen)

    def background_indices(self, fold: int) -> np.ndarray:
        """Every painting of the painters fold ``fold`` does not test (outlier exposure's training pool)."""
        return self.offset + np.flatnonzero(self.table["label"].isin(self._painters(fold, False)).to_numpy())

    def roles(self, fold: int) -> dict[str, list[str]]:
        return {"unknown_painters": self._painters(fold, True), "background_painters": self._painters(fold, False)}


def make_pool(table: pd.DataFrame, offset: int, n_groups: int, n_folds: int, seed: int) -> UnknownPool:
    painters = sorted(table["label"].unique())
    groups = openset.painter_groups(painters, min(n_groups, len(painters)), seed)
    return UnknownPool(table.reset_index(drop=True), offset, groups, n_folds)


@dataclass
class Outputs:
    """One fit's outputs on some images: probabilities (known classes, then background if any) and logits."""

    probabilities: np.ndarray
    logits: np.ndarray | None

    def known(self, n_known: int) -> np.ndarray:
        return openset.known_probabilities(self.probabilities, n_known)


# Heads whose decision function is the logits of their softmax (energy needs those; an SVM's one-vs-rest
# margins are not).
LOGIT_HEADS = ("logreg", "dense")


def gives_logits(model) -> bool:
    return getattr(model, "head", None) in LOGIT_HEADS


def fit_outputs(model, fold: int, train_idx, test_idx, labels) -> tuple[Outputs, dict, pd.DataFrame | None]:
    """``model.fit_predict`` plus the fitted head's logits where it has them (a featurizer + logistic regression)."""
    probabilities, info, history = model.fit_predict(fold, train_idx, test_idx, labels)
    logits = None
    if gives_logits(model):
        logits = openset.as_logits(model.decision_scores(fold, test_idx))
    return Outputs(np.asarray(probabilities, dtype=np.float64), logits), info, history


class FoldScorer:
    """Every requested open-set score the model can give: from its outputs (probability scorers: energy only
    with logits) or its features (feature scorers)."""

    def __init__(self, scorers: tuple[str, ...], n_known: int, background: bool, features: np.ndarray | None,
                 knn_k: int, logits: bool):
        self.n_known, self.background, self.features, self.knn_k = n_known, background, features, knn_k
        self.scorers = tuple(s for s in scorers if (s not in openset.FEATURE_SCORERS or features is not None)
                             and (s != "background" or background) and (s != "energy" or logits))
        if background and "background" not in self.scorers:
            self.scorers += ("background",)
        self.fitted: dict[str, object] = {}

    def fit(self, train_idx: np.ndarray, labels: np.ndarray) -> FoldScorer:
        """Fit the feature scorers on the known training paintings' features."""
        for name in self.scorers:
            if name in openset.FEATURE_SCORERS:
                self.fitted[name] = openset.feature_scorer(name, self.knn_k).fit(self.features[train_idx],
                                                                                 labels[train_idx])
        return self

    def fitted_on(self, train_idx: np.ndarray, labels: np.ndarray) -> FoldScorer:
        """A scorer of the same scores, fitted on other training paintings (an inner fold's)."""
        fresh = copy.copy(self)
        fresh.fitted = {}
        return fresh.fit(train_idx, labels)

    def scores(self, outputs: Outputs, indices: np.ndarray) -> dict[str, np.ndarray]:
        result = {}
        for name in self.scorers:
            if name in openset.FEATURE_SCORERS:
                result[name] = self.fitted[name].score(self.features[indices])
            else:
                result[name] = openset.probability_score(name, outputs.probabilities, outputs.logits,
                                                         self.background)
        return result


def inner_calibration(model, fold: int, train_idx: np.ndarray, background_idx: np.ndarray, labels: np.ndarray,
                      scorer: FoldScorer, keep: float, inner_folds: int, seed: int) -> dict:
    """Temperature and per-scorer thresholds from out-of-fold outputs of the known training paintings; also
    those outputs (``probabilities`` over the known painters, ``truth``, ``scores``)."""
    inner = StratifiedKFold(inner_folds, shuffle=True, random_state=seed)
    known, truth, scores = [], [], {}
    for inner_train, inner_test in inner.split(train_idx, labels[train_idx]):
        fit_idx, test_idx = train_idx[inner_train], train_idx[inner_test]
        outputs, _, _ = fit_outputs(model, fold, np.r_[fit_idx, background_idx], test_idx, labels)
        known.append(outputs.known(scorer.n_known))
        truth.append(labels[test_idx])
        for name, values in scorer.fitted_on(fit_idx, labels).scores(outputs, test_idx).items():
            scores.setdefault(name, []).append(values)
    known, truth = np.concatenate(known), np.concatenate(truth)
    scores = {name: np.concatenate(values) for name, values in scores.items()}
    return {"temperature": calibration.fit_temperature(calibration.log_probabilities(known), truth),
            "thresholds": {name: openset.threshold_keeping(values, keep) for name, values in scores.items()},
            "probabilities": known, "truth": truth, "scores": scores}


def score_columns(scores: dict[str, np.ndarray], thresholds: dict[str, float]) -> dict[str, np.ndarray]:
    """``score_<scorer>`` and ``threshold_<scorer>`` columns for a predictions frame."""
    columns = {}
    for name, values in scores.items():
        columns[f"score_{name}"] = values
        columns[f"threshold_{name}"] = np.full(len(values), thresholds.get(name, np.nan))
    return columns


def scorer_names(frame: pd.DataFrame) -> list[str]:
    return [c[len("score_"):] for c in frame.columns if c.startswith("score_")]


def _openset_result(known: pd.DataFrame, unknown: pd.DataFrame, name: str) -> dict:
    return openset.evaluate(known[f"score_{name}"], unknown[f"score_{name}"], known[f"threshold_{name}"],
                            unknown[f"threshold_{name}"], known["true"] == known["predicted"]).as_dict()


def openset_summary(known: pd.DataFrame, unknown: pd.DataFrame) -> dict[str, dict]:
    """Per scorer: pooled AUROC / FPR at 95% TPR / knowns kept / unknowns rejected / known accuracy at the
    fold's threshold, and the per-fold mean ± std of each."""
    summary = {}
    for name in scorer_names(known):
        if f"score_{name}" not in unknown:
            continue
        per_fold = pd.DataFrame([_openset_result(k, unknown[unknown["fold"] == fold], name)
                                 for fold, k in known.groupby("fold") if (unknown["fold"] == fold).any()])
        summary[name] = {"pooled": _openset_result(known, unknown, name),
                         **{f"{m}_mean": float(per_fold[m].mean()) for m in per_fold},
                         **{f"{m}_std": float(per_fold[m].std(ddof=1)) if len(per_fold) > 1 else 0.0
                            for m in per_fold}}
    return summary


def calibration_summary(predictions: pd.DataFrame, classes: list[str], truth: np.ndarray) -> dict:
    """ECE of the raw out-of-fold probabilities, and of the temperature-scaled ones where present."""
    raw = predictions[[f"prob_{c}" for c in classes]].to_numpy()
    summary = {"ece": calibration.expected_calibration_error(raw, truth), "ece_bins": calibration.ECE_BINS}
    scaled_columns = [f"calprob_{c}" for c in classes]
    if set(scaled_columns) <= set(predictions.columns):
        summary["ece_temperature_scaled"] = calibration.expected_calibration_error(
            predictions[scaled_columns].to_numpy(), truth)
    return summary


def model_features(model) -> np.ndarray | None:
    """The fold model's feature space over every image it sees, where it has one (``features``; a frozen
    encoder's cached maps are flattened)."""
    features = getattr(model, "features", None)
    return None if features is None else np.asarray(features).reshape(len(features), -1)


@dataclass(frozen=True)
class TrustPlan:
    """What cv10 asks of every fold beyond the closed-set prediction."""

    settings: object  # config.TrustConfig
    classes: list[str]  # the known painters
    pool: UnknownPool | None
    seed: int

    @property
    def background(self) -> bool:
        return bool(self.settings.background and self.pool is not None)

    @property
    def model_classes(self) -> list[str]:
        """The classes the fold model learns: the known painters, and the background class with outlier exposure."""
        return [*self.classes, BACKGROUND] if self.background else list(self.classes)

    def labels(self, known_labels: np.ndarray) -> np.ndarray:
        """Labels of every image the fold model sees: the known painters', then the background class's."""
        n_pool = 0 if self.pool is None else len(self.pool.table)
        return np.r_[known_labels, np.full(n_pool, len(self.classes))]

    def run_fold(self, model, fold: int, train_idx: np.ndarray, test_idx: np.ndarray, known_labels: np.ndarray,
                 paths: np.ndarray, truth: np.ndarray):
        """Fit on the fold (with the background class when asked), score its known and unknown test paintings,
        and set the temperature and thresholds from inner folds of the training paintings.

        Returns the known test paintings' frame, the unknown test paintings' frame (or None), the fold info
        and the Keras history."""
        n_known, settings = len(self.classes), self.settings
        labels = self.labels(known_labels)
        empty = np.array([], dtype=int)
        unknown_idx = self.pool.test_indices(fold) if self.pool is not None else empty
        background_idx = self.pool.background_indices(fold) if self.background else empty
        tested = np.r_[test_idx, unknown_idx]
        outputs, info, history = fit_outputs(model, fold, np.r_[train_idx, background_idx], tested, labels)
        scorer = FoldScorer(settings.scorers, n_known, self.background, model_features(model),
                            settings.knn_k, gives_logits(model)).fit(train_idx, labels)
        inner = inner_calibration(model, fold, train_idx, background_idx, labels, scorer, settings.keep,
                                  settings.inner_folds, fold_seed(self.seed, fold))
        known = outputs.known(n_known)
        calibrated = calibration.apply_temperature(calibration.log_probabilities(known), inner["temperature"])
        columns = score_columns(scorer.scores(outputs, tested), inner["thresholds"])
        names = np.array(self.classes)
        frame = pd.DataFrame({"path": paths[tested], "true": np.r_[truth[test_idx], self.pool_labels(unknown_idx)],
                              "predicted": names[known.argmax(axis=1)], "fold": fold})
        for index, name in enumerate(self.classes):
            frame[f"prob_{name}"] = known[:, index]
        for index, name in enumerate(self.classes):
            frame[f"calprob_{name}"] = calibrated[:, index]
        frame = frame.assign(**columns)
        info = {**info, "temperature": inner["temperature"], "thresholds": inner["thresholds"],
                "n_unknown": len(unknown_idx), "n_background": len(background_idx),
                **(self.pool.roles(fold) if self.pool is not None else {})}
        unknown = frame.iloc[len(test_idx):].drop(columns=[f"calprob_{c}" for c in self.classes])
        return (frame.iloc[:len(test_idx)].reset_index(drop=True), unknown.reset_index(drop=True) if len(unknown_idx)
                else None, info, history)

    def pool_labels(self, indices: np.ndarray) -> np.ndarray:
        if self.pool is None:
            return np.array([], dtype=object)
        return self.pool.table["label"].to_numpy()[indices - self.pool.offset]


def write_trust_reports(run_dir, predictions: pd.DataFrame, unknown: pd.DataFrame, classes: list[str],
                        title: str) -> dict:
    """reliability.png (and reliability_temperature.png), unknown_predictions.csv; the metrics.json entries."""
    from pathlib import Path

    from deeppainter.runs import atomic_write_csv

    run_dir = Path(run_dir)
    truth = label_indices(predictions["true"], classes)
    extra = {"calibration": calibration_summary(predictions, classes, truth)}
    calibration.reliability_diagram(predictions[[f"prob_{c}" for c in classes]].to_numpy(), truth,
                                    run_dir / "reliability.png", title)
    if "ece_temperature_scaled" in extra["calibration"]:
        calibration.reliability_diagram(predictions[[f"calprob_{c}" for c in classes]].to_numpy(), truth,
                                        run_dir / "reliability_temperature.png", f"{title}, temperature-scaled")
    if not unknown.empty:
        atomic_write_csv(run_dir / "unknown_predictions.csv", unknown)
        extra["openset"] = openset_summary(predictions, unknown)
        extra["unknown_painters"] = sorted(unknown["true"].unique())
    return extra


def openset_table(summary: dict) -> pd.DataFrame:
    """One row per scorer: AUROC, FPR at 95% TPR, knowns kept / unknowns rejected / known accuracy at the
    threshold chosen inside the training folds (percent, mean ± std over folds)."""
    from deeppainter.eval.metrics import format_percent

    rows = []
    for name, values in summary.items():
        rows.append({"scorer": name, "AUROC": f"{values['auroc_mean']:.3f} ± {values['auroc_std']:.3f}",
                     "FPR@95": format_percent(values["fpr95_mean"], values["fpr95_std"]),
                     "knowns kept": format_percent(values["known_kept_mean"]),
                     "unknowns rejected": format_percent(values["unknown_rejected_mean"]),
                     "known acc. at thr.": format_percent(values["known_accuracy_at_threshold_mean"])})
    return pd.DataFrame(rows)


def unknown_table(spec: str, data, classes: list[str]) -> pd.DataFrame:
    """The unknown painters' paintings for ``cv10 --unknown``: ``auto`` = every other class folder of the data
    root (none for a manifest or a root holding only the task), ``none``, or a folder of painter folders."""
    from pathlib import Path

    from deeppainter.data.datasets import list_labelled

    if spec == "none":
        return pd.DataFrame(columns=["path", "label"])
    if spec == "auto":
        if not Path(data).is_dir():
            return pd.DataFrame(columns=["path", "label"])
        table = list_labelled(data)
        return table[~table["label"].isin(classes)].reset_index(drop=True)
    folder = Path(spec)
    if not folder.is_dir():
        raise UserError(f"--unknown {spec}: no such folder; give a folder of painter folders, auto or none")
    try:
        table = list_labelled(folder)
    except UserError:
        raise UserError(f"--unknown {spec}: no images found; expected painter folders like {spec}/<painter>/*.jpg")
    shared = sorted(set(table["label"]) & set(classes))
    if shared:
        raise UserError(f"--unknown {spec}: {', '.join(shared)} {'is' if len(shared) == 1 else 'are'} among the "
                        f"task's painters; unknown painters must be others (remove those folders)")
    return table


FINAL_TRUST = "final_trust.pkl"


def fit_final_trust(model, plan: TrustPlan, known_labels: np.ndarray, fold: int) -> dict:
    """What the final model (trained on every image) needs to say "none of the known painters" and to give
    calibrated probabilities: the final scorer's threshold and the temperature from ``inner_folds`` folds of
    every known painting (with every unknown painting as background under outlier exposure), the fitted
    feature scorer, and per painter the out-of-fold calibrated probabilities and scores of their own works
    (for ``predict --claim``'s percentiles). ``fold`` is the fold number the model's seeds use."""
    settings = plan.settings
    labels = plan.labels(known_labels)
    train_idx = np.arange(len(known_labels))
    background_idx = (plan.pool.offset + np.arange(len(plan.pool.table)) if plan.background
                      else np.array([], dtype=int))
    wanted = tuple(dict.fromkeys((*settings.scorers, settings.final_scorer)))
    scorer = FoldScorer(wanted, len(plan.classes), plan.background, model_features(model),
                        settings.knn_k, gives_logits(model)).fit(train_idx, labels)
    name = settings.final_scorer
    if name not in scorer.scorers:
        raise UserError(f"trust.final_scorer={name}: this model has no such score (it has "
                        f"{', '.join(scorer.scorers)}); choose one of those")
    inner = inner_calibration(model, fold, train_idx, background_idx, labels, scorer, settings.keep,
                              settings.inner_folds, fold_seed(plan.seed, None))
    calibrated = calibration.apply_temperature(calibration.log_probabilities(inner["probabilities"]),
                                               inner["temperature"])
    own = calibrated[np.arange(len(inner["truth"])), inner["truth"]]
    return {"scorer": name, "threshold": inner["thresholds"][name], "thresholds": inner["thresholds"],
            "temperature": inner["temperature"], "keep": settings.keep, "background": plan.background,
            "feature_scorer": scorer.fitted.get(name),
            "reference": {painter: {"probability": np.sort(own[inner["truth"] == k]),
                                    "score": np.sort(inner["scores"][name][inner["truth"] == k])}
                          for k, painter in enumerate(plan.classes)},
            "unknown_painters": sorted(plan.pool.table["label"].unique()) if plan.pool is not None else []}


def describe_final_trust(record: dict) -> dict:
    """The JSON-able part of a final trust record (for final_model.json)."""
    return {"scorer": record["scorer"], "threshold": record["threshold"], "temperature": record["temperature"],
            "keep": record["keep"], "background": record["background"],
            "unknown_painters": record["unknown_painters"]}


def final_openset(final, assessed: dict, images: np.ndarray, unknown: pd.DataFrame,
                  known_correct) -> tuple[pd.DataFrame, dict]:
    """A final model's own scorer and threshold on its known test images (``assessed``) against unknown
    painters' images: one row per unknown image, and the open-set numbers."""
    outside = final.assess(images)
    frame = pd.DataFrame({"path": unknown["path"], "painter": unknown["label"],
                          "predicted": [final.classes[i] for i in outside["probabilities"].argmax(axis=1)],
                          "known_score": outside["known_score"], "threshold": outside["threshold"],
                          "unknown": outside["unknown"]})
    result = openset.evaluate(assessed["known_score"], outside["known_score"], assessed["threshold"],
                              outside["threshold"], known_correct).as_dict()
    return frame, {**result, "n_unknown": len(frame), "unknown_painters": sorted(frame["painter"].unique()),
                   "scorer": final.trust["scorer"], "threshold": final.trust["threshold"]}
