"""The model code runs unchanged under JAX, and trains data-parallel when several devices are visible.

The pre-training runs once, data-parallel over two virtual CPU devices (a superset of the
single-device JAX path); cv10 then runs under JAX on a single device with that encoder.

Each check spawns its own ``KERAS_BACKEND=jax`` interpreter (the backend is fixed at import time).
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deeppainter.runs import read_json

REPO_ROOT = Path(__file__).resolve().parent.parent

FAST = ["--preset", "smoke", "--set", "pretrain.epochs=1", "--set", "classifier.epochs=2"]


def run_jax(args, tmp_path, **env):
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    environment = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": path, **env}
    result = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=tmp_path,
                            env=environment, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def data_parallel_pretraining(synthetic_painters, tmp_path_factory):
    """One smoke pre-training under JAX with two virtual CPU devices; batch 15 leaves a ragged last batch."""
    tmp_path = tmp_path_factory.mktemp("jax")
    printed = run_jax(["deeppainter.pretrain_ae", *FAST, "--set", "pretrain.batch_size=15",
                       "--data", str(synthetic_painters), "--out", str(tmp_path / "runs")], tmp_path,
                      XLA_FLAGS="--xla_force_host_platform_device_count=2")
    (run_dir,) = (tmp_path / "runs").glob("*_pretrain_ae_smoke_seed0")
    return run_dir, printed


def test_data_parallel_pretraining_over_two_jax_devices(data_parallel_pretraining):
    run_dir, printed = data_parallel_pretraining
    assert "DataParallel over 2 devices" in printed
    distribution = read_json(run_dir / "distribution.json")
    assert distribution["strategy"] == "DataParallel" and distribution["device_count"] == 2
    env = read_json(run_dir / "env.json")
    assert env["backend"] == "jax" and env["platform_backend"] == "cpu" and len(env["devices"]) == 2
    assert (run_dir / "metrics.json").exists() and (run_dir / "DONE").exists()


def test_cv10_under_jax_with_the_jax_encoder(data_parallel_pretraining, synthetic_painters, tmp_path):
    pretrain_dir, _ = data_parallel_pretraining
    run_jax(["deeppainter.cv10", *FAST, "--set", "cv.folds=2", "--data", str(synthetic_painters),
             "--out", str(tmp_path), "--encoder", str(pretrain_dir)], tmp_path)
    (run_dir,) = tmp_path.glob("*_cv10_smoke_seed0")
    assert (run_dir / "metrics.json").exists() and (run_dir / "DONE").exists()
    env = read_json(run_dir / "env.json")
    assert env["backend"] == "jax" and env["devices"]
