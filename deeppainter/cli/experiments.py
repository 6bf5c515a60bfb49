"""``experiments/*.toml``: one file per paper table or study, read by ``cv10 --experiment FILE``.

An experiment file names the options a user would otherwise type; explicit command-line flags win.
Paths are relative to the folder the command runs in (the project root in the README's commands).
"""
from __future__ import annotations

import argparse
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from deeppainter.errors import UserError

PATH_KEYS = ("data", "encoder", "pretrain_data")
VALUE_KEYS = ("classes", "model", "pretrain_exclude", "preset", "seed", "folds")
META_KEYS = ("title", "table", "published", "command")


def load(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--experiment {path}: no such file; see experiments/ for the available ones")
    try:
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"--experiment {path}: not valid TOML ({exc})") from None
    unknown = set(spec) - set(PATH_KEYS) - set(VALUE_KEYS) - set(META_KEYS) - {"set"}
    if unknown:
        raise UserError(f"--experiment {path}: unknown keys {', '.join(sorted(unknown))}")
    return spec


def apply(args: argparse.Namespace, parser: argparse.ArgumentParser, path: Path) -> None:
    """Fill every option still at its default from the experiment file."""
    spec = load(path)
    for key in PATH_KEYS + VALUE_KEYS:
        if key in spec and getattr(args, key) == parser.get_default(key):
            value = spec[key]
            if key in PATH_KEYS:
                value = Path(value)
            elif key in ("classes", "folds") and isinstance(value, list):
                value = ",".join(str(v) for v in value)
            setattr(args, key, value)
    args.overrides = [*spec.get("set", []), *args.overrides]
