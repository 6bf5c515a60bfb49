"""Interrupted training resumes to the result of an uninterrupted run (kills are SIGKILL, not exceptions)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def kill_after_first_fold(command: list[str], out: Path, timeout: float = 240) -> Path:
    """Start ``command`` (a cv10 writing under ``out``) and SIGKILL it once fold 0 is written, while fold 1 is
    being trained; returns the run folder it left."""
    proc = subprocess.Popen(command, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while not list(out.glob("*_cv10_*/folds/fold00.csv")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (run_dir,) = out.glob("*_cv10_*")
    return run_dir


def test_cv10_killed_mid_fold_resumes_to_the_uninterrupted_predictions(synthetic_painters, smoke_encoder, tmp_path):
    def command(out):
        return [sys.executable, "-m", "deeppainter.cv10", "--preset", "smoke", "--data", str(synthetic_painters),
                "--encoder", str(smoke_encoder), "--out", str(out), "--set", "classifier.epochs=40",
                "--set", "classifier.patience=40"]

    subprocess.run(command(tmp_path / "whole"), cwd=ROOT, env=_env(), check=True, capture_output=True, timeout=300)
    out = tmp_path / "killed"
    run_dir = kill_after_first_fold(command(out), out)
    assert not (run_dir / "DONE").exists() and not (run_dir / "folds" / "fold02.csv").exists()
    done = subprocess.run(command(out), cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stdout and list(out.glob("*_cv10_*")) == [run_dir]
    (whole,) = (tmp_path / "whole").glob("*_cv10_*")
    expected, resumed = (pd.read_csv(d / "predictions.csv").sort_values("path").reset_index(drop=True)
                         for d in (whole, run_dir))
    assert (expected["fold"] == resumed["fold"]).all() and (expected["predicted"] == resumed["predicted"]).all()
    columns = [c for c in expected if c.startswith("prob_")]
    assert np.abs(expected[columns].to_numpy() - resumed[columns].to_numpy()).max() <= 1e-6


def _encoder_weights(run_dir: Path) -> dict:
    """Every array in ``encoder.keras`` (a zip holding ``model.weights.h5``), read without Keras."""
    import io
    import zipfile

    import h5py

    with zipfile.ZipFile(run_dir / "encoder.keras") as archive:
        data = archive.read("model.weights.h5")
    arrays = {}
    with h5py.File(io.BytesIO(data), "r") as weights:
        weights.visititems(lambda name, item: arrays.update({name: item[()]}) if isinstance(item, h5py.Dataset)
                           else None)
    return arrays


def _finished_epochs(run_dir: Path) -> int:
    """Epochs in the run's last checkpoint (written atomically, so it is always whole), 0 if none yet."""
    path = run_dir / "resume" / "last_epoch.npz"
    if not path.exists():
        return 0
    with np.load(path) as checkpoint:
        return json.loads(str(checkpoint["meta"]))["epochs"]


def test_pretrain_ae_killed_mid_epoch_resumes_to_the_uninterrupted_run(synthetic_painters, tmp_path):
    # A step size that makes the validation loss turn: the uninterrupted run has its best epoch at 3, early
    # stopping (patience 2) ends it after epoch 5. Killed during epoch 4, the resumed run must know both
    # (early stopping's best and wait count, the best-only checkpoint's best value) to do the same.
    def command(out):
        return [sys.executable, "-m", "deeppainter.pretrain_ae", "--preset", "smoke", "--data",
                str(synthetic_painters), "--out", str(out), "--set", "pretrain.epochs=12",
                "--set", "pretrain.learning_rate=0.05", "--set", "pretrain.patience=2"]

    # The uninterrupted reference runs alongside the killed run and its resumption (wall time, not numbers).
    whole_log = tmp_path / "whole.log"
    with open(whole_log, "w") as log:
        whole = subprocess.Popen(command(tmp_path / "whole"), cwd=ROOT, env=_env(), stdout=log, stderr=log)
    out = tmp_path / "killed"
    proc = subprocess.Popen(command(out), cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while (not any(_finished_epochs(d) >= 3 for d in out.glob("*_pretrain_ae_*")) and time.monotonic() < deadline
           and proc.poll() is None):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # 3 epochs done and checkpointed: epoch 4 is being trained
    proc.wait()
    (run_dir,) = out.glob("*_pretrain_ae_*")
    finished = _finished_epochs(run_dir)
    assert not (run_dir / "DONE").exists() and finished in (3, 4)  # 4: the poll was late by an epoch
    done = subprocess.run(command(out), cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert f"resuming pre-training after epoch {finished}/12" in done.stdout
    assert list(out.glob("*_pretrain_ae_*")) == [run_dir]
    assert whole.wait(timeout=300) == 0, whole_log.read_text()
    (reference,) = (tmp_path / "whole").glob("*_pretrain_ae_*")
    history = pd.read_csv(reference / "history.csv")
    assert len(history) == 5 and history["val_loss"].idxmin() == 2  # the scenario above still holds
    trained = [int(line.split()[1].split("/")[0]) for line in done.stdout.splitlines() if line.startswith("Epoch ")]
    assert trained == list(range(finished + 1, 6))  # no finished epoch trained again, and none past the stop
    assert (run_dir / "DONE").exists() and not (run_dir / "resume").exists()
    # Bit-identical, no tolerance: same batches, masks, optimizer and callback state; CPU kernels are deterministic.
    assert (run_dir / "history.csv").read_bytes() == (reference / "history.csv").read_bytes()
    timing = {"wall_seconds", "images_per_second"}
    expected, resumed = ({k: v for k, v in json.loads((d / "metrics.json").read_text()).items() if k not in timing}
                         for d in (reference, run_dir))
    assert resumed == expected
    expected, resumed = _encoder_weights(reference), _encoder_weights(run_dir)
    assert expected.keys() == resumed.keys() and expected
    assert all(np.array_equal(expected[name], resumed[name]) for name in expected)
