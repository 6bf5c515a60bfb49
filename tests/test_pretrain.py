import subprocess
import sys

import pandas as pd
import pytest

from deeppainter.cli import pretrain_ae
from deeppainter.runs import read_json


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "deeppainter.pretrain_ae", *args], capture_output=True, text=True)


def test_smoke_pretraining_end_to_end(synthetic_painters, tmp_path):
    pretrain_ae.main(["--preset", "smoke", "--data", str(synthetic_painters), "--out", str(tmp_path),
                      "--set", "pretrain.epochs=3", "--set", "pretrain.learning_rate=0.01",
                      "--set", "pretrain.lr_decay=0.5"])
    (run_dir,) = tmp_path.glob("*_pretrain_ae_smoke_seed0")
    for name in ("config.json", "env.json", "history.csv", "metrics.json", "loss.png", "reconstructions.png",
                 "autoencoder.keras", "encoder.keras", "DONE"):
        assert (run_dir / name).exists(), name
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["val_mse_best"] < metrics["val_mse_untrained"]
    history = pd.read_csv(run_dir / "history.csv")
    assert len(history) == 3
    assert "learning_rate" in history.columns  # the scheduler runs before CSVLogger
    assert list(history["learning_rate"]) == pytest.approx([0.01, 0.005, 0.0025], rel=1e-5)


def test_resume_continues_from_saved_epoch(synthetic_painters, tmp_path):
    import keras

    class StopAfterTwoEpochs(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt  # a crash after epoch 2 was saved

    original_fit = keras.Model.fit

    def crashing_fit(self, *args, callbacks=(), **kwargs):
        return original_fit(self, *args, callbacks=[*callbacks, StopAfterTwoEpochs()], **kwargs)

    args = ["--preset", "smoke", "--data", str(synthetic_painters), "--out", str(tmp_path),
            "--set", "pretrain.epochs=4", "--set", "pretrain.patience=10"]
    keras.Model.fit = crashing_fit
    try:
        with pytest.raises(SystemExit):
            pretrain_ae.main(args)
    finally:
        keras.Model.fit = original_fit
    (run_dir,) = tmp_path.glob("*_pretrain_ae_*")
    assert len(pd.read_csv(run_dir / "history.csv")) == 2 and not (run_dir / "DONE").exists()
    pretrain_ae.main(args)
    assert list(tmp_path.glob("*_pretrain_ae_*")) == [run_dir]  # same folder, resumed
    history = pd.read_csv(run_dir / "history.csv")
    assert list(history["epoch"]) == [0, 1, 2, 3]


def test_dry_run_prints_golden_count():
    result = run_cli("--preset", "replication2021", "--dry-run")
    assert result.returncode == 0
    assert "3,016,403" in result.stdout


@pytest.mark.parametrize("make_args, message", [
    (lambda d: ["--data", str(d / "empty")], "no images found"),
    (lambda d: ["--data", str(d / "notes")], "no images found"),
    (lambda d: ["--set", "data.image_size=30"], "divisible by 4"),
    (lambda d: ["--preset", "paper2017"], "invalid choice"),
])
def test_bad_inputs_give_one_line_errors(tmp_path, make_args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("no images here")
    result = run_cli("--preset", "smoke", "--out", str(tmp_path / "runs"), *make_args(tmp_path))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_pretraining_identity_keeps_what_changes_the_pixels_and_drops_classifier_settings():
    from deeppainter.config import build_config, changes_from_preset
    from deeppainter.train.pretrain import pretraining_identity

    cfg = build_config("cpu", ["data.trim_bars=true", "data.mode=crop", "data.classes=a,b", "data.max_per_class=9",
                               "classifier.head=300,300", "pretrain.epochs=2"])
    assert changes_from_preset(pretraining_identity(cfg, "cpu"), "cpu") == {
        "data.mode": "crop", "data.trim_bars": True, "pretrain.epochs": 2}


def test_the_pool_cap_draws_what_pandas_sample_drew():
    """The committed pool-size runs capped the pool with DataFrame.sample; pretrain_ae and in-fold share the draw."""
    import pandas as pd

    from deeppainter.train.pretrain import capped_pool

    table = pd.DataFrame({"path": [f"a/{i:03d}.jpg" for i in range(50)]})
    kept = table.iloc[capped_pool(50, 12, seed=3)]
    assert list(kept["path"]) == list(table.sample(12, random_state=3).sort_values("path")["path"])
    assert list(capped_pool(50, 0, seed=3)) == list(range(50)) == list(capped_pool(50, 50, seed=3))
