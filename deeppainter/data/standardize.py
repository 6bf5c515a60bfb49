"""Standardiser: turn a folder (or manifest) of real-world images into square RGB images of one size.

Library
-------
- ``open_image(path, size_hint=None, pad_color=(0, 0, 0))`` → fully loaded **RGB** image, EXIF
  orientation applied. Transparent images (LA, RGBA, PA, P/L/RGB with a transparency key) are
  composited onto ``pad_color`` here, so every caller gets RGB. With ``size_hint`` a JPEG is
  decoded at 1/2, 1/4 or 1/8 scale (``draft``) while both sides stay ≥ ``size_hint``.
  Raises ``UnreadableImage`` (a ``UserError``) naming the file and a short reason.
- ``standardize_image(image, size=256, mode="pad", pad_color=(0, 0, 0), trim_bars=False)`` → RGB
  ``size``×``size``; ``trim_bars`` first cuts the dark bars of an earlier padding.
- ``load_standardized(path, size, mode="pad", pad_color=(0, 0, 0), trim_bars=False)`` → uint8 array (size, size, 3).
- ``standardize_tree(src, dst, ...)`` → summary dict; writes DST/manifest.csv, DST/skipped.csv
  and DST/standardize.json.

Layout of DST
-------------
- outputs keep SRC's relative layout (folder input) or go to ``DST/<label>/<name>`` (manifest input);
  the extension becomes ``.jpg`` or ``.png``. Two inputs that would share an output name
  (``a.png`` and ``a.tif``) keep their original extension inside the name (``a.tif.jpg``).
- ``manifest.csv``: source_path (absolute), output_path (relative to DST, POSIX separators),
  label (first sub-folder, or the manifest's label, or ""), width, height (the original image
  size after EXIF orientation, before scaling).
- ``skipped.csv``: source_path, reason: every input that produced no output.
- ``standardize.json``: the settings. Its modification time marks when those settings took
  effect: an output is up to date when it is newer than both its source and this file.

CLI: ``python -m deeppainter.standardize SRC [DST] --size 256 --mode pad --workers 4``.
"""
from __future__ import annotations

import concurrent.futures
import io
import json
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from deeppainter.errors import UserError
from deeppainter.runs import atomic_write_bytes, atomic_write_csv, atomic_write_json

MODES = ("pad", "crop", "resize")
FORMATS = {"jpeg": ".jpg", "png": ".png"}
SETTINGS_FILE = "standardize.json"
MANIFEST_FILE = "manifest.csv"
SKIPPED_FILE = "skipped.csv"
SETTINGS_VERSION = 1
# Pillow's resize(reducing_gap=...) first shrinks by an integer factor with Image.reduce (cheap box
# filter) while staying ≥ 3× the target, then resamples with the real filter: same look, far faster.
REDUCING_GAP = 3.0

_ALPHA_MODES = {"LA", "La", "PA", "RGBA", "RGBa"}
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}


