"""A trained model (cv10 --save-final-model) and the standardisation it was trained with, for predict, evaluate,
explain and the web page; the one prediction function predict and the page share (``predict_files``); the
reference set of training paintings a final model carries for the page's nearest-paintings view."""
from __future__ import annotations

import io
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from deeppainter.data.datasets import IMAGE_SUFFIXES
from deeppainter.errors import UserError
from deeppainter.progress import progress as progress_bar
from deeppainter.runs import read_json

FINAL_JSON = "final_model.json"
REFERENCE_FILE = "reference_set.npz"


def preprocessing_record(data_cfg) -> dict:
    """The standardisation a model is trained with, as written to ``final_model.json`` by cv10."""
    return {"image_size": int(data_cfg.image_size), "mode": data_cfg.mode,
            "pad_color": [int(c) for c in data_cfg.pad_color], "trim_bars": bool(data_cfg.trim_bars)}


@dataclass
class FinalModel:
    """A cv10 ``--save-final-model`` model and the standardisation it was trained with."""

    run_dir: Path
    name: str
    classes: list[str]
    image_size: int
    mode: str
    pad_color: tuple[int, int, int]
    model: object  # a keras.Model ([0, 1] floats in) or a fitted scikit-learn pipeline (uint8 in)
    trim_bars: bool = False
    trust: dict | None = None  # eval.trust.fit_final_trust's record: scorer, threshold, temperature

    def data_config(self, cache_dir: str = ""):
        """The one DataConfig that predict, evaluate and explain standardise new images with."""
        from deeppainter.config import DataConfig

        return DataConfig(image_size=self.image_size, mode=self.mode, pad_color=tuple(self.pad_color),
                          trim_bars=self.trim_bars, cache_dir=cache_dir)

    @property
    def is_neural(self) -> bool:
        import keras

        return isinstance(self.model, keras.Model)

    def predict_proba(self, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """uint8 (N, S, S, 3) standardised images → (N, K) class probabilities."""
        if not len(images):
            return np.zeros((0, len(self.classes)))
        if self.is_neural:
            chunks = [self.model.predict(images[i:i + batch_size].astype("float32") / 255.0, verbose=0)
                      for i in range(0, len(images), batch_size)]
            return np.concatenate(chunks).astype("float64")
        return np.asarray(self.model.predict_proba(np.asarray(images)), dtype="float64")

    def features(self, images: np.ndarray) -> np.ndarray:
        """The model's feature space (a pipeline's steps up to its ``features`` step), as its CV scorers saw it."""
        from sklearn.pipeline import Pipeline

        names = [name for name, _ in getattr(self.model, "steps", [])]
        if "features" not in names:
            raise UserError(f"--run {self.run_dir}: {self.name} has no feature space for its "
                            f"{self.trust['scorer']} score")
        return Pipeline(self.model.steps[:names.index("features") + 1]).transform(np.asarray(images))

    def assess(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Probabilities over the known painters (temperature-scaled when the model carries a temperature), and
        with a trust record the known-painter score, its threshold and whether each image is below it."""
        from deeppainter.eval import calibration, openset

        raw = self.predict_proba(images)
        known = openset.known_probabilities(raw, len(self.classes))
        if self.trust is None or not len(images):
            return {"probabilities": known}
        trust = self.trust
        probabilities = calibration.apply_temperature(calibration.log_probabilities(known), trust["temperature"])
        if trust["feature_scorer"] is not None:
            score = trust["feature_scorer"].score(self.features(images))
        else:
            logits = (openset.as_logits(self.model.decision_function(np.asarray(images)))
                      if trust["scorer"] == "energy" else None)
            score = openset.probability_score(trust["scorer"], raw, logits, trust["background"])
        return {"probabilities": probabilities, "known_score": score, "threshold": np.full(len(score), trust["threshold"]),
                "unknown": score < trust["threshold"]}

    def claim(self, painter: str, assessed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """For ``predict --claim``: the calibrated probability of ``painter`` and the percentile of that probability
        (and of the known-painter score) among the painter's own works, out of fold."""
        probability = assessed["probabilities"][:, self.classes.index(painter)]
        result = {"claim_probability": probability}
        if self.trust is not None:
            reference = self.trust["reference"][painter]
            result["claim_percentile"] = 100.0 * np.searchsorted(reference["probability"], probability,
                                                                 side="right") / len(reference["probability"])
            result["score_percentile"] = 100.0 * np.searchsorted(reference["score"], assessed["known_score"],
                                                                 side="right") / len(reference["score"])
        return result


    def feature_vectors(self, images: np.ndarray, batch_size: int = 32) -> np.ndarray | None:
        """uint8 (N, S, S, 3) → (N, D) float32: what the model's last step (its classifier) reads.

        A Keras chain: the input of its last layer (inside a nested head); a scikit-learn pipeline: every step
        but the last. None for a model with no such space (a bare estimator).
        """
        if self.is_neural:
            features = chain_features(self.model)
            return np.concatenate([np.asarray(features(images[i:i + batch_size].astype("float32") / 255.0))
                                   for i in range(0, len(images), batch_size)]).reshape(len(images), -1)
        steps = getattr(self.model, "steps", None)
        if not steps or len(steps) < 2:
            return None
        chunks = [self.model[:-1].transform(np.asarray(images[i:i + batch_size]))
                  for i in range(0, len(images), batch_size)]
        return np.concatenate(chunks).reshape(len(images), -1).astype("float32")


def chain_layers(model) -> list:
    """The layers a saved classifier applies in order (image → [preprocessing] → encoder/backbone → head), without
    its input and training-time augmentation; every classifier cv10 saves is such a chain."""
    import keras

    return [layer for layer in model.layers
            if not isinstance(layer, keras.layers.InputLayer) and not layer.name.startswith("augment_")]


def apply_chain(layers, x):
    """``x`` through ``layers`` in inference mode (a layer returning a tuple, MaxPoolingWithSwitches, passes its first)."""
    for layer in layers:
        x = layer(x, training=False)
        if isinstance(x, (tuple, list)):
            x = x[0]
    return x


def chain_features(model) -> Callable:
    """images in [0, 1] → the input of the chain's last layer (looked for inside a nested head model)."""
    import keras

    *body, last = chain_layers(model)
    if isinstance(last, keras.Model):
        inner = chain_features(last)
        return lambda x: inner(apply_chain(body, x))
    return lambda x: apply_chain(body, x)


def load_final_model(run_dir: Path) -> FinalModel:
    run_dir = Path(run_dir)
    meta_file = run_dir / FINAL_JSON
    if not meta_file.is_file():
        raise UserError(f"--run {run_dir}: no {FINAL_JSON} there; re-run `python -m deeppainter.cv10 ... "
                        f"--save-final-model` and pass that run folder")
    meta = read_json(meta_file)
    path = run_dir / meta["path"]
    if not path.is_file():
        raise UserError(f"--run {run_dir}: {FINAL_JSON} names {path.name}, which is missing; re-run cv10 "
                        f"with --save-final-model")
    from deeppainter.models import registry

    spec = registry.get_model(meta["model"])  # a model this version knows, saved in the format it saves
    if spec.final_format is None or path.suffix != f".{spec.final_format}":
        raise UserError(f"--run {run_dir}: {path.name} is not a {meta['model']} final model "
                        f"(expected final_model.{spec.final_format}); re-run cv10 with --save-final-model")
    if spec.final_format == "pkl":
        with open(path, "rb") as handle:
            model = pickle.load(handle)
    else:
        import keras

        # The custom layers a saved model refers to are registered when their modules are imported.
        import deeppainter.models.backbones  # noqa: F401
        import deeppainter.models.classifier  # noqa: F401
        import deeppainter.models.layers  # noqa: F401

        model = keras.models.load_model(path, compile=False)
    trust = None
    if "trust" in meta:
        from deeppainter.eval.trust import FINAL_TRUST

        trust_file = run_dir / FINAL_TRUST
        if not trust_file.is_file():
            raise UserError(f"--run {run_dir}: {FINAL_JSON} names a trust record but {FINAL_TRUST} is missing; "
                            f"re-run cv10 with --save-final-model")
        with open(trust_file, "rb") as handle:
            trust = pickle.load(handle)
    return FinalModel(run_dir, meta["model"], list(meta["classes"]), int(meta["image_size"]), meta["mode"],
                      tuple(meta["pad_color"]), model, bool(meta.get("trim_bars", False)), trust)


def expand_inputs(items: list[Path]) -> list[Path]:
    """Files as given (readable or not: they are reported), folders → their image files, recursively."""
    paths: list[Path] = []
    for item in items:
        item = Path(item)
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                           and not p.name.startswith("."))
            if not found:
                print(f"warning: {item}: no image files in this folder", file=sys.stderr)
            paths.extend(found)
        else:
            paths.append(item)
    if not paths:
        raise UserError("no images given: pass image files or folders of images")
    return paths


def standardise_files(paths: list[Path], final: FinalModel, progress: bool = True,
                      admit: Callable[[Path], str] | None = None) -> tuple[np.ndarray, list[str]]:
    """uint8 images of the readable files, and one reason per path ("" = read fine).

    ``admit(path)``, when given, is asked before a file is decoded: a non-empty answer is the reason it is not
    (the web page's size limits)."""
    from deeppainter.data.standardize import UnreadableImage, load_standardized

    data_cfg = final.data_config()
    images, reasons = [], []
    for path in progress_bar(paths, desc=f"standardising to {data_cfg.image_size}px", unit="img", enabled=progress):
        try:
            if not Path(path).is_file():
                raise UnreadableImage(path, "no such file")
            refused = admit(Path(path)) if admit is not None else ""
            if refused:
                raise UnreadableImage(path, refused)
            images.append(load_standardized(path, data_cfg.image_size, data_cfg.mode, data_cfg.pad_color,
                                            data_cfg.trim_bars))
            reasons.append("")
        except (UnreadableImage, OSError) as exc:
            reasons.append(getattr(exc, "reason", str(exc)))
    size = final.image_size
    return (np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)), reasons


