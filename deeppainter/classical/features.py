"""Handcrafted image-processing features for the classical baselines (REFERENCE.md §1, Table 1).

[P16] compares its autoencoder with "image-processing features" without listing them;
the set below is ours (# ASSUMPTION: colour, gradient-orientation, texture and edge
descriptors, the usual painter-classification features of the period):

- colour: RGB and HSV mean / std / skewness, saturation-weighted circular hue mean,
  hue histogram weighted by saturation, saturation and value histograms, a joint
  8×3×3 HSV histogram, and a 3×3 layout grid of brightness, saturation and warmth;
- gray levels: mean / std / skewness / kurtosis and a 16-bin histogram;
- gradients: magnitude-weighted, softly binned orientation histograms (global, on a
  2×2 and a 4×4 grid of the painting, and global at half resolution), magnitude
  statistics and log-magnitude histogram, edge density at four thresholds, and the
  local orientation coherence of 4×4-pixel blocks (brush-stroke regularity);
- texture: rotation-invariant uniform local binary patterns (8 neighbours at radius 1
  and 2, 10 bins each) and the mean local contrast of 4×4 blocks.

Images in this project are zero-padded to a square ([R21] §2). The black bars say
nothing about the painter but do give away the aspect ratio, so every statistic is
taken over the painting only: bars are full rows / columns at the borders whose
maximum value is at most ``PAD_MAX``, and the grids are laid over the painting, not
over the padded square. Runtime: about 1–2 ms per 64×64 image and 5–10 ms per
128×128 image on one CPU core (images are processed in chunks to bound memory).
"""
from __future__ import annotations

import numpy as np

from deeppainter.data.standardize import content_box
from deeppainter.errors import UserError

CHUNK = 128  # images per vectorised chunk (bounds peak memory at large sizes)
EPS = 1e-8

HUE_BINS = 18
ORI_BINS = 9
EDGE_THRESHOLDS = (0.02, 0.05, 0.1, 0.2)  # gradient magnitude, gray levels in [0, 1]