class UnreadableImage(UserError):
    """An input that cannot be decoded: ``path`` and a short ``reason`` ("not an image", ...)."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: unreadable image ({reason})")

    def __reduce__(self):  # picklable across worker processes despite the two-argument __init__
        return (type(self), (self.path, self.reason))


# ----------------------------------------------------------------------------------------------
# single images


def check_pad_color(pad_color) -> tuple[int, int, int]:
    color = tuple(int(c) for c in pad_color)
    if len(color) != 3 or not all(0 <= c <= 255 for c in color):
        raise UserError(f"pad colour must be three integers 0-255 (R,G,B), got {pad_color!r}")
    return color  # type: ignore[return-value]


def _scale_to_uint8(image: Image.Image) -> Image.Image:
    """16-bit / 32-bit integer or float greyscale → 8-bit L by scaling the range, never clipping."""
    array = np.asarray(image)
    if image.mode in _SIXTEEN_BIT_MODES:
        full_scale = 65535.0
    elif image.mode == "F":
        finite = array[np.isfinite(array)]
        low = float(finite.min()) if finite.size else 0.0
        high = float(finite.max()) if finite.size else 1.0
        if low >= 0.0 and high <= 1.0:
            full_scale = 1.0
        else:  # arbitrary float range: stretch min..max
            span = high - low or 1.0
            array = np.nan_to_num(array - low, nan=0.0)
            full_scale = span
    else:  # "I": 32-bit ints; 16-bit PNGs often open this way
        high = int(array.max()) if array.size else 0
        if array.size and int(array.min()) < 0:
            array = array.astype(np.float64) - float(array.min())
            high = float(array.max())
        full_scale = 255.0 if high <= 255 else 65535.0 if high <= 65535 else float(high)
    scaled = np.rint(np.clip(array.astype(np.float64) * (255.0 / full_scale), 0, 255))
    return Image.fromarray(scaled.astype(np.uint8), mode="L")


def to_rgb(image: Image.Image, pad_color=(0, 0, 0)) -> Image.Image:
    """Any Pillow mode → RGB; transparency is composited onto ``pad_color``."""
    pad_color = check_pad_color(pad_color)
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return image
    if mode in _SIXTEEN_BIT_MODES or mode in ("I", "F"):
        return _scale_to_uint8(image).convert("RGB")
    if mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, pad_color + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")  # 1, L, P, CMYK, YCbCr, LAB, HSV, RGBX


def _reason(exc: BaseException) -> str:
    if isinstance(exc, Image.DecompressionBombError):
        return f"decompression bomb: {exc}"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image (unrecognised format)"
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    if isinstance(exc, PermissionError):
        return "permission denied"
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "truncated" in message.lower():
        return "truncated"
    return f"corrupt ({type(exc).__name__}: {message})"


def _decode(path, size_hint: int | None, pad_color) -> tuple[Image.Image, tuple[int, int]]:
    """open_image's work; also returns the original (width, height) as displayed, before draft."""
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size == 0:
            raise UnreadableImage(path, "empty file")
        with Image.open(path) as image:
            original = _displayed_size(image)
            if size_hint:
                image.draft(None, (int(size_hint), int(size_hint)))  # JPEG: decode at 1/2..1/8
            image.load()
            oriented = ImageOps.exif_transpose(image)
            # exif_transpose returns a new image when it rotates; copy otherwise so the file can close
            result = oriented if oriented is not image else image.copy()
            result.info = dict(image.info)
        return to_rgb(result, pad_color), original
    except UserError:
        raise
    except MemoryError as exc:
        raise UnreadableImage(path, "out of memory while decoding") from exc
    except Exception as exc:  # plugins raise OSError, SyntaxError, ValueError, struct.error, ...
        raise UnreadableImage(path, _reason(exc)) from exc


def open_image(path, size_hint: int | None = None, pad_color=(0, 0, 0)) -> Image.Image:
    """Open, fully decode and orient ``path``; return RGB (alpha composited onto ``pad_color``).

    Pillow's decompression-bomb guard stays on (``Image.MAX_IMAGE_PIXELS``) and truncated files are
    errors (``ImageFile.LOAD_TRUNCATED_IMAGES`` is left False). Every decoding failure becomes
    ``UnreadableImage``. With ``size_hint`` a JPEG may come back smaller than the file (draft).
    """
    return _decode(path, size_hint, pad_color)[0]


def _displayed_size(image: Image.Image) -> tuple[int, int]:
    """Width/height as displayed: EXIF orientations 5-8 swap them."""
    width, height = image.size
    try:
        orientation = image.getexif().get(0x0112, 1)
    except Exception:  # a damaged EXIF block does not make the pixels unreadable
        orientation = 1
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _resample(image: Image.Image, new_size: tuple[int, int], box=None) -> Image.Image:
    source_w = (box[2] - box[0]) if box else image.width
    downscale = new_size[0] < source_w
    return image.resize(new_size, Image.Resampling.LANCZOS if downscale else Image.Resampling.BICUBIC,
                        box=box, reducing_gap=REDUCING_GAP if downscale else None)


def trim_dark_bars(image: Image.Image) -> Image.Image:
    """Cut the near-black bars an earlier zero-padding left around a painting (see content_box)."""
    top, bottom, left, right = (int(v) for v in content_box(np.asarray(image)[None])[0])
    return image if (top, left, bottom, right) == (0, 0, image.height, image.width) else image.crop(
        (left, top, right, bottom))


