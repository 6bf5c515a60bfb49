"""Run folders and atomic writes: every number a user sees points back to one of these folders.

A run folder is ``<out>/<UTC time>_<command>_<preset>_seed<k>/`` holding ``config.json``
(resolved config + command arguments), ``env.json`` (versions, backend, devices, git commit)
and whatever the command adds. An unfinished run with the same fingerprint is resumed.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from deeppainter import config as config_lib

DEFAULT_RUNS_ROOT = Path("results/runs")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_npy(path: Path, dtype, shape: tuple[int, ...]):
    """A writable ``.npy`` memory-map that appears under ``path`` only when the block succeeds."""
    import numpy

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npy")
    array = numpy.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
    try:
        yield array
        array.flush()
    except BaseException:
        del array
        tmp.unlink(missing_ok=True)
        raise
    del array
    os.replace(tmp, path)


def cached_npy(path: Path, compute):
    """``compute()`` once, stored atomically at ``path`` (an array); later calls read the file instead."""
    import numpy

    path = Path(path)
    if path.exists():
        return numpy.load(path)
    array = numpy.asarray(compute())
    with atomic_npy(path, array.dtype, array.shape) as stored:
        stored[:] = array
    return array


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def atomic_write_csv(path: Path, frame) -> None:
    atomic_write_text(path, frame.to_csv(index=False))


def atomic_save_figure(path: Path, figure) -> None:
    """Save a matplotlib figure atomically as PNG."""
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())


def read_json(path: Path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def git_commit() -> str:
    try:
        root = Path(__file__).resolve().parent.parent
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def env_info() -> dict:
    """Versions, backend and devices, so a number can be traced to the machine that made it."""
    import keras
    import numpy

    backend = keras.backend.backend()
    info = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpu_count": os.cpu_count(),
        "numpy": numpy.__version__,
        "keras": keras.__version__,
        "backend": backend,
        "git_commit": git_commit(),
    }
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            info["backend_version"] = tf.__version__
            info["devices"] = [d.name for d in tf.config.list_logical_devices()]
        elif backend == "jax":
            import jax

            info["backend_version"] = jax.__version__
            info["devices"] = [f"{d} ({d.device_kind})" for d in jax.devices()]
            info["platform_backend"] = jax.default_backend()  # cpu | gpu | tpu: where jitted code runs
        elif backend == "torch":
            import torch

            info["backend_version"] = torch.__version__
            info["devices"] = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    except Exception as exc:  # device listing is informative only; never fail a run over it
        info["devices_error"] = repr(exc)
    return info


def fingerprint(command: str, preset: str, cfg: config_lib.Config, arguments: dict) -> str:
    payload = json.dumps({"command": command, "preset": preset, "arguments": arguments,
                          "changes": config_lib.changes_from_preset(cfg, preset)}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def find_run(command: str, preset: str, seed: int, cfg: config_lib.Config, arguments: dict,
             out_root: Path = DEFAULT_RUNS_ROOT, done: bool = False) -> Path | None:
    """The newest run folder with this exact fingerprint that is finished (``done``) or not."""
    out_root = Path(out_root)
    if not out_root.is_dir():
        return None
    wanted = fingerprint(command, preset, cfg, {**arguments, "seed": seed})
    for candidate in sorted(out_root.glob(f"*_{command}_{preset}_seed{seed}"), reverse=True):
        config_file = candidate / "config.json"
        if (config_file.is_file() and (candidate / "DONE").exists() == done
                and read_json(config_file).get("fingerprint") == wanted):
            return candidate
    return None


def open_run(command: str, preset: str, seed: int, cfg: config_lib.Config, arguments: dict,
             out_root: Path = DEFAULT_RUNS_ROOT, resume: bool = True) -> tuple[Path, bool]:
    """Return ``(run_dir, resumed)``: an unfinished run with the same fingerprint, or a new folder."""
    out_root = Path(out_root)
    unfinished = find_run(command, preset, seed, cfg, arguments, out_root) if resume else None
    if unfinished is not None:
        return unfinished, True
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    suffix = f"_{command}_{preset}_seed{seed}"
    out_root.mkdir(parents=True, exist_ok=True)
    counter = 1
    while True:  # mkdir is the claim: two runs started in the same second get -2, -3, ... not a crash
        run_dir = out_root / (f"{stamp}{suffix}" if counter == 1 else f"{stamp}-{counter}{suffix}")
        try:
            run_dir.mkdir()
            break
        except FileExistsError:
            counter += 1
    atomic_write_json(run_dir / "config.json", {
        "command": command, "preset": preset, "seed": seed,
        "fingerprint": fingerprint(command, preset, cfg, {**arguments, "seed": seed}),
        "arguments": arguments, "config": config_lib.to_dict(cfg),
        # How the run was started (not part of the fingerprint: --folds subsets share a run).
        "command_line": " ".join(["python -m", f"deeppainter.{command}", *sys.argv[1:]])})
    atomic_write_json(run_dir / "env.json", env_info())
    return run_dir, False


def mark_done(run_dir: Path) -> None:
    atomic_write_text(Path(run_dir) / "DONE", _dt.datetime.now(_dt.timezone.utc).isoformat() + "\n")


def load_run_config(run_dir: Path) -> tuple[dict, config_lib.Config]:
    record = read_json(Path(run_dir) / "config.json")
    return record, config_lib.from_dict(record["config"], record["preset"])
