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
