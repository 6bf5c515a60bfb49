"""Run folders and atomic writes: every number a user sees points back to one of these folders.

A run folder is ``<out>/<UTC time>_<command>_<preset>_seed<k>/`` holding ``config.json``
(resolved config + command arguments), ``env.json`` (versions, backend, devices, git commit)
and whatever the command adds. An unfinished run with the same fingerprint is resumed, and a finished
one is reused, unless it is committed in git: committed run folders are the project's record of what it
measured, not the user's cache, so a fresh clone computes its own.

Recorded paths are portable (``portable_path``/``resolve_path``): the data root once in
``arguments.data`` as given (``sample:`` for the embedded sample), image paths relative to it, run files
as ``runs:<run folder>/...`` relative to the runs root. The fingerprint uses the image list relative to
the data (``images``), not where the data or the run folders live, so a moved run still resumes.
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
SAMPLE_ROOT = "sample:"  # the embedded sample, wherever the package is installed
RUNS_PREFIX = "runs:"  # a path under the runs root (the parent of the run folder that records it)
PATH_FORMAT = 2  # config.json "path_format": image paths relative to arguments.data; absent = absolute/cwd paths


def sample_dir() -> Path:
    """The embedded 120-painting sample (40 each: van Gogh, Rembrandt, Renoir)."""
    from importlib import resources

    return Path(str(resources.files("deeppainter") / "sample"))


def _is_under(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def _folder(root):
    """A manifest CSV's paths are relative to its folder."""
    return None if root is None else (Path(root).parent if Path(root).is_file() else Path(root))


def portable_path(path, root=None) -> str:
    """``path`` as text that survives moving the repository, the data or the runs root.

    Under ``root`` (a folder): the posix path relative to it. Otherwise the embedded sample becomes
    ``sample:`` (plus the path under it), a relative path stays as given, and an absolute one becomes
    relative to the working directory (the repository) where possible.
    """
    text, root = str(path), _folder(root)
    if text.startswith((SAMPLE_ROOT, RUNS_PREFIX)):
        return text
    absolute = Path(os.path.abspath(text))
    if root is not None and _is_under(absolute, Path(os.path.abspath(root))):
        return absolute.relative_to(os.path.abspath(root)).as_posix()
    sample = Path(os.path.abspath(sample_dir()))
    if _is_under(absolute, sample):
        rest = absolute.relative_to(sample).as_posix()
        return SAMPLE_ROOT + ("" if rest == "." else rest)
    if root is not None:
        return absolute.as_posix()  # outside its root: the only honest form
    if not os.path.isabs(text):
        return Path(text).as_posix()
    try:
        return Path(os.path.relpath(absolute, Path.cwd())).as_posix()
    except ValueError:  # another drive (Windows)
        return absolute.as_posix()


def resolve_path(text, root=None) -> Path:
    """Inverse of :func:`portable_path`: ``sample:`` → the embedded sample, ``runs:`` → under the runs
    root, absolute stays, anything else is relative to ``root`` (default: the working directory)."""
    text = str(text)
    if text.startswith(SAMPLE_ROOT):
        rest = text[len(SAMPLE_ROOT):]
        return sample_dir() / rest if rest else sample_dir()
    if text.startswith(RUNS_PREFIX):
        return Path(root if root is not None else DEFAULT_RUNS_ROOT) / text[len(RUNS_PREFIX):]
    if os.path.isabs(text) or root is None:
        return Path(text)
    return _folder(root) / text


def runs_path(path, runs_root) -> str:
    """A file under the runs root as ``runs:<run folder>/<file>``; elsewhere :func:`portable_path`."""
    absolute = Path(os.path.abspath(path))
    if _is_under(absolute, Path(os.path.abspath(runs_root))):
        return RUNS_PREFIX + absolute.relative_to(os.path.abspath(runs_root)).as_posix()
    return portable_path(path)


def images_digest(paths, labels=None) -> str:
    """Fingerprint of an image list by its paths relative to the data root (not where the data lives)."""
    rows = [str(p) for p in paths] if labels is None else [f"{p}\0{y}" for p, y in zip(paths, labels)]
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]


