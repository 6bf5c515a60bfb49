"""``python -m deeppainter.explain --run RUN_DIR IMAGE...``: Grad-CAM heat maps (Selvaraju et al. 2017).

For the CAE classifier the map is taken at the last encoder convolution (``encoder_conv<k>``),
for the transfer backbones at the backbone's last feature map. Each image is standardised as in
training; ``<name>_gradcam.png`` shows the painting and the painting under its heat map side by side
(``--display-size`` pixels each, standardised the same way), titled with the predicted painter and its
probability. They go to ``gradcam_<UTC time>/`` in RUN_DIR, or in ``--out`` when given, with
``gradcam.csv`` listing the class explained and its probability. scikit-learn baselines have no
gradients: use a neural model.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from deeppainter.cli import common
from deeppainter.cli.predict import add_model_arguments, output_folder, timestamp
from deeppainter.errors import UserError
from deeppainter.runs import atomic_write_csv

MIN_DISPLAY = 256  # pixels a side: below this a heat map is not readable


def parse_args(argv=None):
    parser = common.make_parser("explain", __doc__)
    add_model_arguments(parser, "the gradcam_<time>/ folder of heat maps")
    parser.add_argument("images", nargs="+", type=Path, help="image files or folders of images (any size)")
    parser.add_argument("--class", dest="target", default="",
                        help="painter whose evidence to show; default: each image's predicted painter")
    parser.add_argument("--alpha", type=float, default=0.45, help="opacity of the heat map over the image")
    # ASSUMPTION: 384 px a side reads well on a laptop screen; the model's own input (64 px at the cpu
    # preset) is too small to see anything in.
    parser.add_argument("--display-size", type=int, default=384, metavar="PIXELS",
                        help="side of each of the two images in the figure (at least 256)")
    args = parser.parse_args(argv)
    if args.display_size < MIN_DISPLAY:
        parser.error(f"argument --display-size: {args.display_size} is too small to read; give {MIN_DISPLAY} or more")
    return args


def run(args) -> Path:
    from deeppainter.progress import progress

    common.seed_everything(args.seed)  # imports Keras quietly, before Grad-CAM's modules do
    from PIL import Image

    from deeppainter import plots
    from deeppainter.data.standardize import load_standardized
    from deeppainter.eval.explain import grad_cam, overlay
    from deeppainter.eval.inference import (
        expand_inputs,
        load_final_model,
        standardise_files,
    )

    final = load_final_model(args.run)
    if not final.is_neural:
        raise UserError(f"--run {args.run}: Grad-CAM needs a neural model (cae or a backbone), but this run "
                        f"saved the scikit-learn baseline {final.name!r}; explain a cv10 run of --model cae")
    if args.target and args.target not in final.classes:
        raise UserError(f"--class {args.target!r}: not a class of this model; known: {', '.join(final.classes)}")
    class_index = final.classes.index(args.target) if args.target else None
    paths = expand_inputs(args.images)
    images, reasons = standardise_files(paths, final)
    folder = output_folder(args, "explain", final.name) / f"gradcam_{timestamp()}"
    readable, rows = iter(images), []
    for number, (path, reason) in enumerate(progress(list(zip(paths, reasons)), desc="Grad-CAM", unit="img")):
        if reason:
            print(f"{path}: unreadable ({reason})")
            rows.append({"path": str(path), "error": reason})
            continue
        image = next(readable)
        heat, probabilities = grad_cam(final.model, image, class_index)
        top = int(np.argmax(probabilities))
        target = class_index if class_index is not None else top
        # The painting standardised as the model's input, at a size a person can read; the map scaled to it.
        size = args.display_size
        painting = load_standardized(path, size, final.mode, final.pad_color, final.trim_bars)
        heat = np.asarray(Image.fromarray(heat.astype("float32"), mode="F").resize((size, size), Image.BILINEAR))
        title = f"{Path(path).name} — predicted {final.classes[top]} ({100 * probabilities[top]:.1f}%)" + (
            "" if target == top else f" — evidence for {final.classes[target]} ({100 * probabilities[target]:.1f}%)")
        png = folder / f"{number:03d}_{Path(path).stem}_gradcam.png"
        plots.explanation(painting, overlay(painting, np.clip(heat, 0, 1), args.alpha), title, png)
        if np.ptp(heat) == 0:
            print(f"note: {path}: uniform heat map (the feature map is 1×1 at {final.image_size}px, or no positive "
                  f"evidence for the class); a larger data.image_size gives finer maps")
        rows.append({"path": str(path), "error": "", "class": final.classes[target],
                     "probability": float(probabilities[target]), "heatmap": png.name})
        print(f"{path}: {final.classes[target]} {100 * probabilities[target]:.1f}% → {png}")
    atomic_write_csv(folder / "gradcam.csv", pd.DataFrame(rows))
    print(f"heat maps in {folder}")
    return folder


main = common.command(run, parse_args)