def prediction_table(paths: list[Path], reasons: list[str], assessed: dict[str, np.ndarray], classes: list[str],
                     top_k: int) -> pd.DataFrame:
    """predict's CSV: per path its error ("" = read), top-k painters with probabilities, every class's probability,
    and the open-set (``known_score``, ``threshold``, ``unknown``) and claim columns the model gives."""
    extra = [key for key in assessed if key != "probabilities"]
    rows, readable = [], iter(range(len(assessed["probabilities"])))
    for path, reason in zip(paths, reasons):
        row: dict = {"path": str(path), "error": reason}
        if not reason:
            index = next(readable)
            probs = assessed["probabilities"][index]
            for rank, k in enumerate(np.argsort(-probs)[:top_k], start=1):
                row[f"top{rank}"], row[f"prob{rank}"] = classes[k], float(probs[k])
            row.update({f"prob_{name}": float(p) for name, p in zip(classes, probs)})
            row.update({key: assessed[key][index].item() for key in extra})
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass
class Predictions:
    """The answer for a list of files: predict's CSV rows and, for the readable files, what the model saw."""

    table: pd.DataFrame  # one row per path, as prediction_table
    images: np.ndarray  # uint8 (N_readable, S, S, 3): the standardised images, in the table's order
    probabilities: np.ndarray  # (N_readable, K), temperature-scaled where the model carries a temperature


