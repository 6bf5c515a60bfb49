"""``python -m deeppainter.standardize``: standardise a folder tree or manifest of images (deeppainter.data.standardize)."""
from __future__ import annotations

from pathlib import Path

from deeppainter.data.standardize import (
    FORMATS,
    MANIFEST_FILE,
    MODES,
    SKIPPED_FILE,
    check_pad_color,
    standardize_tree,
)
from deeppainter.errors import UserError


def _parse_pad_color(text: str) -> tuple[int, int, int]:
    import argparse

    try:
        return check_pad_color(int(part) for part in text.split(","))
    except (ValueError, UserError):
        raise argparse.ArgumentTypeError(f"expected R,G,B with each 0-255, got {text!r}") from None



def _build_parser():
    import argparse

    # Not common.make_parser: no config or randomness is involved, so --preset/--set/--seed would be ignored.
    parser = argparse.ArgumentParser(prog="python -m deeppainter.standardize",
                                     description="Turn a folder of class folders (or a manifest CSV with "
                                     "'path' and optional 'label' columns) into square RGB images of one size.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="output folder, when DST is not given")
    parser.add_argument("src", type=Path, help="folder of images (class sub-folders kept) or manifest .csv")
    parser.add_argument("dst", type=Path, nargs="?", help="output folder (default: --out)")
    parser.add_argument("--size", type=int, default=256, help="output side in pixels")
    parser.add_argument("--mode", choices=MODES, default="pad",
                        help="pad: long side to size + centred bars; crop: short side + centre crop; "
                             "resize: ignore aspect")
    parser.add_argument("--pad-color", type=_parse_pad_color, default=(0, 0, 0), metavar="R,G,B",
                        help="colour of the bars (pad mode) and behind transparent pixels")
    parser.add_argument("--format", dest="image_format", choices=sorted(FORMATS), default="jpeg")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality 1-100")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes")
    parser.add_argument("--overwrite", action="store_true",
                        help="rewrite every output (needed when DST holds other settings)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser



def _main(argv=None) -> int:
    args = _build_parser().parse_args(argv)
    dst = args.dst if args.dst is not None else args.out
    if dst is None:
        raise UserError("give a destination: python -m deeppainter.standardize SRC DST (or --out DST)")
    summary = standardize_tree(args.src, dst, size=args.size, mode=args.mode, pad_color=args.pad_color,
                               image_format=args.image_format, quality=args.quality,
                               workers=args.workers, overwrite=args.overwrite, progress=not args.quiet)
    print(f"standardized {summary['total']} files in {summary['seconds']:.1f} s "
          f"({summary['files_per_s']:.1f} files/s): {summary['written']} written, "
          f"{summary['up_to_date']} up to date, {summary['skipped']} skipped")
    if summary["skipped"]:
        print(f"skipped files and reasons: {Path(dst) / SKIPPED_FILE}")
    print(f"manifest: {Path(dst) / MANIFEST_FILE}")
    return 0



def main(argv=None) -> int:
    from deeppainter.cli.common import entry_point

    return entry_point(_main)(argv)
