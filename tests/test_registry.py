import importlib
import subprocess
import sys

from deeppainter.models import registry


def test_every_registered_model_implements_the_protocol():
    for name in registry.list_models():
        spec = registry.get_model(name)
        module_name, _, class_name = spec.target.partition(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        methods = ("from_context", "fit_predict") + (("save_final",) if spec.final_format else ())
        for method in methods:
            assert callable(getattr(cls, method, None)), f"{name}: {cls.__name__} has no {method}"
        assert spec.help and spec.group


def test_stack_needs_an_encoder_only_when_a_member_does():
    from deeppainter.config import build_config

    stack = registry.get_model("stack")
    assert stack.encoder_needed(build_config("smoke"))  # default members include cae-svm
    assert not stack.encoder_needed(build_config("smoke", ["classifier.stack_members=features-svm,pixels-svm"]))


def test_cv10_lists_the_registry_without_importing_keras():
    code = ("import sys; from deeppainter.cli import cv10; cv10.main(['models']); "
            "assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    listed = [line.split()[0] for line in done.stdout.splitlines()]
    assert listed == registry.list_models()


def test_a_models_recipe_comes_before_the_users_overrides():
    from deeppainter.cli import cv10

    args = cv10.parse_args(["--model", "effnet-lite0-logreg"])
    assert args.overrides == ["data.image_size=224", "classifier.probe_c=0.0001,0.001,0.01,0.1,1,10"]
    args = cv10.parse_args(["--model", "effnet-lite0-logreg", "--set", "data.image_size=128"])
    assert args.overrides[-1] == "data.image_size=128"  # applied last, so it wins


def test_help_and_a_bad_value_never_load_keras():
    """--help of every command, and cv10's one-line error for a bad --set, come before Keras loads (fast, quiet)."""
    code = ("import sys, contextlib, io\n"
            "from deeppainter.cli import bench, cv10, evaluate, explain, predict, pretrain_ae, report, scrape, serve, "
            "standardize\n"
            "for command in (bench, cv10, evaluate, explain, predict, pretrain_ae, report, scrape, serve, standardize):\n"
            "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "        command.main(['--help'])\n"
            "with contextlib.suppress(SystemExit):\n"
            "    cv10.main(['--set', 'classifier.dropout=1.5'])\n"
            "assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules, 'Keras was imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "error: classifier.dropout=1.5 is out of range: it must be [0, 1)"


def mean_colour(images):
    """A toy featurizer's function: each image's mean R, G and B."""
    return images.reshape(len(images), -1, 3).mean(axis=1)


def test_a_toy_featurizer_and_head_run_through_cv10_from_one_registration_each(monkeypatch, tmp_path):
    import numpy as np
    from sklearn.naive_bayes import GaussianNB
    from sklearn.pipeline import Pipeline

    from deeppainter import cv10
    from deeppainter.classical import heads
    from deeppainter.models import featurizers
    from deeppainter.runs import read_json

    # the tables are module dicts: work on copies so the toy stays in this test
    monkeypatch.setattr(featurizers, "_FEATURIZERS", dict(featurizers._FEATURIZERS))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(heads, "HEADS", dict(heads.HEADS))

    featurizers.register_featurizer(featurizers.Featurizer("toy-mean-colour", "numpy", f"{__name__}:mean_colour",
                                                           output_dim=3, cache="none"))
    heads.register_head("toy-bayes", lambda ccfg, seed, blocks: Pipeline([("bayes", GaussianNB())]))
    registry.register_model("toy", featurizer="toy-mean-colour", head="toy-bayes", group="study", help="a toy")

    cv10.main(["--preset", "smoke", "--model", "toy", "--out", str(tmp_path), "--no-with-baselines"])
    (run_dir,) = tmp_path.glob("*_cv10_*")
    folds = [read_json(f) for f in sorted((run_dir / "folds").glob("fold*.json"))]
    assert [f["feature_dim"] for f in folds] == [3, 3, 3] and {f["featurizer"] for f in folds} == {"toy-mean-colour"}
    assert read_json(run_dir / "metrics.json")["accuracy_mean"] > 0.4  # chance is 1/3 on the embedded sample
    assert np.isfinite(read_json(run_dir / "metrics.json")["f1_mean"])


def test_stack_members_must_be_registered_featurizer_head_models():
    import pytest

    from deeppainter.config import build_config
    from deeppainter.errors import UserError

    stack = registry.get_model("stack")
    with pytest.raises(UserError, match="unknown model 'no-such-model'"):
        stack.encoder_needed(build_config("smoke", ["classifier.stack_members=features-svm,no-such-model"]))
    with pytest.raises(UserError, match="cae trains end to end"):
        stack.encoder_needed(build_config("smoke", ["classifier.stack_members=features-svm,cae"]))
    # any featurizer + head model is a member, including those the old fixed list left out
    assert not stack.encoder_needed(build_config("smoke", ["classifier.stack_members=pretrained-concat-logreg,rbm-svm"]))


def test_deprecated_model_names_still_run_with_a_warning(capsys):
    from deeppainter.cli import cv10

    assert registry.get_model("convnext_tiny").name == "convnext-tiny-finetune"
    assert registry.get_model("convnext_tiny").network == "convnext_tiny"
    assert cv10.parse_args(["--model", "efficientnet-lite0"]).model == "effnet-lite0-finetune-all"
    assert "'efficientnet-lite0' is deprecated" in capsys.readouterr().err
    assert "efficientnet-lite0" not in registry.list_models()  # --help lists the current names only