def predict_files(final: FinalModel, paths: list[Path], top_k: int, progress: bool = True,
                  admit: Callable[[Path], str] | None = None, claim: str | None = None) -> Predictions:
    """The one prediction path of predict and the web page: files standardised exactly as in training →
    class probabilities (and the open-set verdict, and ``claim``'s answer) → the top-k table (unreadable files
    keep a row with their reason)."""
    images, reasons = standardise_files(paths, final, progress, admit)
    assessed = final.assess(images)
    if claim is not None:
        assessed |= final.claim(claim, assessed)
    table = prediction_table(paths, reasons, assessed, final.classes, min(top_k, len(final.classes)))
    return Predictions(table, images, assessed["probabilities"])


# --- the reference set: the final model's training paintings, for "nearest training paintings" ------------------

@dataclass
class ReferenceSet:
    """Per training image: painter, path (as the run records it), a JPEG thumbnail and its feature vector."""

    painters: np.ndarray  # (N,) str
    paths: np.ndarray  # (N,) str
    features: np.ndarray  # (N, D) float32, FinalModel.feature_vectors of the standardised training images
    thumbnails: np.ndarray  # uint8 bytes of N JPEGs, one after the other
    offsets: np.ndarray  # (N + 1,) int64: thumbnail i is thumbnails[offsets[i]:offsets[i + 1]]

    def nearest(self, vector: np.ndarray, count: int) -> list[tuple[int, float]]:
        """The ``count`` training images closest to ``vector`` (Euclidean distance), closest first."""
        # ASSUMPTION: Euclidean distance in the classifier's input space, the metric its k-NN and RBF SVM heads use.
        distances = np.linalg.norm(self.features - np.asarray(vector, dtype="float32")[None], axis=1)
        order = np.argsort(distances, kind="stable")[:count]
        return [(int(i), float(distances[i])) for i in order]

    def thumbnail(self, index: int) -> bytes:
        return self.thumbnails[self.offsets[index]:self.offsets[index + 1]].tobytes()


