import pytest

from deeppainter import config
from deeppainter.config import ConfigError, build_config


def test_presets_exist_and_validate():
    for name in ("paper2016", "replication2021", "cpu", "smoke"):
        config.validate(config.get_preset(name))


def test_override_types_and_nesting():
    cfg = build_config("cpu", ["autoencoder.filters=16,32", "pretrain.learning_rate=0.05",
                               "classifier.fine_tune=true", "data.classes=a,b"])
    assert cfg.autoencoder.filters == (16, 32)
    assert cfg.pretrain.learning_rate == 0.05
    assert cfg.classifier.fine_tune is True
    assert cfg.data.classes == ("a", "b")


@pytest.mark.parametrize("assignment, fragment", [
    ("autoencoder.filterz=3", "unknown key 'autoencoder.filterz'"),
    ("model.filterz=3", "unknown key 'model.filterz'; valid keys: data.image_size"),
    ("nosection.x=1", "valid keys"),
    ("pretrain.epochs=three", "expected int"),
    ("classifier.fine_tune=maybe", "expected true or false"),
    ("autoencoder.unpooling=bilinear", "autoencoder.unpooling='bilinear' is not one of"),
    ("data.image_size=66", "divisible by 4"),
    ("noequals", "expected key=value"),
    ("classifier.feature_scales=1,1", "distinct integers"),
    ("classifier.feature_scales=1,64", "at least 8 pixels"),
    ("classifier.svm_power=log", "is not one of"),
])
def test_bad_overrides_give_one_line_errors(assignment, fragment):
    with pytest.raises(ConfigError) as error:
        build_config("cpu", [assignment])
    assert fragment in str(error.value)
    assert "\n" not in str(error.value)


def test_the_old_model_section_still_sets_the_autoencoder_with_one_warning(capsys):
    """``model`` was renamed ``autoencoder`` (issue #23); ``--set model.*`` stays one release."""
    config._warn_renamed.cache_clear()  # once per process: another test may have warned already
    cfg = build_config("cpu", ["model.unpooling=maxunpool", "model.unpooling=maxunpool"])
    assert cfg.autoencoder.unpooling == "maxunpool"
    assert config.changes_from_preset(cfg, "cpu") == {"autoencoder.unpooling": "maxunpool"}
    assert capsys.readouterr().err == ("warning: --set model.unpooling is deprecated and goes in the next release; "
                                       "use --set autoencoder.unpooling\n")
    with pytest.raises(ConfigError) as error:
        build_config("cpu", ["model.filterz=3"])
    assert "autoencoder.filters" in str(error.value) and "model.filters" not in str(error.value)


def test_old_config_json_with_a_model_section_reads_into_the_autoencoder():
    old = config.to_dict(build_config("cpu", ["autoencoder.unpooling=maxunpool"]))
    old["model"] = old.pop("autoencoder")
    assert config.from_dict(old, "cpu").autoencoder.unpooling == "maxunpool"


def test_the_rename_keeps_the_fingerprint_of_a_committed_model_unpooling_run():
    """The committed [P16]-unpooling run was made with ``--set model.unpooling=maxunpool``: the same settings under
    the new name must find it (finished runs are reused, unfinished ones resumed, by fingerprint)."""
    from pathlib import Path

    from deeppainter import runs

    record = runs.read_json(Path(__file__).resolve().parent.parent
                            / "results/runs/20261123-104446_cv10_cpu_seed0/config.json")
    assert record["config"]["model"]["unpooling"] == "maxunpool"  # recorded under the old section name
    arguments = {**record["arguments"], "seed": record["seed"]}
    for cfg in (build_config("cpu", ["autoencoder.unpooling=maxunpool"]), config.from_dict(record["config"], "cpu")):
        assert runs.fingerprint("cv10", "cpu", cfg, arguments) == record["fingerprint"] == "07763de011b3a4ba"


def test_unknown_preset():
    with pytest.raises(ConfigError, match="choose one of"):
        build_config("paper2017")


def test_round_trip_through_dict():
    cfg = build_config("paper2016")
    assert config.from_dict(config.to_dict(cfg)) == cfg


