"""Interrupted training resumes to the result of an uninterrupted run (kills are SIGKILL, not exceptions)."""
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


def test_cv10_killed_mid_fold_resumes_to_the_uninterrupted_predictions(synthetic_painters, smoke_encoder, tmp_path):
    def command(out):
        return [sys.executable, "-m", "deeppainter.cv10", "--preset", "smoke", "--data", str(synthetic_painters),
                "--encoder", str(smoke_encoder), "--out", str(out), "--set", "classifier.epochs=40",
                "--set", "classifier.patience=40"]

    subprocess.run(command(tmp_path / "whole"), cwd=ROOT, env=_env(), check=True, capture_output=True, timeout=300)
    out = tmp_path / "killed"
    proc = subprocess.Popen(command(out), cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not list(out.glob("*_cv10_*/folds/fold00.csv")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # fold 1 is being trained
    proc.wait()
    (run_dir,) = out.glob("*_cv10_*")
    assert not (run_dir / "DONE").exists() and not (run_dir / "folds" / "fold02.csv").exists()
    done = subprocess.run(command(out), cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stdout and list(out.glob("*_cv10_*")) == [run_dir]
    (whole,) = (tmp_path / "whole").glob("*_cv10_*")
    expected, resumed = (pd.read_csv(d / "predictions.csv").sort_values("path").reset_index(drop=True)
                         for d in (whole, run_dir))
    assert (expected["fold"] == resumed["fold"]).all() and (expected["predicted"] == resumed["predicted"]).all()
    columns = [c for c in expected if c.startswith("prob_")]
    assert np.abs(expected[columns].to_numpy() - resumed[columns].to_numpy()).max() <= 1e-6
