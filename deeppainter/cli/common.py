"""Command-line options shared by every entry point, and the one-line error convention."""
from __future__ import annotations

import argparse
import functools
import logging
import sys
from pathlib import Path

from deeppainter import config as config_lib
from deeppainter.errors import UserError
from deeppainter.runs import DEFAULT_RUNS_ROOT


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Says each default once: appended only where the help text does not already name it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default in (None, False, "", [], argparse.SUPPRESS):
            return text
        if action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            return f"{text} (default: %(default)s)"
        return text


def plain(docstring: str) -> str:
    """A module docstring as help text: without reStructuredText's double backticks."""
    return docstring.replace("``", "")


def make_parser(prog: str, description: str, default_preset: str = "cpu", **kwargs) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m deeppainter.{prog}", description=plain(description),
                                     formatter_class=HelpFormatter, **kwargs)
    common = parser.add_argument_group("common options")
    common.add_argument("--preset", default=default_preset, choices=sorted(config_lib.PRESETS),
                        help="named configuration: paper2016 / replication2021 (paper size, GPU), "
                             "cpu (laptop-sized), smoke (seconds, for tests)")
    common.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config value, e.g. --set autoencoder.filters=32,64 "
                             "(repeatable; unknown keys are an error)")
    common.add_argument("--seed", type=int, default=0, help="seed for folds, splits, masks and weights")
    common.add_argument("--out", type=Path, default=DEFAULT_RUNS_ROOT,
                        help="folder that receives the run folder <time>_<command>_<preset>_seed<k>/")
    return parser


def add_fresh_option(parser: argparse.ArgumentParser) -> None:
    """``--fresh``: a new run folder even where the same command ran (or half ran) here before."""
    parser.add_argument("--fresh", action="store_true",
                        help="start a new run folder instead of resuming an unfinished run of this same command "
                             "or reusing a finished one (run folders committed in git are never reused)")


class _DeprecatedRunAlias(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        print(f"warning: {option_string} RUN_DIR is deprecated and goes in the next release; use --run RUN_DIR",
              file=sys.stderr)
        setattr(namespace, self.dest, values)


# The model shipped in the package (deeppainter/ready_model/PROVENANCE.md): what predict, evaluate and serve ask
# when no --run is given.
READY_MODEL = Path(__file__).resolve().parent.parent / "ready_model"


def add_run_option(parser: argparse.ArgumentParser, ready_default: bool = False) -> None:
    """``--run RUN_DIR``: a cv10 run folder with a final model (``--model`` stays one release as an alias);
    ``ready_default``: the shipped ready model when it is not given."""
    group = parser.add_mutually_exclusive_group(required=not ready_default)
    group.add_argument("--run", type=Path, default=READY_MODEL if ready_default else None,
                       help="a cv10 run folder made with --save-final-model (holds final_model.json)"
                            + ("; default: the ready model shipped in the package (van Gogh, Rembrandt, Renoir; "
                               "deeppainter/ready_model/PROVENANCE.md)" if ready_default else ""))
    group.add_argument("--model", type=Path, dest="run", action=_DeprecatedRunAlias, help=argparse.SUPPRESS)


def resolve_config(args: argparse.Namespace) -> config_lib.Config:
    return config_lib.build_config(args.preset, args.overrides)


class _NoRetracingNotice(logging.Filter):
    """TensorFlow warns when the predict steps of several new models are traced; a new model per fold
    (or per feature extractor) is the point, not a mistake."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


def import_keras_quietly():
    """Import Keras (and TensorFlow) once with the C++ start-up lines (absl, oneDNN notices) hidden.

    Only log output changes: ``TF_CPP_MIN_LOG_LEVEL=1`` drops TensorFlow's info lines (warnings and
    errors still show; a value the user set wins), fd 2 points at /dev/null while the libraries
    load, and the retracing notice is filtered. TF_ENABLE_ONEDNN_OPTS is left alone, since it
    changes the numerics.
    """
    import os

    if "keras" in sys.modules:
        return sys.modules["keras"]
    logging.getLogger("tensorflow").addFilter(_NoRetracingNotice())
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                import keras
                if keras.backend.backend() == "tensorflow":
                    import tensorflow  # noqa: F401  (its own start-up lines come here too)
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)
    return keras


def progress_verbose() -> int:
    """Keras ``verbose``: a progress bar on a terminal, one line per epoch otherwise (logs, pipes)."""
    return 1 if sys.stdout.isatty() else 2


def seed_everything(seed: int) -> None:
    keras = import_keras_quietly()

    keras.utils.set_random_seed(seed)


def entry_point(main):
    """Turn UserError (and Ctrl-C) into a one-line message and exit status instead of a traceback."""

    @functools.wraps(main)
    def wrapper(argv=None):
        try:
            return main(argv)
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        except KeyboardInterrupt:
            print("interrupted: re-run the same command to resume", file=sys.stderr)
            raise SystemExit(130) from None

    return wrapper


def command(run, parse_args):
    """The ``main(argv=None)`` of an entry point whose whole job is ``run(parse_args(argv))``."""

    @entry_point
    def main(argv=None):
        run(parse_args(argv))
        return 0

    return main
