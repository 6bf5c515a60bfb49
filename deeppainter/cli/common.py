"""Command-line options shared by every entry point, and the one-line error convention."""
from __future__ import annotations

import argparse
import functools
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
                        help="override one config value, e.g. --set model.filters=32,64 "
                             "(repeatable; unknown keys are an error)")
    common.add_argument("--seed", type=int, default=0, help="seed for folds, splits, masks and weights")
    common.add_argument("--out", type=Path, default=DEFAULT_RUNS_ROOT,
                        help="folder that receives the run folder <time>_<command>_<preset>_seed<k>/")
    return parser


class _DeprecatedRunAlias(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        print(f"warning: {option_string} RUN_DIR is deprecated and goes in the next release; use --run RUN_DIR",
              file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_run_option(parser: argparse.ArgumentParser) -> None:
    """``--run RUN_DIR``: a cv10 run folder with a final model (``--model`` stays one release as an alias)."""
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--run", type=Path, help="a cv10 run folder made with --save-final-model (holds final_model.json)")
    group.add_argument("--model", type=Path, dest="run", action=_DeprecatedRunAlias, help=argparse.SUPPRESS)


def resolve_config(args: argparse.Namespace) -> config_lib.Config:
    return config_lib.build_config(args.preset, args.overrides)


def seed_everything(seed: int) -> None:
    import keras

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
