"""Standardiser: geometry, every awkward input kind, tree runs (idempotent, parallel, manifest), CLI."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from deeppainter.data.standardize import (
    UnreadableImage,
    load_standardized,
    open_image,
    standardize_image,
    standardize_tree,
)
from deeppainter.errors import UserError

REPO = Path(__file__).resolve().parent.parent
WIKIART = REPO.parent / "shared" / "data" / "wikiart14"
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def close(pixel, expected, tolerance=12) -> bool:
    return all(abs(int(a) - int(b)) <= tolerance for a, b in zip(pixel, expected))


def save(image: Image.Image, path: Path, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **kwargs)
    return path


def stripes(width: int, height: int, colors=(GREEN, RED, BLUE)) -> Image.Image:
    """Vertical stripes of equal width, left to right."""
    image = Image.new("RGB", (width, height))
    step = width // len(colors)
    for k, color in enumerate(colors):
        image.paste(color, (k * step, 0, width if k == len(colors) - 1 else (k + 1) * step, height))
    return image


def truncated_jpeg(path: Path) -> Path:
    save(Image.effect_noise((300, 200), 64).convert("RGB"), path, quality=90)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


# ---------------------------------------------------------------------------------------------- geometry


@pytest.mark.parametrize("width,height", [(200, 100), (100, 200)])
def test_pad_keeps_aspect_and_centres_on_pad_color(width, height):
    pad = (10, 200, 30)
    out = np.asarray(standardize_image(Image.new("RGB", (width, height), RED), 64, "pad", pad))
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    is_pad = np.all(out == pad, axis=2)
    is_red = np.all(np.abs(out.astype(int) - RED) <= 12, axis=2)
    assert is_red[32, 32] and not is_pad[32, 32]
    # landscape: bars above and below; portrait: left and right; each 16 px, equal on both sides
    bars_axis = 0 if width > height else 1
    content = np.where(is_red.any(axis=1 - bars_axis))[0]
    assert (content.min(), content.max()) == (16, 47)
    assert is_pad.sum() == 2 * 16 * 64
    assert tuple(out[0, 0]) == pad and tuple(out[63, 63]) == pad


@pytest.mark.parametrize("size", [1, 17, 64, 255])
def test_exact_size_for_extreme_aspects(size):
    for shape in [(7, 1000), (1000, 7), (1, 1), (333, 333)]:
        assert standardize_image(Image.new("RGB", shape, RED), size).size == (size, size)


def test_crop_keeps_the_centre_and_resize_keeps_everything():
    image = stripes(300, 100)
    cropped = np.asarray(standardize_image(image, 50, "crop"))
    assert cropped.shape == (50, 50, 3)
    assert all(close(cropped[y, x], RED) for y in (0, 25, 49) for x in (2, 25, 47))
    resized = np.asarray(standardize_image(image, 60, "resize"))
    assert close(resized[30, 5], GREEN) and close(resized[30, 30], RED) and close(resized[30, 55], BLUE)
    assert close(resized[0, 30], RED) and close(resized[59, 30], RED)  # no bars


@pytest.mark.parametrize("mode", ["crop", "resize"])
def test_trim_bars_lets_crop_and_resize_see_the_painting_not_the_old_padding(mode):
    padded = standardize_image(Image.new("RGB", (200, 100), RED), 128, "pad")  # wikiart14-style bars
    assert close(np.asarray(padded)[5, 64], (0, 0, 0))
    untrimmed = np.asarray(standardize_image(padded, 64, mode))
    trimmed = np.asarray(standardize_image(padded, 64, mode, trim_bars=True))
    assert close(untrimmed[0, 32], (0, 0, 0))  # without trimming the old bars survive
    assert all(close(trimmed[y, x], RED) for y in (0, 32, 63) for x in (0, 32, 63))


def test_trim_bars_leaves_a_painting_without_bars_alone():
    image = stripes(90, 60)
    assert np.array_equal(np.asarray(standardize_image(image, 32, "pad", trim_bars=True)),
                          np.asarray(standardize_image(image, 32, "pad")))


def test_unknown_mode_is_a_user_error():
    with pytest.raises(UserError, match="mode"):
        standardize_image(Image.new("RGB", (4, 4)), 8, "stretch")


def test_tiny_image_is_upscaled_and_centred():
    out = np.asarray(standardize_image(Image.new("RGB", (3, 5), BLUE), 64, "pad"))
    blue_columns = np.where(np.all(np.abs(out[32].astype(int) - BLUE) <= 40, axis=1))[0]
    assert out.shape == (64, 64, 3)
    assert 30 <= len(blue_columns) <= 42  # 3/5 of 64 ≈ 38
    assert abs((blue_columns.min() + blue_columns.max()) / 2 - 31.5) <= 1.5
    assert close(out[32, 32], BLUE, 3) and tuple(out[32, 0]) == (0, 0, 0)


# ---------------------------------------------------------------------------------------------- inputs


def test_exif_orientation_6_is_applied(tmp_path):
    image = Image.new("RGB", (60, 30), RED)
    image.paste(BLUE, (30, 0, 60, 30))  # left red, right blue as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # display = stored rotated 90° clockwise
    path = save(image, tmp_path / "rotated.jpg", exif=exif)
    opened = open_image(path)
    assert opened.size == (30, 60)
    assert close(opened.getpixel((15, 5)), RED) and close(opened.getpixel((15, 55)), BLUE)


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    path = save(Image.new("CMYK", (40, 30), (0, 255, 255, 0)), tmp_path / "cmyk.jpg")
    opened = open_image(path)
    assert opened.mode == "RGB" and close(opened.getpixel((20, 15)), RED, 20)


def test_palette_with_transparency_is_composited_on_pad_color(tmp_path):
    image = Image.new("P", (40, 20), 0)
    image.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    image.paste(1, (20, 0, 40, 20))
    path = save(image, tmp_path / "palette.png", transparency=0)
    opened = open_image(path, pad_color=(255, 255, 255))
    assert opened.mode == "RGB"
    assert opened.getpixel((5, 10)) == (255, 255, 255) and opened.getpixel((30, 10)) == GREEN
    out = load_standardized(path, 40, pad_color=(0, 0, 255))
    assert tuple(out[20, 5]) == BLUE and tuple(out[20, 30]) == GREEN


def test_greyscale_modes(tmp_path):
    grey = open_image(save(Image.new("L", (10, 10), 77), tmp_path / "grey.png"))
    assert grey.mode == "RGB" and grey.getpixel((5, 5)) == (77, 77, 77)
    binary = open_image(save(Image.new("1", (10, 10), 1), tmp_path / "bw.png"))
    assert binary.getpixel((5, 5)) == (255, 255, 255)
    la = Image.new("LA", (20, 10), (200, 255))
    la.paste((200, 0), (0, 0, 10, 10))  # left half fully transparent
    opened = open_image(save(la, tmp_path / "la.png"), pad_color=(0, 0, 255))
    assert opened.getpixel((5, 5)) == BLUE and opened.getpixel((15, 5)) == (200, 200, 200)


def test_rgba_is_alpha_composited_onto_pad_color(tmp_path):
    path = save(Image.new("RGBA", (20, 20), (255, 0, 0, 128)), tmp_path / "half.png")
    pixel = open_image(path, pad_color=(0, 0, 255)).getpixel((10, 10))
    assert close(pixel, (128, 0, 127), 2)
    assert close(load_standardized(path, 8, pad_color=(255, 255, 255))[4, 4], (255, 127, 127), 3)


def test_16_bit_greyscale_is_scaled_not_clipped(tmp_path):
    values = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    path = save(Image.fromarray(values), tmp_path / "deep.png")
    assert Image.open(path).mode.startswith("I")
    out = np.asarray(open_image(path))[..., 0]
    assert out.min() == 0 and out.max() == 255
    assert abs(int(out[32, 0]) - 128) <= 2  # the middle value maps to mid-grey, not white
    assert len(np.unique(out)) > 200


def test_progressive_jpeg(tmp_path):
    path = save(stripes(90, 60), tmp_path / "progressive.jpg", progressive=True, quality=90)
    assert Image.open(path).info.get("progressive") or Image.open(path).info.get("progression")
    out = load_standardized(path, 30, "resize")
    assert close(out[15, 2], GREEN, 30) and close(out[15, 15], RED, 30) and close(out[15, 27], BLUE, 30)


def test_large_jpeg_is_draft_decoded(tmp_path):
    big = stripes(4000, 3000)
    path = save(big, tmp_path / "large.jpg", quality=80)
    assert open_image(path, size_hint=256).size == (500, 375)  # decoded at 1/8 scale
    assert open_image(path).size == (4000, 3000)
    out = load_standardized(path, 256)
    assert out.shape == (256, 256, 3) and out.dtype == np.uint8
    assert close(out[128, 128], RED, 20) and tuple(out[5, 128]) == (0, 0, 0)


@pytest.mark.parametrize("kind,reason", [("truncated", "truncated"), ("empty", "empty file"),
                                         ("text", "not an image"), ("missing", "not found")])
def test_unreadable_inputs_raise_user_error_naming_the_file(tmp_path, kind, reason):
    path = tmp_path / f"bad_{kind}.jpg"
    if kind == "truncated":
        truncated_jpeg(path)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("hello, not a picture\n")
    with pytest.raises(UnreadableImage) as caught:
        load_standardized(path, 32)
    assert isinstance(caught.value, UserError)
    assert reason in caught.value.reason and path.name in str(caught.value)
    assert "\n" not in str(caught.value)


def test_decompression_bomb_guard_stays_on(tmp_path, monkeypatch):
    path = save(Image.new("RGB", (100, 100)), tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(UnreadableImage, match="decompression bomb"):
        open_image(path)


# ---------------------------------------------------------------------------------------------- trees


def make_tree(root: Path) -> dict[str, Path]:
    files = {
        "vg_a": save(stripes(120, 80), root / "vincent-van-gogh" / "a.jpg"),
        "vg_unicode": save(Image.new("RGB", (50, 90), RED), root / "vincent-van-gogh" / "Ré_メ.jpg"),
        "rem_png": save(Image.new("RGBA", (40, 40), (0, 255, 0, 255)), root / "rembrandt" / "b.png"),
        "rem_deep": save(Image.new("L", (64, 48), 90), root / "rembrandt" / "sub" / "c.jpg"),
        "root": save(Image.new("RGB", (30, 30), BLUE), root / "loose.jpg"),
        "broken": truncated_jpeg(root / "rembrandt" / "broken.jpg"),
    }
    (root / "notes.txt").write_text("not an image")
    (root / "empty.jpg").write_bytes(b"")
    (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    return files


def read_tree(dst: Path) -> dict[str, bytes]:
    return {p.relative_to(dst).as_posix(): p.read_bytes() for p in sorted(dst.rglob("*"))
            if p.is_file() and p.suffix in (".jpg", ".png")}


def test_tree_layout_manifest_and_skipped(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_tree(src)
    summary = standardize_tree(src, dst, size=32, progress=False)
    assert summary["written"] == 5 and summary["skipped"] == 4 and summary["total"] == 9
    assert set(read_tree(dst)) == {"vincent-van-gogh/a.jpg", "vincent-van-gogh/Ré_メ.jpg",
                                   "rembrandt/b.jpg", "rembrandt/sub/c.jpg", "loose.jpg"}
    for path in dst.rglob("*.jpg"):
        with Image.open(path) as image:
            assert image.size == (32, 32) and image.mode == "RGB"
    manifest = pd.read_csv(dst / "manifest.csv", keep_default_na=False)
    assert list(manifest.columns) == ["source_path", "output_path", "label", "width", "height"]
    rows = manifest.set_index("output_path")
    assert rows.loc["vincent-van-gogh/Ré_メ.jpg", "label"] == "vincent-van-gogh"
    assert tuple(rows.loc["vincent-van-gogh/Ré_メ.jpg", ["width", "height"]]) == (50, 90)
    assert rows.loc["rembrandt/sub/c.jpg", "label"] == "rembrandt"
    assert rows.loc["loose.jpg", "label"] == ""
    assert Path(rows.loc["rembrandt/b.jpg", "source_path"]) == (src / "rembrandt" / "b.png").resolve()
    skipped = pd.read_csv(dst / "skipped.csv").set_index("source_path")["reason"]
    reasons = {Path(p).name: r for p, r in skipped.items()}
    assert reasons["broken.jpg"] == "truncated" and reasons["empty.jpg"] == "empty file"
    assert reasons["notes.txt"].startswith("not an image") and "hidden" in reasons[".DS_Store"]
    assert not [p for p in dst.rglob("*.tmp")]  # atomic writes leave no temp files


def test_second_run_writes_nothing_and_touched_source_is_redone(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    files = make_tree(src)
    standardize_tree(src, dst, size=32, progress=False)
    stamps = {p: p.stat().st_mtime_ns for p in dst.rglob("*.jpg")}
    manifest_before = (dst / "manifest.csv").read_text()
    again = standardize_tree(src, dst, size=32, progress=False)
    assert again["written"] == 0 and again["up_to_date"] == 5 and again["skipped"] == 4
    assert {p: p.stat().st_mtime_ns for p in dst.rglob("*.jpg")} == stamps
    assert (dst / "manifest.csv").read_text() == manifest_before
    future = os.stat(files["root"]).st_mtime + 100
    os.utime(files["root"], (future, future))
    assert standardize_tree(src, dst, size=32, progress=False)["written"] == 1


def test_changed_settings_need_overwrite(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_tree(src)
    standardize_tree(src, dst, size=32, progress=False)
    with pytest.raises(UserError, match="--overwrite") as caught:
        standardize_tree(src, dst, size=48, progress=False)
    assert "\n" not in str(caught.value) and "size" in str(caught.value)
    redone = standardize_tree(src, dst, size=48, overwrite=True, progress=False)
    assert redone["written"] == 5
    with Image.open(dst / "loose.jpg") as image:
        assert image.size == (48, 48)
    # same settings + --overwrite rewrites everything too
    assert standardize_tree(src, dst, size=48, overwrite=True, progress=False)["written"] == 5


def test_workers_give_identical_output(tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    for k in range(6):
        save(Image.effect_noise((70 + k, 50), 40).convert("RGB"), src / "noise" / f"n{k}.jpg")
    one = standardize_tree(src, tmp_path / "one", size=24, workers=1, progress=False)
    two = standardize_tree(src, tmp_path / "two", size=24, workers=2, progress=False)
    assert one["written"] == two["written"] == 11
    assert read_tree(tmp_path / "one") == read_tree(tmp_path / "two")
    for name in ("manifest.csv", "skipped.csv"):
        assert (tmp_path / "one" / name).read_text() == (tmp_path / "two" / name).read_text()


def test_png_output_and_name_collisions(tmp_path):
    src = tmp_path / "src"
    save(Image.new("RGB", (20, 10), RED), src / "x" / "a.jpg")
    save(Image.new("RGB", (20, 10), BLUE), src / "x" / "a.tif")
    summary = standardize_tree(src, tmp_path / "dst", size=16, image_format="png", progress=False)
    assert summary["written"] == 2
    outputs = read_tree(tmp_path / "dst")
    assert set(outputs) == {"x/a.png", "x/a.tif.png"}
    assert Image.open(tmp_path / "dst" / "x" / "a.tif.png").getpixel((8, 8)) == BLUE


def test_manifest_csv_input(tmp_path):
    images = tmp_path / "images"
    one = save(Image.new("RGB", (40, 20), RED), images / "one.jpg")
    save(Image.new("RGB", (20, 40), BLUE), images / "two.png")
    manifest = tmp_path / "list.csv"
    pd.DataFrame({"path": [str(one), "images/two.png", "images/gone.jpg", "images/one.jpg", str(one)],
                  "label": ["painter a", "painter b", "painter a", "painter a", ".."]}
                 ).to_csv(manifest, index=False)
    summary = standardize_tree(manifest, tmp_path / "dst", size=16, progress=False)
    assert summary["written"] == 3 and summary["skipped"] == 2
    assert set(read_tree(tmp_path / "dst")) == {"painter a/one.jpg", "painter b/two.jpg", "_/one.jpg"}
    rows = pd.read_csv(tmp_path / "dst" / "manifest.csv")
    assert sorted(rows["label"]) == ["_", "painter a", "painter b"]
    reasons = sorted(pd.read_csv(tmp_path / "dst" / "skipped.csv")["reason"])
    assert reasons == ["file not found", "listed twice with the same label"]
    bad = tmp_path / "bad.csv"
    bad.write_text("file\nx.jpg\n")
    with pytest.raises(UserError, match="'path' column"):
        standardize_tree(bad, tmp_path / "dst2", progress=False)


def test_symlinked_class_folder_is_followed_once(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    save(Image.new("RGB", (20, 10), RED), elsewhere / "p.jpg")
    src = tmp_path / "src"
    src.mkdir()
    (src / "linked").symlink_to(elsewhere, target_is_directory=True)
    (elsewhere / "loop").symlink_to(src, target_is_directory=True)
    summary = standardize_tree(src, tmp_path / "dst", size=8, progress=False)
    assert summary["total"] == 1 and (tmp_path / "dst" / "linked" / "p.jpg").is_file()


def test_dst_inside_src_is_not_read_back(tmp_path):
    src = tmp_path / "src"
    save(Image.new("RGB", (20, 10), RED), src / "a" / "p.jpg")
    standardize_tree(src, src / "out", size=8, progress=False)
    again = standardize_tree(src, src / "out", size=8, progress=False)
    assert again["total"] == 1 and again["up_to_date"] == 1


# ---------------------------------------------------------------------------------------------- CLI


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deeppainter.standardize", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_cli_exit_codes_and_one_line_errors(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_tree(src)
    ok = cli(str(src), str(dst), "--size", "32", "--pad-color", "255,255,255", "--quiet")
    assert ok.returncode == 0, ok.stderr
    assert "files/s" in ok.stdout and "4 skipped" in ok.stdout and "skipped.csv" in ok.stdout
    with Image.open(dst / "vincent-van-gogh" / "a.jpg") as image:  # 120×80 → white bars
        assert close(image.getpixel((16, 1)), (255, 255, 255))
    for args, needle in [((str(tmp_path / "nope"), str(dst)), "does not exist"),
                         ((str(src),), "destination"),
                         ((str(src), str(dst), "--size", "64"), "--overwrite")]:
        failed = cli(*args, "--quiet")
        assert failed.returncode == 2, (args, failed.stdout, failed.stderr)
        lines = failed.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], failed.stderr
    via_out = cli(str(src), "--out", str(tmp_path / "via_out"), "--size", "16", "--quiet")
    assert via_out.returncode == 0 and (tmp_path / "via_out" / "loose.jpg").is_file()


@pytest.mark.parametrize("option", [["--preset", "smoke"], ["--set", "data.image_size=64"], ["--seed", "3"]])
def test_cli_has_no_config_options_it_would_ignore(tmp_path, option):
    from deeppainter.cli import standardize as standardize_cli

    src = tmp_path / "src"
    save(Image.new("RGB", (20, 10), RED), src / "a" / "p.jpg")
    with pytest.raises(SystemExit) as exit_info:
        standardize_cli.main([str(src), str(tmp_path / "dst"), "--quiet", *option])
    assert exit_info.value.code == 2 and not (tmp_path / "dst").exists()
    assert "--preset" not in standardize_cli._build_parser().format_help()


# ---------------------------------------------------------------------------------------------- real data


def test_real_wikiart_images(tmp_path):
    if not WIKIART.is_dir():
        pytest.skip(f"{WIKIART} not present")
    paths = []
    for painter in sorted(p for p in WIKIART.iterdir() if p.is_dir())[:2]:
        paths += [(str(p), painter.name) for p in sorted(painter.iterdir())[:10]]
    manifest = tmp_path / "real.csv"
    pd.DataFrame(paths, columns=["path", "label"]).to_csv(manifest, index=False)
    summary = standardize_tree(manifest, tmp_path / "dst", size=64, progress=False)
    assert summary["written"] + summary["skipped"] == len(paths) and summary["written"] >= 15
    rows = pd.read_csv(tmp_path / "dst" / "manifest.csv")
    assert (rows["width"] > 64).all() and (rows["height"] > 64).all()
    for output in rows["output_path"]:
        with Image.open(tmp_path / "dst" / output) as image:
            assert image.size == (64, 64) and image.mode == "RGB"
