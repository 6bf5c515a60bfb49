"""Synthetic "painters" for fast tests: each has its own palette and brush-stroke texture.

Images get random aspect ratios so the standardiser's padding is exercised too.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def _painter_style(rng: np.random.Generator) -> dict:
    return {"palette": rng.integers(0, 256, size=(4, 3)),
            "angle": rng.uniform(0, np.pi),
            "stroke_length": rng.uniform(3, 12),
            "stroke_width": int(rng.integers(1, 4)),
            "background": rng.integers(0, 256, size=3)}


def paint(style: dict, width: int, height: int, rng: np.random.Generator) -> Image.Image:
    image = Image.new("RGB", (width, height), tuple(int(c) for c in style["background"]))
    draw = ImageDraw.Draw(image)
    for _ in range(width * height // 12):
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        angle = style["angle"] + rng.normal(0, 0.25)
        length = style["stroke_length"] * rng.uniform(0.5, 1.5)
        colour = style["palette"][rng.integers(len(style["palette"]))] + rng.integers(-20, 21, size=3)
        draw.line((x, y, x + length * np.cos(angle), y + length * np.sin(angle)),
                  fill=tuple(int(c) for c in np.clip(colour, 0, 255)), width=style["stroke_width"])
    return image


def make_synthetic_painters(root: Path | str, painters: int = 3, per_painter: int = 20, seed: int = 0,
                            min_side: int = 24, max_side: int = 64) -> Path:
    """Write ``root/painter<k>/<i>.jpg`` images and return ``root``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for painter in range(painters):
        style = _painter_style(rng)
        folder = root / f"painter{painter}"
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_painter):
            width, height = (int(v) for v in rng.integers(min_side, max_side + 1, size=2))
            paint(style, width, height, rng).save(folder / f"{index}.jpg", quality=92)
    return root