def image_features(images: np.ndarray) -> np.ndarray:
    """Features of a batch of uint8 RGB images (N, H, W, 3) as float32 (N, D)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise UserError(f"image_features expects images shaped (N, H, W, 3), got {images.shape}")
    if min(images.shape[1:3]) < 8:
        raise UserError(f"image_features needs images of at least 8×8 pixels, got {images.shape[1:3]}")
    if images.dtype != np.uint8:
        images = np.clip(images, 0, 255).astype(np.uint8)
    chunks = [_chunk_features(images[i:i + CHUNK]) for i in range(0, len(images), CHUNK)]
    if not chunks:
        return np.zeros((0, feature_count()), np.float32)
    return np.concatenate(chunks).astype(np.float32)


def multiscale_features(images: np.ndarray, scales: tuple[int, ...] = (1,)) -> np.ndarray:
    """``image_features`` of the images and of their 1/s box-averaged copies, side by side (s in ``scales``).

    Brush strokes show at full resolution, composition and colour masses at coarser ones; the
    texture and gradient descriptors are per pixel, so each scale sees different structure.
    """
    images = np.asarray(images)
    blocks = []
    for scale in scales:
        if scale == 1:
            blocks.append(image_features(images))
            continue
        n, h, w = images.shape[:3]
        hs, ws = h // scale, w // scale
        small = np.empty((n, hs, ws, 3), np.uint8)
        for i in range(0, n, CHUNK):  # box average chunk by chunk: bounded memory
            part = images[i:i + CHUNK, :hs * scale, :ws * scale].astype(np.float32)
            small[i:i + CHUNK] = np.rint(part.reshape(-1, hs, scale, ws, scale, 3).mean(axis=(2, 4)))
        blocks.append(image_features(small))
    return np.concatenate(blocks, axis=1)


def feature_count() -> int:
    """Length D of the feature vector (independent of the image size)."""
    return _chunk_features(np.full((1, 16, 16, 3), 128, np.uint8)).shape[1]


# --- padding --------------------------------------------------------------------------



def _box_mask(box, ys, xs, shrink=0):
    """(N, len(ys), len(xs)) bool: pixel coordinates inside the box shrunk by ``shrink``."""
    inside_y = (ys[None, :] >= box[:, :1] + shrink) & (ys[None, :] < box[:, 1:2] - shrink)
    inside_x = (xs[None, :] >= box[:, 2:3] + shrink) & (xs[None, :] < box[:, 3:4] - shrink)
    mask = inside_y[:, :, None] & inside_x[:, None, :]
    empty = ~mask.any(axis=(1, 2))
    mask[empty] = True  # tiny paintings: fall back to every pixel rather than none
    return mask


def _grid_cells(box, ys, xs, grid):
    """(N, len(ys), len(xs)) int cell index of a grid×grid layout over each painting."""
    def axis_cell(coords, lo, hi):
        rel = (coords[None, :] - lo[:, None]) * grid // np.maximum(hi - lo, 1)[:, None]
        return np.clip(rel, 0, grid - 1)

    cy = axis_cell(ys, box[:, 0], box[:, 1])
    cx = axis_cell(xs, box[:, 2], box[:, 3])
    return cy[:, :, None] * grid + cx[:, None, :]


# --- weighted statistics ----------------------------------------------------------------

def _normalise_rows(w):
    return w / np.maximum(w.sum(axis=1, keepdims=True), EPS)


def _moments(values, weights, count=3):
    """Weighted mean, std, skewness (and kurtosis for count=4) per row: (N, count)."""
    mean = (values * weights).sum(axis=1)
    dev = values - mean[:, None]
    sq_w = dev * dev * weights
    var = sq_w.sum(axis=1)
    std = np.sqrt(var)
    out = [mean, std, (sq_w * dev).sum(axis=1) / (std ** 3 + 1e-6)]
    if count == 4:
        out.append((sq_w * dev * dev).sum(axis=1) / (var * var + 1e-6))
    return np.stack(out, axis=1)


def _histogram(index, weights, bins, groups=1):
    """Weighted histogram per row, normalised to sum 1 within each of ``groups`` blocks."""
    n = index.shape[0]
    total = bins * groups
    flat = (index + total * np.arange(n)[:, None]).ravel()
    hist = np.bincount(flat, weights=weights.ravel(), minlength=n * total)
    hist = hist.reshape(n, groups, bins)
    hist = hist / np.maximum(hist.sum(axis=2, keepdims=True), EPS)
    return hist.reshape(n, total)


def _bin(values, bins):
    """Hard bin index of values in [0, 1]."""
    return np.clip((values * bins).astype(np.int64), 0, bins - 1)


def _flat(*arrays):
    return [a.reshape(a.shape[0], -1) for a in arrays]


# --- colour -----------------------------------------------------------------------------

def _rgb_to_hsv(rgb):
    """Vectorised RGB (…, 3) in [0, 1] → hue, saturation, value in [0, 1]."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    vmax = rgb.max(axis=-1)
    delta = vmax - rgb.min(axis=-1)
    sat = np.where(vmax > 0, delta / np.maximum(vmax, EPS), 0.0)
    safe = np.maximum(delta, EPS)
    hue = np.where(vmax == r, (g - b) / safe, np.where(vmax == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
    hue = np.where(delta > 0, (hue / 6.0) % 1.0, 0.0)
    return hue, sat, vmax


def _colour_features(flat_rgb, hsv, weights):
    hue, sat, val = hsv
    parts = [_moments(np.ascontiguousarray(flat_rgb[:, :, c]), weights) for c in range(3)]
    parts += [_moments(sat, weights), _moments(val, weights)]
    # hue is circular: saturation-weighted mean direction and its concentration
    hue_w = _normalise_rows(weights * sat)
    angle = 2 * np.pi * hue
    cos_m, sin_m = (np.cos(angle) * hue_w).sum(1), (np.sin(angle) * hue_w).sum(1)
    parts.append(np.stack([cos_m, sin_m, np.hypot(cos_m, sin_m), (weights * sat).sum(1)], axis=1))
    parts.append(_histogram(_bin(hue, HUE_BINS), hue_w, HUE_BINS))
    parts.append(_histogram(_bin(sat, 8), weights, 8))
    parts.append(_histogram(_bin(val, 8), weights, 8))
    joint = (_bin(hue, 8) * 3 + _bin(sat, 3)) * 3 + _bin(val, 3)
    parts.append(_histogram(joint, weights, 72))
    return parts


def _layout_features(flat_rgb, hsv, weights, cells):
    """Composition: brightness, saturation and warmth (R − B) on a 3×3 grid of the painting."""
    _, sat, val = hsv
    n = flat_rgb.shape[0]
    warmth = flat_rgb[:, :, 0] - flat_rgb[:, :, 2]
    parts = []
    cell_w = np.bincount((cells + 9 * np.arange(n)[:, None]).ravel(), weights.ravel(), n * 9)
    cell_w = np.maximum(cell_w.reshape(n, 9), EPS)
    for channel in (val, sat, warmth):
        sums = np.bincount((cells + 9 * np.arange(n)[:, None]).ravel(), (weights * channel).ravel(), n * 9)
        parts.append(sums.reshape(n, 9) / cell_w)
    return parts


# --- gradients and texture --------------------------------------------------------------

def _orientation_bins(gx, gy, mag):
    """Soft (linear) assignment of unsigned orientations to ORI_BINS bins."""
    theta = np.arctan2(gy, gx) % np.pi
    pos = theta / np.pi * ORI_BINS - 0.5
    low = np.floor(pos)
    frac = pos - low
    low = low.astype(np.int64) % ORI_BINS
    return low, (low + 1) % ORI_BINS, mag * (1 - frac), mag * frac


def _orientation_histogram(gx, gy, mag, weights, cells=None, groups=1):
    low, high, w_low, w_high = _orientation_bins(gx, gy, mag)
    offset = 0 if cells is None else cells * ORI_BINS
    n = gx.shape[0]
    total = ORI_BINS * groups
    rows = total * np.arange(n)[:, None]
    hist = np.zeros(n * total)
    for index, w in ((low, w_low), (high, w_high)):
        hist += np.bincount((index + offset + rows).ravel(), (w * weights).ravel(), n * total)
    hist = hist.reshape(n, groups, ORI_BINS)
    # HOG-style per-cell L2 normalisation of the magnitude-weighted counts, square-rooted
    hist = np.sqrt(hist / np.maximum(hist.sum(axis=2, keepdims=True), EPS))
    return hist.reshape(n, total)


def _central_gradients(gray):
    """Central differences on the interior (H-2, W-2) of a (N, H, W) image."""
    gx = (gray[:, 1:-1, 2:] - gray[:, 1:-1, :-2]) * 0.5
    gy = (gray[:, 2:, 1:-1] - gray[:, :-2, 1:-1]) * 0.5
    return gx, gy


def _block_view(a, size):
    """(N, H, W) → (N, H//size, W//size, size*size) non-overlapping blocks."""
    n, h, w = a.shape
    h, w = h // size * size, w // size * size
    a = a[:, :h, :w].reshape(n, h // size, size, w // size, size)
    return a.transpose(0, 1, 3, 2, 4).reshape(n, h // size, w // size, size * size)


def _gradient_features(gray, box):
    n, h, w = gray.shape
    ys, xs = np.arange(1, h - 1), np.arange(1, w - 1)
    mask = _box_mask(box, ys, xs, shrink=1)
    weights = _normalise_rows(mask.reshape(n, -1).astype(np.float32))
    gx, gy = _central_gradients(gray)
    mag = np.hypot(gx, gy)
    fgx, fgy, fmag = _flat(gx, gy, mag)
    parts = [_orientation_histogram(fgx, fgy, fmag, weights)]
    for grid in (2, 4):
        cells = _grid_cells(box, ys, xs, grid).reshape(n, -1)
        parts.append(_orientation_histogram(fgx, fgy, fmag, weights, cells, grid * grid))
    # half resolution: coarser strokes and contours
    half = _block_view(gray, 2).mean(axis=3)
    hgx, hgy = _central_gradients(half)
    hmask = _box_mask(box // 2, np.arange(1, half.shape[1] - 1), np.arange(1, half.shape[2] - 1), shrink=1)
    hw = _normalise_rows(hmask.reshape(n, -1).astype(np.float32))
    hgx, hgy = _flat(hgx, hgy)
    parts.append(_orientation_histogram(hgx, hgy, np.hypot(hgx, hgy), hw))
    # magnitude statistics and edge density
    parts.append(_moments(fmag, weights))
    log_mag = np.clip(np.log10(fmag + 1e-3) / 3 + 1, 0, 1)  # 1e-3 … 1 → 0 … 1
    parts.append(_histogram(_bin(log_mag, 8), weights, 8))
    parts.append(np.stack([((fmag > t) * weights).sum(axis=1) for t in EDGE_THRESHOLDS], axis=1))
    # 4×4 blocks: structure-tensor coherence (stroke regularity) and local contrast
    block_ok = _block_view(mask, 4).all(axis=3).reshape(n, -1)
    bw = _normalise_rows(block_ok.astype(np.float32))
    jxx = _block_view(gx * gx, 4).sum(axis=3).reshape(n, -1)
    jyy = _block_view(gy * gy, 4).sum(axis=3).reshape(n, -1)
    jxy = _block_view(gx * gy, 4).sum(axis=3).reshape(n, -1)
    coherence = np.sqrt((jxx - jyy) ** 2 + 4 * jxy ** 2) / (jxx + jyy + 1e-6)
    parts.append(_moments(coherence, bw))
    parts.append(_histogram(_bin(coherence, 5), bw, 5))
    contrast = _block_view(gray[:, 1:-1, 1:-1], 4).std(axis=3).reshape(n, -1)
    parts.append(_moments(contrast, bw))
    return parts


# neighbour offsets (dy, dx) in circular order
_RING = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))


def _lbp_riu2(gray, radius):
    """Rotation-invariant uniform LBP labels 0…9 on the interior (H-2r, W-2r)."""
    h, w = gray.shape[1:]
    r = radius
    centre = gray[:, r:h - r, r:w - r]
    bits = [gray[:, r + dy * r:h - r + dy * r, r + dx * r:w - r + dx * r] >= centre for dy, dx in _RING]
    bits = np.stack(bits, axis=0).astype(np.int8)
    ones = bits.sum(axis=0)
    transitions = np.abs(bits - np.roll(bits, 1, axis=0)).sum(axis=0)
    return np.where(transitions <= 2, ones, 9).astype(np.int64)


def _texture_features(gray, box):
    n, h, w = gray.shape
    parts = []
    quantised = np.round(gray * 255)  # compare gray levels, not float noise
    for radius in (1, 2):
        labels = _lbp_riu2(quantised, radius)
        mask = _box_mask(box, np.arange(radius, h - radius), np.arange(radius, w - radius), shrink=radius)
        weights = _normalise_rows(mask.reshape(n, -1).astype(np.float32))
        parts.append(_histogram(labels.reshape(n, -1), weights, 10))
    return parts


def _chunk_groups(images):
    """Feature blocks of a chunk by group name (see ``feature_groups``)."""
    n, h, w = images.shape[:3]
    box = content_box(images)
    ys, xs = np.arange(h), np.arange(w)
    weights = _normalise_rows(_box_mask(box, ys, xs).reshape(n, -1).astype(np.float32))
    cells = _grid_cells(box, ys, xs, 3).reshape(n, -1)
    rgb = images.astype(np.float32) / 255.0
    gray = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    flat_gray = gray.reshape(n, -1)
    flat_rgb, hsv = rgb.reshape(n, -1, 3), _flat(*_rgb_to_hsv(rgb))
    groups = {
        "colour": _colour_features(flat_rgb, hsv, weights),
        "layout": _layout_features(flat_rgb, hsv, weights, cells),
        "gray": [_moments(flat_gray, weights, count=4), _histogram(_bin(flat_gray, 16), weights, 16)],
        "gradient": _gradient_features(gray, box),
        "texture": _texture_features(gray, box),
    }
    return {name: np.concatenate(parts, axis=1) for name, parts in groups.items()}


def _chunk_features(images):
    out = np.concatenate(list(_chunk_groups(images).values()), axis=1)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def feature_groups() -> dict[str, slice]:
    """Column ranges of the feature vector by group.

    ``colour`` (global colour statistics and histograms: unchanged by flips and by
    padding), ``layout`` (3×3 grid of brightness, saturation, warmth), ``gray``
    (gray-level moments then histogram; column 0 is the mean gray level),
    ``gradient`` (orientation histograms, magnitudes, edge density, coherence),
    ``texture`` (LBP histograms).
    """
    groups = _chunk_groups(np.full((1, 16, 16, 3), 128, np.uint8))
    out, start = {}, 0
    for name, block in groups.items():
        out[name] = slice(start, start + block.shape[1])
        start += block.shape[1]
    return out
