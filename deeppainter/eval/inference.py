"""A trained model (cv10 --save-final-model) and the standardisation it was trained with, for predict, evaluate and explain."""
from __future__ import annotations

import pickle
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deeppainter.data.datasets import IMAGE_SUFFIXES
from deeppainter.errors import UserError
from deeppainter.progress import progress as progress_bar
from deeppainter.runs import read_json

FINAL_JSON = "final_model.json"


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
    return FinalModel(run_dir, meta["model"], list(meta["classes"]), int(meta["image_size"]), meta["mode"],
                      tuple(meta["pad_color"]), model, bool(meta.get("trim_bars", False)))


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


def standardise_files(paths: list[Path], final: FinalModel, progress: bool = True) -> tuple[np.ndarray, list[str]]:
    """uint8 images of the readable files, and one reason per path ("" = read fine)."""
    from deeppainter.data.standardize import UnreadableImage, load_standardized

    data_cfg = final.data_config()
    images, reasons = [], []
    for path in progress_bar(paths, desc=f"standardising to {data_cfg.image_size}px", unit="img", enabled=progress):
        try:
            if not Path(path).is_file():
                raise UnreadableImage(path, "no such file")
            images.append(load_standardized(path, data_cfg.image_size, data_cfg.mode, data_cfg.pad_color,
                                            data_cfg.trim_bars))
            reasons.append("")
        except (UnreadableImage, OSError) as exc:
            reasons.append(getattr(exc, "reason", str(exc)))
    size = final.image_size
    return (np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)), reasons