def data_root(record: dict) -> Path | None:
    """The folder a run's image paths are relative to (None for old runs, whose paths are as recorded)."""
    if record.get("path_format", 1) < PATH_FORMAT or not record.get("arguments", {}).get("data"):
        return None
    return resolve_path(record["arguments"]["data"])


def image_path(text, record: dict) -> Path:
    """One recorded image path (new form: under the data root; old form: absolute or cwd-relative)."""
    root = data_root(record)
    return Path(str(text)) if root is None else resolve_path(text, root)


def relative_images(frame, root, column: str = "path"):
    """A copy of ``frame`` with ``column`` relative to ``root`` (the data root) where it is under it."""
    frame = frame.copy()
    frame[column] = [portable_path(p, root) for p in frame[column]]
    return frame


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


FIGURE_DPI = 110  # every PNG figure's resolution


def atomic_save_figure(path: Path, figure) -> None:
    """Save a matplotlib figure atomically as PNG."""
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=FIGURE_DPI, bbox_inches="tight")
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


def legacy_relative(text, data) -> str:
    """An image path of an old record (absolute, or relative to the cwd of that run) made relative to
    its data root ``data`` (absolute as recorded); unchanged when it cannot be placed under it."""
    text, data = str(text), str(data)
    if not data:
        return text
    if os.path.isabs(text):
        return portable_path(text, data) if _is_under(Path(text), Path(data)) else text
    parts, tail = Path(text).parts, [part for part in Path(data).parts if part != "/"]
    for k in range(len(parts) - 1, 0, -1):  # longest prefix of the path that names the tail of the root
        head = [part for part in parts[:k] if part not in ("..", ".")]
        if head and len(head) <= len(tail) and tail[-len(head):] == head:
            return Path(*parts[k:]).as_posix()
    return text


def portable_arguments(arguments: dict, runs_root) -> dict:
    """Old records' absolute ``data``/``pretrain_data``/``encoder``/``ensemble_of`` as portable text;
    a run folder recorded elsewhere but present under ``runs_root`` (same name) becomes ``runs:<name>``."""

    def run_file(text):
        if not text or str(text).startswith((SAMPLE_ROOT, RUNS_PREFIX)):
            return text
        path = Path(text)
        for candidate in (Path(path.parent.name) / path.name, Path(path.name)):  # file or its run folder
            if (Path(runs_root) / candidate).exists() or (Path(runs_root) / candidate.parts[0]).is_dir() \
                    and (Path(runs_root) / candidate.parts[0] / "config.json").is_file():
                return RUNS_PREFIX + candidate.as_posix()
        return runs_path(path, runs_root)

    updated = dict(arguments)
    for key in ("data", "pretrain_data"):
        if updated.get(key) and updated[key] != "None":
            updated[key] = portable_path(updated[key])
    if updated.get("encoder"):
        updated["encoder"] = run_file(updated["encoder"])
    if updated.get("ensemble_of"):
        updated["ensemble_of"] = [run_file(text) for text in updated["ensemble_of"]]
    return updated


LOCATION_KEYS = ("data",)  # where the data lives: replaced by the "images" digest in the fingerprint


def fingerprint_arguments(arguments: dict) -> dict:
    """The arguments that identify a run, free of where the data and the run folders live."""
    if "images" not in arguments:  # old records: their fingerprint covered the paths as they were
        return arguments
    identity = {k: v for k, v in arguments.items() if k not in LOCATION_KEYS}
    if arguments.get("pretrain_data") and arguments.get("data"):  # the pool, relative to the data it goes with
        identity["pretrain_data"] = os.path.relpath(resolve_path(arguments["pretrain_data"]),
                                                    resolve_path(arguments["data"])).replace(os.sep, "/")
    return identity


# Renamed config sections go into the fingerprint under their old names (autoencoder.* as model.*), so run
# folders recorded before the rename keep their identity and are still found finished or resumable.
_RECORDED_SECTIONS = {new: old for old, new in config_lib.RENAMED_SECTIONS.items()}


