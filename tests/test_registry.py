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
    assert args.overrides == ["data.image_size=224"]
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