def standardize_image(image: Image.Image, size: int = 256, mode: str = "pad",
                      pad_color: tuple[int, int, int] = (0, 0, 0), trim_bars: bool = False) -> Image.Image:
    """Return an RGB ``size``×``size`` image.

    pad: scale the long side to ``size`` keeping the aspect, centre on a ``pad_color`` square.
    crop: scale the short side to ``size``, keep the centre square. resize: ignore the aspect.
    ``trim_bars`` first cuts dark bars from an earlier padding, so the mode acts on the painting.
    """
    if mode not in MODES:
        raise UserError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if int(size) < 1:
        raise UserError(f"size must be a positive number of pixels, got {size}")
    size = int(size)
    pad_color = check_pad_color(pad_color)
    image = to_rgb(image, pad_color)
    if trim_bars:
        image = trim_dark_bars(image)
    width, height = image.size
    if mode == "resize":
        return _resample(image, (size, size))
    if mode == "crop":
        side = min(width, height)
        left, top = (width - side) / 2, (height - side) / 2
        return _resample(image, (size, size), box=(left, top, left + side, top + side))
    scale = size / max(width, height)
    new_w = min(size, max(1, round(width * scale)))
    new_h = min(size, max(1, round(height * scale)))
    scaled = _resample(image, (new_w, new_h))
    if (new_w, new_h) == (size, size):
        return scaled
    canvas = Image.new("RGB", (size, size), pad_color)
    canvas.paste(scaled, ((size - new_w) // 2, (size - new_h) // 2))
    return canvas


def load_standardized(path, size: int, mode: str = "pad", pad_color=(0, 0, 0), trim_bars: bool = False) -> np.ndarray:
    """Decode ``path`` (JPEG draft-decoded near ``size``) → uint8 array of shape (size, size, 3)."""
    image = standardize_image(open_image(path, size_hint=size, pad_color=pad_color), size, mode, pad_color, trim_bars)
    return np.asarray(image, dtype=np.uint8).copy()


def encode_image(image: Image.Image, image_format: str = "jpeg", quality: int = 95) -> bytes:
    buffer = io.BytesIO()
    if image_format == "jpeg":
        image.save(buffer, format="JPEG", quality=int(quality))
    elif image_format == "png":
        image.save(buffer, format="PNG", compress_level=6)
    else:
        raise UserError(f"unknown image format {image_format!r}; choose one of {', '.join(FORMATS)}")
    return buffer.getvalue()


# ----------------------------------------------------------------------------------------------
# trees


def _process_one(task: tuple[str, str, dict]) -> tuple[str, int, int, str]:
    """Worker: (source, output, settings) → (status, original width, original height, reason)."""
    source, output, settings = task
    try:
        image, (width, height) = _decode(source, settings["size"], settings["pad_color"])
        result = standardize_image(image, settings["size"], settings["mode"], settings["pad_color"])
        atomic_write_bytes(Path(output), encode_image(result, settings["image_format"], settings["quality"]))
        return "written", width, height, ""
    except UnreadableImage as exc:
        return "skipped", 0, 0, exc.reason
    except Exception as exc:  # never let one odd file kill a long run; it is listed instead
        return "skipped", 0, 0, f"failed ({type(exc).__name__}: {exc})"


def _original_size(path) -> tuple[int, int]:
    with Image.open(path) as image:
        return _displayed_size(image)


def _walk_folder(src: Path, dst: Path) -> tuple[list[tuple[Path, Path, str]], list[tuple[str, str]]]:
    """Return (entries, skipped): entries are (source, relative path, label)."""
    entries, skipped = [], []
    dst_resolved = dst.resolve()
    seen = {src.resolve()}
    # symlinked class folders are followed; `seen` stops link loops and double visits
    for root, dirs, files in os.walk(src, followlinks=True):
        root_path = Path(root)
        # hidden folders (.git, .ipynb_checkpoints, ...), DST itself (when inside SRC) and folders
        # already visited through another link are not inputs: pruned without a skipped.csv row
        kept = []
        for name in sorted(dirs):
            real = (root_path / name).resolve()
            if not name.startswith(".") and real != dst_resolved and real not in seen:
                seen.add(real)
                kept.append(name)
        dirs[:] = kept
        for name in sorted(files):
            path = root_path / name
            if name.startswith("."):  # .DS_Store, ._resource-forks: listed, never decoded
                skipped.append((str(path.resolve()), "hidden file (ignored)"))
                continue
            relative = path.relative_to(src)
            label = relative.parts[0] if len(relative.parts) > 1 else ""
            entries.append((path, relative, label))
    return entries, skipped


def _safe_label(label) -> str:
    """A manifest label becomes one folder name inside DST: no separators, no '..'."""
    label = str(label).strip().replace("/", "_").replace("\\", "_")
    return "_" if label in (".", "..") else label


def _read_manifest(src: Path) -> tuple[list[tuple[Path, Path, str]], list[tuple[str, str]]]:
    import pandas as pd

    try:
        frame = pd.read_csv(src, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise UserError(f"{src}: cannot read manifest CSV ({type(exc).__name__}: {exc})") from None
    if "path" not in frame.columns:
        raise UserError(f"{src}: manifest needs a 'path' column (found: {', '.join(frame.columns)})")
    labels = frame["label"] if "label" in frame.columns else [""] * len(frame)
    entries = []
    for raw, label in zip(frame["path"], labels):
        path = Path(raw)
        if not path.is_absolute():  # relative paths are relative to the manifest's folder
            path = src.parent / path
        label = _safe_label(label)
        relative = Path(label) / path.name if label else Path(path.name)
        entries.append((path, relative, label))
    return entries, []


def _assign_outputs(entries, dst: Path, suffix: str):
    """Map each entry to an output path; colliding names keep their original extension."""
    taken: dict[Path, Path] = {}
    listed: set[tuple[Path, str]] = set()
    tasks, skipped = [], []
    for source, relative, label in entries:
        if (source.resolve(), label) in listed:
            skipped.append((str(source.resolve()), "listed twice with the same label"))
            continue
        listed.add((source.resolve(), label))
        output = dst / relative.with_suffix(suffix)
        if output in taken:
            output = dst / relative.with_name(relative.name + suffix)
        if output in taken:
            skipped.append((str(source.resolve()), f"output name collides with {taken[output]}"))
            continue
        taken[output] = source
        tasks.append((source, output, label))
    return tasks, skipped


def _settings_dict(size, mode, pad_color, image_format, quality) -> dict:
    if mode not in MODES:
        raise UserError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if image_format not in FORMATS:
        raise UserError(f"unknown format {image_format!r}; choose one of {', '.join(FORMATS)}")
    if int(size) < 1:
        raise UserError(f"--size must be a positive number of pixels, got {size}")
    if not 1 <= int(quality) <= 100:
        raise UserError(f"--quality must be 1-100, got {quality}")
    return {"version": SETTINGS_VERSION, "size": int(size), "mode": mode,
            "pad_color": list(check_pad_color(pad_color)), "image_format": image_format,
            "quality": int(quality)}


def _settings_since(dst: Path, settings: dict, overwrite: bool) -> float:
    """Record the settings; return the mtime (ns) before which outputs are stale."""
    settings_path = dst / SETTINGS_FILE
    if settings_path.is_file() and not overwrite:
        try:
            previous = json.loads(settings_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = None
        if previous == settings:
            return settings_path.stat().st_mtime_ns
        changed = sorted(k for k in set(settings) | set(previous or {})
                         if (previous or {}).get(k) != settings.get(k))
        raise UserError(f"{dst} holds images standardised with other settings (changed: "
                        f"{', '.join(changed)}); pass --overwrite or choose another DST")
    dst.mkdir(parents=True, exist_ok=True)
    atomic_write_json(settings_path, settings)
    return settings_path.stat().st_mtime_ns


def _previous_sizes(dst: Path) -> dict[str, tuple[int, int]]:
    import pandas as pd

    try:
        frame = pd.read_csv(dst / MANIFEST_FILE, dtype={"output_path": str})
        return {row.output_path: (int(row.width), int(row.height)) for row in frame.itertuples()}
    except Exception:  # missing or damaged manifest: sizes are re-read from the headers
        return {}


def _is_up_to_date(source: Path, output: Path, since_ns: float) -> bool:
    try:
        output_ns = output.stat().st_mtime_ns
        return output_ns >= since_ns and output_ns >= source.stat().st_mtime_ns
    except OSError:
        return False


def _run_tasks(jobs: list[tuple[str, str, dict]], workers: int, progress: bool):
    from deeppainter.progress import progress as progress_bar

    bar = progress_bar(total=len(jobs), unit="img", desc="standardize", enabled=progress and bool(jobs))
    try:
        if workers <= 1 or len(jobs) < 2:
            for job in jobs:
                yield _process_one(job)
                bar.update()
            return
        chunksize = max(1, min(64, len(jobs) // (workers * 8)))
        context = multiprocessing.get_context("spawn")  # safe even when TensorFlow threads exist
        with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            for result in pool.map(_process_one, jobs, chunksize=chunksize):
                yield result
                bar.update()
    finally:
        bar.close()


def standardize_tree(src, dst, size: int = 256, mode: str = "pad", pad_color=(0, 0, 0),
                     image_format: str = "jpeg", quality: int = 95, workers: int = 1,
                     overwrite: bool = False, progress: bool = True) -> dict:
    """Standardise every image under folder ``src`` (or listed in manifest CSV ``src``) into ``dst``.

    Returns ``{"total", "written", "up_to_date", "skipped", "seconds", "files_per_s", "dst"}``.
    """
    import pandas as pd

    started = time.perf_counter()
    src, dst = Path(src), Path(dst)
    settings = _settings_dict(size, mode, pad_color, image_format, quality)
    if src.is_dir():
        if src.resolve() == dst.resolve():
            raise UserError(f"DST must differ from SRC ({src}); choose another DST")
        entries, skipped = _walk_folder(src, dst)
    elif src.is_file() and src.suffix.lower() == ".csv":
        entries, skipped = _read_manifest(src)
    elif src.exists():
        raise UserError(f"SRC {src} must be a folder of images or a manifest .csv")
    else:
        raise UserError(f"SRC {src} does not exist")
    if dst.exists() and not dst.is_dir():
        raise UserError(f"DST {dst} exists and is not a folder")
    if int(workers) < 1:
        raise UserError(f"--workers must be ≥ 1, got {workers}")

    since_ns = _settings_since(dst, settings, overwrite)
    tasks, collisions = _assign_outputs(entries, dst, FORMATS[image_format])
    skipped += collisions
    previous = _previous_sizes(dst)
    rows, jobs, job_rows = [], [], []
    for source, output, label in tasks:
        relative_out = output.relative_to(dst).as_posix()
        row = {"source_path": str(source.resolve()), "output_path": relative_out, "label": label,
               "width": 0, "height": 0}
        rows.append(row)
        if _is_up_to_date(source, output, since_ns):
            try:
                row["width"], row["height"] = previous.get(relative_out) or _original_size(source)
                continue
            except Exception:
                pass  # unreadable header: decode it again below, which lists the reason
        jobs.append((str(source), str(output), settings))
        job_rows.append(row)

    written = 0
    failed = set()
    for row, (status, width, height, reason) in zip(job_rows, _run_tasks(jobs, int(workers), progress)):
        if status == "written":
            written += 1
            row["width"], row["height"] = width, height
        else:
            skipped.append((row["source_path"], reason))
            failed.add(id(row))
    rows = [row for row in rows if id(row) not in failed]

    atomic_write_csv(dst / MANIFEST_FILE, pd.DataFrame(
        rows, columns=["source_path", "output_path", "label", "width", "height"]))
    atomic_write_csv(dst / SKIPPED_FILE, pd.DataFrame(skipped, columns=["source_path", "reason"]))
    seconds = time.perf_counter() - started
    total = len(rows) + len(skipped)
    return {"total": total, "written": written, "up_to_date": len(rows) - written,
            "skipped": len(skipped), "seconds": seconds,
            "files_per_s": total / seconds if seconds > 0 else float("inf"), "dst": str(dst)}


# ----------------------------------------------------------------------------------------------
# command line


PAD_MAX = 8  # ASSUMPTION: JPEG noise keeps padding bars at or below this value



def content_box(images: np.ndarray) -> np.ndarray:
    """(N, 4) int array top, bottom, left, right (exclusive) of the painting inside its bars.

    A bar is a run of full rows (columns) at an edge whose max value is ≤ ``PAD_MAX``;
    where bars are found, a margin of resampling-blurred pixels next to them is dropped
    too. An image that is (almost) all black keeps the whole frame.
    """
    n, h, w = images.shape[:3]
    dark_rows = images.max(axis=(2, 3)) <= PAD_MAX
    dark_cols = images.max(axis=(1, 3)) <= PAD_MAX

    def leading(dark):
        return np.cumprod(dark, axis=1).sum(axis=1)

    margin = max(1, min(h, w) // 64)  # bilinear / antialiased resize blurs the bar edge
    top, bottom = leading(dark_rows), h - leading(dark_rows[:, ::-1])
    left, right = leading(dark_cols), w - leading(dark_cols[:, ::-1])
    top = np.where(top > 0, top + margin, 0)
    bottom = np.where(bottom < h, bottom - margin, h)
    left = np.where(left > 0, left + margin, 0)
    right = np.where(right < w, right - margin, w)
    empty = (bottom - top < 8) | (right - left < 8)
    box = np.stack([top, bottom, left, right], axis=1)
    box[empty] = (0, h, 0, w)
    return box
