"""``python -m deeppainter.evaluate --run RUN_DIR --data DIR``: score a saved model on new labelled images.

DIR holds class folders named like the training classes (a subset is fine). Images are
standardised exactly as in training. The run folder ``<out>/<time>_evaluate_<preset>_seed<k>/``
gets metrics.json (accuracy, balanced accuracy, macro precision/recall/F1, bootstrap CI,
most-confused pairs, expected calibration error), predictions.csv, confusion_matrix.png/.csv,
reliability.png and classification_report.txt. Probabilities are the model's calibrated ones when it
carries a temperature. ``--unknown UNKNOWN_DIR`` (painter folders of painters *not* in the model) adds
the open-set numbers for the model's own scorer and threshold: AUROC known-vs-unknown, FPR at 95% of
knowns kept, the share of unknowns rejected and of knowns kept (unknown_predictions.csv).
"""
from __future__ import annotations

from pathlib import Path

from deeppainter.cli import common
from deeppainter.errors import UserError
from deeppainter.runs import (
    atomic_write_csv,
    images_digest,
    mark_done,
    open_run,
    portable_path,
    relative_images,
    runs_path,
)


def parse_args(argv=None):
    parser = common.make_parser("evaluate", __doc__)
    common.add_run_option(parser, ready_default=True)
    parser.add_argument("--data", type=Path, required=True,
                        help="folder of class folders (or manifest CSV with path,label) named like the training classes")
    parser.add_argument("--classes", default="",
                        help="comma-separated class folders of --data to score (default: all; each must be a class "
                             "of the model)")
    parser.add_argument("--unknown", type=Path, default=None, metavar="UNKNOWN_DIR",
                        help="painter folders of painters not in the model: open-set numbers (the model must carry "
                             "a trust record: cv10 --save-final-model with unknown painters)")
    parser.add_argument("--workers", type=int, default=2, help="threads decoding images")
    return parser.parse_args(argv)


def score_unknown(final, assessed: dict, unknown, predictions, args, data_cfg, run_dir: Path) -> dict:
    """Load ``--unknown``'s images as the model's own are, score them, write unknown_predictions.csv."""
    from deeppainter.data.datasets import load_images
    from deeppainter.eval import trust

    images, ok = load_images(list(unknown["path"]), data_cfg, workers=args.workers,
                             skipped_csv=run_dir / "skipped_unknown.csv", root=args.unknown)
    frame, result = trust.final_openset(final, assessed, images, unknown[ok].reset_index(drop=True),
                                        predictions["true"] == predictions["predicted"])
    atomic_write_csv(run_dir / "unknown_predictions.csv", relative_images(frame, args.unknown))
    return result


def run(args) -> Path:
    cfg = common.resolve_config(args)
    common.seed_everything(args.seed)
    import pandas as pd

    from deeppainter.data.datasets import list_labelled, load_images
    from deeppainter.data.splits import label_indices
    from deeppainter.eval import calibration, metrics, trust
    from deeppainter.eval.inference import load_final_model

    final = load_final_model(args.run)
    unknown_table = None
    if args.unknown is not None:
        if final.trust is None:
            raise UserError(f"--unknown: the model in {args.run} carries no open-set scorer; re-run cv10 with "
                            f"--save-final-model and unknown painters (--unknown DIR, or a data root with others)")
        unknown_table = trust.unknown_table(str(args.unknown), args.unknown, final.classes)
    table = list_labelled(args.data, tuple(c.strip() for c in args.classes.split(",") if c.strip()))
    unknown = sorted(set(table["label"]) - set(final.classes))
    if unknown:
        raise UserError(f"--data {args.data}: class folders {', '.join(unknown)} are not classes of the model "
                        f"in {args.run}; known classes: {', '.join(final.classes)} (rename or remove those folders)")
    arguments = {"model": runs_path(args.run, args.out), "data": portable_path(args.data),
                 "images": images_digest([portable_path(p, args.data) for p in table["path"]], table["label"])}
    if args.unknown is not None:
        arguments["unknown"] = portable_path(args.unknown)
    run_dir, _ = open_run("evaluate", args.preset, args.seed, cfg, arguments, args.out)
    data_cfg = final.data_config(cache_dir=cfg.data.cache_dir)  # the same standardisation as predict / explain
    images, ok = load_images(list(table["path"]), data_cfg, workers=args.workers,
                             skipped_csv=run_dir / "skipped.csv", root=args.data)
    if not ok.all():
        print(f"{int((~ok).sum())} unreadable images left out; listed in {run_dir / 'skipped.csv'}")
        table = table[ok].reset_index(drop=True)
    assessed = final.assess(images)
    probabilities = assessed["probabilities"]
    predictions = pd.DataFrame({"path": table["path"], "true": table["label"],
                                "predicted": [final.classes[i] for i in probabilities.argmax(axis=1)], "fold": 0})
    for index, name in enumerate(final.classes):
        predictions[f"prob_{name}"] = probabilities[:, index]
    if final.trust is not None:  # the open-set score of every image, for paired AUROC tests (report --paired)
        predictions["known_score"] = assessed["known_score"]
    summary = metrics.summarise(predictions, final.classes, cfg.cv.bootstrap, args.seed)
    title = f"{final.name} on {Path(args.data).name}, {len(predictions)} images"
    truth = label_indices(predictions["true"], final.classes)
    ece = calibration.expected_calibration_error(probabilities, truth)
    calibration.reliability_diagram(probabilities, truth, run_dir / "reliability.png", title)
    extra = {"model": final.name, "model_run": arguments["model"], "data": arguments["data"],
             "balanced_accuracy": summary["balanced_accuracy_pooled"], "macro_f1": summary["f1_mean"],
             "calibration": {"ece": ece, "ece_bins": calibration.ECE_BINS,
                             "temperature": final.trust["temperature"] if final.trust else None}}
    if unknown_table is not None:
        extra["openset"] = score_unknown(final, assessed, unknown_table, predictions, args, data_cfg, run_dir)
    metrics.write_reports(run_dir, relative_images(predictions, args.data), summary, extra, title=title)
    print(f"{final.name} on {len(predictions)} images of {args.data}:")
    print(f"  accuracy          {metrics.format_percent(summary['accuracy_pooled'])}% "
          f"(95% CI {100 * summary['accuracy_ci95'][0]:.1f}–{100 * summary['accuracy_ci95'][1]:.1f})")
    print(f"  balanced accuracy {metrics.format_percent(summary['balanced_accuracy_pooled'])}%")
    print(f"  macro F1          {metrics.format_percent(summary['f1_mean'])}%")
    print(f"  calibration error {100 * ece:.2f}% (ECE, {calibration.ECE_BINS} bins"
          + (", temperature-scaled probabilities)" if final.trust else ")"))
    for pair in summary["most_confused"][:3]:
        print(f"  most confused: {pair['pair']} ({pair['confusions']} images)")
    if "openset" in extra:
        result = extra["openset"]
        print(f"  open set vs {result['n_unknown']} paintings by {len(result['unknown_painters'])} unknown painters "
              f"({final.trust['scorer']} score): AUROC {result['auroc']:.3f}, FPR at 95% of knowns kept "
              f"{100 * result['fpr95']:.1f}%; at the model's threshold {100 * result['known_kept']:.1f}% of knowns "
              f"kept, {100 * result['unknown_rejected']:.1f}% of unknowns rejected")
    mark_done(run_dir)
    print(f"run folder: {run_dir}")
    return run_dir


main = common.command(run, parse_args)