def test_runs_started_in_the_same_second_get_separate_folders(tmp_path, monkeypatch):
    import datetime
    import types

    from deeppainter import runs

    frozen = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)

    class FrozenClock(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return frozen

    # Patch the clock the runs module sees only (not the datetime module every library shares).
    monkeypatch.setattr(runs, "_dt", types.SimpleNamespace(datetime=FrozenClock, timezone=datetime.timezone))
    cfg = build_config("smoke")
    first, _ = runs.open_run("cv10", "smoke", 0, cfg, {"model": "a"}, tmp_path, resume=False)
    second, _ = runs.open_run("cv10", "smoke", 0, cfg, {"model": "a"}, tmp_path, resume=False)
    assert first.name == "20260102-030405_cv10_smoke_seed0"
    assert second.name == "20260102-030405-2_cv10_smoke_seed0"


def _numeric_fields():
    """Every int / float (or tuple of them) field of every config section, as ``section.name``."""
    import dataclasses
    import typing

    cfg = config.Config()
    for section in dataclasses.fields(cfg):
        hints = typing.get_type_hints(type(getattr(cfg, section.name)))
        for f in dataclasses.fields(getattr(cfg, section.name)):
            hint = hints[f.name]
            item = typing.get_args(hint)[0] if typing.get_origin(hint) is tuple else hint
            if item in (int, float):
                yield f"{section.name}.{f.name}", hint, item


def _out_of_range_values(key, item):
    low, high, low_open, high_open = config.RANGES[key]
    bad = [low if low_open else low - (1 if item is int else 0.01)]
    if high is not None:
        bad.append(high if high_open else high + (1 if item is int else 0.01))
    return bad


def test_every_numeric_field_is_range_checked():
    import typing

    fields = list(_numeric_fields())
    assert len(fields) > 25
    for key, hint, item in fields:
        assert key in config.RANGES, f"{key} has no range in config.RANGES"
        for bad in _out_of_range_values(key, item):
            cfg = config.get_preset("smoke")
            section, name = key.split(".")
            default = getattr(getattr(cfg, section), name)
            value = (tuple(default[:-1]) + (bad,) if default else (bad,)) if typing.get_origin(hint) is tuple \
                else bad
            setattr(getattr(cfg, section), name, value)
            with pytest.raises(ConfigError) as error:
                config.validate(cfg)
            assert key in str(error.value) and "\n" not in str(error.value), (key, bad, str(error.value))


@pytest.mark.parametrize("assignment, fragment", [
    ("classifier.dropout=1.5", "classifier.dropout=1.5 is out of range: it must be [0, 1)"),
    ("classifier.batch_size=0", "classifier.batch_size=0 is out of range: it must be ≥ 1"),
    ("cv.bootstrap=0", "cv.bootstrap=0 is out of range"),
    ("classifier.val_fraction=0.9", "classifier.val_fraction=0.9 is out of range: it must be [0, 0.5]"),
    ("data.image_size=0", "data.image_size=0 is out of range: it must be ≥ 8"),
    ("pretrain.learning_rate=0", "must be > 0"),
    ("autoencoder.filters=8,0", "autoencoder.filters=8,0 is out of range: every entry must be ≥ 1"),
])
def test_out_of_range_overrides_name_the_key_and_range(assignment, fragment):
    with pytest.raises(ConfigError) as error:
        build_config("smoke", [assignment])
    assert fragment in str(error.value)


def test_zero_epochs_of_pretraining_stays_valid():
    build_config("smoke", ["pretrain.epochs=0", "data.max_per_class=0", "pretrain.patience=0"])


@pytest.mark.parametrize("assignment", ["classifier.dropout=1.5", "classifier.batch_size=0", "cv.bootstrap=0",
                                        "classifier.val_fraction=0.9"])
def test_out_of_range_values_exit_cleanly_without_a_run_folder(tmp_path, assignment):
    import subprocess
    import sys

    out = tmp_path / "runs"
    out.mkdir()
    result = subprocess.run([sys.executable, "-m", "deeppainter.cv10", "--preset", "smoke", "--out", str(out),
                             "--set", assignment], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and assignment.split("=")[0] in lines[0], lines
    assert list(out.iterdir()) == []
