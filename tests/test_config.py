import pytest

from deeppainter import config
from deeppainter.config import ConfigError, build_config


def test_presets_exist_and_validate():
    for name in ("paper2016", "replication2021", "cpu", "smoke"):
        config.validate(config.get_preset(name))


def test_override_types_and_nesting():
    cfg = build_config("cpu", ["model.filters=16,32", "pretrain.learning_rate=0.05",
                               "classifier.fine_tune=true", "data.classes=a,b"])
    assert cfg.model.filters == (16, 32)
    assert cfg.pretrain.learning_rate == 0.05
    assert cfg.classifier.fine_tune is True
    assert cfg.data.classes == ("a", "b")


@pytest.mark.parametrize("assignment, fragment", [
    ("model.filterz=3", "unknown key 'model.filterz'"),
    ("nosection.x=1", "valid keys"),
    ("pretrain.epochs=three", "expected int"),
    ("classifier.fine_tune=maybe", "expected true or false"),
    ("model.unpooling=bilinear", "is not one of"),
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
