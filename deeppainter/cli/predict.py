"""``python -m deeppainter.predict [--run RUN_DIR] IMAGE_OR_DIR...``: top-k painters for new images.

RUN_DIR is a cv10 run folder made with ``--save-final-model``; without it, the ready model shipped in the
package answers (van Gogh, Rembrandt, Renoir; deeppainter/ready_model/PROVENANCE.md). A model with an
open-set scorer adds "none of the known painters" below its threshold, and its probabilities are
temperature-scaled; ``--claim PAINTER`` asks the authentication question. Every image (any size or format)
is standardised exactly as in training (size, pad/crop/resize, pad colour from
``final_model.json``). The top-k painters are printed and written, with every class's
probability, to ``predictions_<UTC time>.csv`` in ``--out`` when given, otherwise in a fresh
``results/runs/<time>_predict_<model>/`` (never in RUN_DIR, which stays as cv10 left it).
Unreadable files are listed with the reason in the same CSV, never a crash; when no input
could be read at all, each is listed with its reason and the command exits with status 2.
"""
from __future__ import annotations

import datetime as _dt
import sys
from pathlib import Path

from deeppainter.cli import common
from deeppainter.errors import UserError
from deeppainter.eval.inference import expand_inputs, load_final_model, predict_files
from deeppainter.runs import DEFAULT_RUNS_ROOT, atomic_write_csv


def output_folder(args, command: str, model_name: str) -> Path:
    """``--out`` when given, otherwise a fresh ``results/runs/<time>_<command>_<model>/``; never the model's run folder."""
    if args.out is not None:
        return Path(args.out)
    DEFAULT_RUNS_ROOT.mkdir(parents=True, exist_ok=True)
    stamp, counter = timestamp(), 1
    while True:  # mkdir is the claim: two commands started in the same second get -2, -3, ...
        folder = DEFAULT_RUNS_ROOT / (f"{stamp}_{command}_{model_name}" if counter == 1
                                      else f"{stamp}-{counter}_{command}_{model_name}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            counter += 1



def timestamp() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")



def add_model_arguments(parser, what: str, ready_default: bool = False) -> None:
    common.add_run_option(parser, ready_default)
    parser.set_defaults(out=None)
    for action in parser._actions:  # the shared --out means "runs root" elsewhere; say what it means here
        if action.dest == "out":
            action.help = f"folder for {what}; default: a fresh {DEFAULT_RUNS_ROOT}/<time>_<command>_<model>/ " \
                          f"(never the --run folder)"



def parse_args(argv=None):
    parser = common.make_parser("predict", __doc__)
    add_model_arguments(parser, "predictions_<time>.csv", ready_default=True)
    parser.add_argument("images", nargs="+", type=Path, help="image files or folders of images (any size)")
    parser.add_argument("--top-k", type=int, default=3, help="how many painters to print per image")
    parser.add_argument("--claim", default=None, metavar="PAINTER",
                        help="authentication: the calibrated probability that each image is by PAINTER rather than "
                             "another painter of the model, and its percentile among PAINTER's own works")
    args = parser.parse_args(argv)
    if args.top_k < 1:
        raise UserError(f"--top-k {args.top_k}: must be at least 1")
    return args



def describe_row(row: dict, top_k: int, claim: str | None) -> str:
    """The printed line of one image: top-k, the open-set verdict, the claim."""
    text = ", ".join(f"{row[f'top{r}']} {100 * row[f'prob{r}']:.1f}%" for r in range(1, top_k + 1))
    if row.get("unknown"):
        text += f" — none of the known painters (score {row['known_score']:.3g} below {row['threshold']:.3g})"
    if claim is not None:
        text += f" — claim {claim}: {100 * row['claim_probability']:.1f}%"
        if "claim_percentile" in row:
            text += (f", percentile {row['claim_percentile']:.0f} of {claim}'s own works by probability, "
                     f"{row['score_percentile']:.0f} by known-painter score")
    return text


def run(args) -> Path:
    common.seed_everything(args.seed)
    final = load_final_model(args.run)
    if args.claim is not None and args.claim not in final.classes:
        raise UserError(f"--claim {args.claim}: not a painter of this model; choose one of {', '.join(final.classes)}")
    paths = expand_inputs(args.images)
    predictions = predict_files(final, paths, args.top_k, claim=args.claim)
    table = predictions.table
    if not len(predictions.images):
        for path, reason in zip(paths, table["error"]):
            print(f"{path}: unreadable ({reason})", file=sys.stderr)
        raise UserError(f"none of the {len(paths)} inputs could be read as an image (each is listed above with "
                        f"its reason); nothing was predicted")
    top_k = min(args.top_k, len(final.classes))
    for row in table.to_dict(orient="records"):
        if row["error"]:
            print(f"{row['path']}: unreadable ({row['error']})")
        else:
            print(f"{row['path']}: {describe_row(row, top_k, args.claim)}")
    csv_path = output_folder(args, "predict", final.name) / f"predictions_{timestamp()}.csv"
    atomic_write_csv(csv_path, table)
    bad = int((table["error"] != "").sum())
    print(f"{len(paths) - bad} images predicted with {final.name} ({bad} unreadable); written to {csv_path}")
    return csv_path



main = common.command(run, parse_args)