def write_reference_set(run_dir: Path, images: np.ndarray, painters, paths, thumbnail_size: int,
                        features: np.ndarray | None = None) -> Path | None:
    """Write ``reference_set.npz`` beside the run's final model: every training image's painter, path, thumbnail
    and feature vector (``features``, or the saved model's ``feature_vectors`` of ``images``). Returns None, and
    writes nothing, for a model with no feature space to compare in."""
    from PIL import Image

    from deeppainter.runs import atomic_write_bytes

    if features is None:
        features = load_final_model(run_dir).feature_vectors(images)
    if features is None:
        print("reference set: this model has no feature space to compare paintings in; none written")
        return None
    thumbnails, offsets = [], [0]
    for image in images:
        thumbnail = Image.fromarray(np.asarray(image))
        if thumbnail.width > thumbnail_size:
            thumbnail = thumbnail.resize((thumbnail_size, thumbnail_size), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        thumbnail.save(buffer, format="JPEG", quality=85)
        thumbnails.append(buffer.getvalue())
        offsets.append(offsets[-1] + len(thumbnails[-1]))
    buffer = io.BytesIO()
    np.savez(buffer, painters=np.asarray(list(painters), dtype=str), paths=np.asarray(list(paths), dtype=str),
             features=np.asarray(features, dtype="float32"), offsets=np.asarray(offsets, dtype="int64"),
             thumbnails=np.frombuffer(b"".join(thumbnails), dtype=np.uint8))
    path = Path(run_dir) / REFERENCE_FILE
    atomic_write_bytes(path, buffer.getvalue())
    print(f"reference set ({len(thumbnails)} training images, {np.shape(features)[1]}-d features): {path}")
    return path


def load_reference_set(run_dir: Path) -> ReferenceSet | None:
    """The run's reference set, or None where the final model carries none."""
    path = Path(run_dir) / REFERENCE_FILE
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as stored:
        return ReferenceSet(stored["painters"], stored["paths"], stored["features"], stored["thumbnails"],
                            stored["offsets"])