def _recorded_key(key: str) -> str:
    section, _, name = key.partition(".")
    return f"{_RECORDED_SECTIONS.get(section, section)}.{name}"


def fingerprint(command: str, preset: str, cfg: config_lib.Config, arguments: dict) -> str:
    payload = json.dumps({"command": command, "preset": preset, "arguments": fingerprint_arguments(arguments),
                          "changes": {_recorded_key(key): value for key, value
                                      in config_lib.changes_from_preset(cfg, preset).items()}},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def committed_runs(out_root: Path) -> set[str]:
    """Names of the run folders under ``out_root`` whose config.json is tracked by git (empty outside a
    git work tree, or without git)."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--", ":(glob)*/config.json"], cwd=out_root,
                                capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return set()
    if listed.returncode != 0:  # not a git work tree
        return set()
    return {Path(name).parts[0] for name in listed.stdout.decode("utf-8", "replace").split("\0") if name}


def find_run(command: str, preset: str, seed: int, cfg: config_lib.Config, arguments: dict,
             out_root: Path = DEFAULT_RUNS_ROOT, done: bool = False, upgrade=None) -> Path | None:
    """The newest run folder with this exact fingerprint that is finished (``done``) or not.

    Folders committed in git are never found: they are the record of a result (and lack the ignored
    weights and caches), so the same command on a fresh clone runs instead of replaying them.
    A folder of the old form (absolute paths) with the old fingerprint counts too when ``upgrade``
    (run_migration.migrate_run, given by the callers above this layer) can make it portable in place.
    """
    out_root = Path(out_root)
    if not out_root.is_dir():
        return None
    committed = committed_runs(out_root)
    wanted = fingerprint(command, preset, cfg, {**arguments, "seed": seed})
    legacy = fingerprint(command, preset, cfg, {**_legacy_arguments(arguments, out_root), "seed": seed})
    for candidate in sorted(out_root.glob(f"*_{command}_{preset}_seed{seed}"), reverse=True):
        config_file = candidate / "config.json"
        if not config_file.is_file() or (candidate / "DONE").exists() != done or candidate.name in committed:
            continue
        record = read_json(config_file)
        if record.get("fingerprint") == wanted:
            return candidate
        if upgrade is not None and record.get("path_format", 1) < PATH_FORMAT and record.get("fingerprint") == legacy:
            upgrade(candidate, out_root)  # an old folder (absolute paths): made portable in place, then resumed
            return candidate
    return None


def _legacy_arguments(arguments: dict, out_root: Path) -> dict:
    """The arguments as old runs recorded them (absolute paths, no image digest), to find their folders."""
    old = {k: v for k, v in arguments.items() if k != "images"}
    for key in ("data", "pretrain_data", "encoder"):
        if old.get(key):
            root = out_root if str(old[key]).startswith(RUNS_PREFIX) else None
            old[key] = str(resolve_path(old[key], root).resolve())
    return old


def open_run(command: str, preset: str, seed: int, cfg: config_lib.Config, arguments: dict,
             out_root: Path = DEFAULT_RUNS_ROOT, resume: bool = True, upgrade=None) -> tuple[Path, bool]:
    """Return ``(run_dir, resumed)``: an unfinished run with the same fingerprint, or a new folder."""
    out_root = Path(out_root)
    unfinished = find_run(command, preset, seed, cfg, arguments, out_root, upgrade=upgrade) if resume else None
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
        "arguments": arguments, "config": config_lib.to_dict(cfg), "path_format": PATH_FORMAT,
        # How the run was started (not part of the fingerprint: --folds subsets share a run).
        "command_line": " ".join(["python -m", f"deeppainter.{command}", *sys.argv[1:]])})
    atomic_write_json(run_dir / "env.json", env_info())
    return run_dir, False


def mark_done(run_dir: Path) -> None:
    atomic_write_text(Path(run_dir) / "DONE", _dt.datetime.now(_dt.timezone.utc).isoformat() + "\n")


def load_run_config(run_dir: Path) -> tuple[dict, config_lib.Config]:
    record = read_json(Path(run_dir) / "config.json")
    return record, config_lib.from_dict(record["config"], record["preset"])
