"""Both paper presets end to end at 256 px on a shrunken set (slow: minutes, several GB of memory).

Per preset, the full-size models (replication2021: 3,016,403-parameter autoencoder, Dense 300 on
819,200 features; paper2016: 100/200 filters with max-unpooling, FC 400 on 819,200): pre-training
(1 epoch on 8 synthetic paintings), 2-fold cv10 on 4 embedded-sample paintings per painter (1 head
epoch) with ``--save-final-model``, ``predict`` on the final model, and a cv10 killed with SIGKILL
during its second fold that resumes to the uninterrupted run's predictions. Run with ``-m slow``.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deeppainter.data.datasets import sample_dir
from deeppainter.data.synthetic import make_synthetic_painters
from deeppainter.runs import read_json
from test_resume import kill_after_first_fold

ROOT = Path(__file__).resolve().parent.parent
SHRUNKEN = ["--set", "cv.folds=2", "--set", "classifier.epochs=1", "--set", "data.max_per_class=4",
            "--set", "data.min_per_class=2"]


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _run(args, timeout=900):
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


def _predictions(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "predictions.csv").sort_values("path").reset_index(drop=True)


@pytest.mark.slow
@pytest.mark.parametrize("preset, features, first_dense", [("replication2021", 819_200, 300),
                                                            ("paper2016", 819_200, 400)])
def test_paper_preset_end_to_end_at_256px(preset, features, first_dense, tmp_path):
    pool = make_synthetic_painters(tmp_path / "pool", painters=2, per_painter=4, seed=3, min_side=160, max_side=320)
    _run(["deeppainter.pretrain_ae", "--preset", preset, "--data", str(pool), "--out", str(tmp_path / "pretrain"),
          "--set", "pretrain.epochs=1", "--set", "pretrain.batch_size=4"])
    (encoder_run,) = (tmp_path / "pretrain").glob(f"*_pretrain_ae_{preset}_seed0")
    assert (encoder_run / "DONE").exists()

    def cv10(out, *extra):
        return ["deeppainter.cv10", "--preset", preset, "--data", str(sample_dir()), "--encoder", str(encoder_run),
                "--out", str(out), *SHRUNKEN, *extra]

    _run(cv10(tmp_path / "whole", "--save-final-model"))
    (whole,) = (tmp_path / "whole").glob(f"*_cv10_{preset}_seed0")
    images = pd.read_csv(whole / "images.csv")
    assert len(images) == 12 and images["label"].value_counts().tolist() == [4, 4, 4]
    assert _predictions(whole)["fold"].nunique() == 2 and (whole / "DONE").exists()
    final = read_json(whole / "final_model.json")
    assert final["image_size"] == 256
    assert (features, first_dense) in weight_shapes(whole / final["path"])  # the paper's head, in the file

    painting = sorted((sample_dir() / "rembrandt").glob("*.jpg"))[0]
    printed = _run(["deeppainter.predict", "--run", str(whole), str(painting), "--out", str(tmp_path / "predict")])
    (table,) = (tmp_path / "predict").glob("predictions_*.csv")
    predicted = pd.read_csv(table)
    probabilities = predicted[[c for c in predicted if c.startswith("prob_")]].to_numpy()
    assert probabilities.shape == (1, 3) and abs(probabilities.sum() - 1) < 1e-4
    assert predicted["top1"].iloc[0] in printed

    out = tmp_path / "killed"
    killed = kill_after_first_fold([sys.executable, "-m", *cv10(out)], out, timeout=900)
    assert not (killed / "DONE").exists() and not (killed / "folds" / "fold01.csv").exists()
    assert "resuming" in _run(cv10(out))
    assert list(out.glob("*_cv10_*")) == [killed] and (killed / "DONE").exists()
    expected, resumed = _predictions(whole), _predictions(killed)
    assert (expected[["path", "fold", "predicted"]] == resumed[["path", "fold", "predicted"]]).all().all()
    columns = [c for c in expected if c.startswith("prob_")]
    assert np.abs(expected[columns].to_numpy() - resumed[columns].to_numpy()).max() <= 1e-6


def weight_shapes(path: Path) -> set[tuple[int, ...]]:
    """The shapes of every array in a saved ``.keras`` model (a zip holding ``model.weights.h5``), without Keras."""
    import io
    import zipfile

    import h5py

    with zipfile.ZipFile(path) as archive:
        data = archive.read("model.weights.h5")
    shapes = set()
    with h5py.File(io.BytesIO(data), "r") as weights:
        weights.visititems(lambda name, item: shapes.add(item.shape) if isinstance(item, h5py.Dataset) else None)
    return shapes
