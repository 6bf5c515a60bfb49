"""``python -m deeppainter.evaluate --run RUN_DIR --data DIR``: score a saved model on new labelled images.

DIR holds class folders named like the training classes (a subset is fine). Images are
standardised exactly as in training. The run folder ``<out>/<time>_evaluate_<preset>_seed<k>/``
gets metrics.json (accuracy, balanced accuracy, macro precision/recall/F1, bootstrap CI,
most-confused pairs), predictions.csv, confusion_matrix.png/.csv and classification_report.txt.
"""
from __future__ import annotations

from pathlib import Path

from deeppainter.cli import common
from deeppainter.errors import UserError
from deeppainter.runs import (
    images_digest,
    mark_done,
    open_run,
    portable_path,
    relative_images,
    runs_path,
)


def parse_args(argv=None):
    parser = common.make_parser("evaluate", __doc__)
    common.add_run_option(parser)
    parser.add_argument("--data", type=Path, required=True,
                        help="folder of class folders (or manifest CSV with path,label) named like the training classes")
    parser.add_argument("--workers", type=int, default=2, help="threads decoding images")
    return parser.parse_args(argv)


def run(args) -> Path:
    cfg = common.resolve_config(args)
    common.seed_everything(args.seed)
    import pandas as pd

    from deeppainter.data.datasets import list_labelled, load_images
    from deeppainter.eval import metrics
    from deeppainter.eval.inference import load_final_model

    final = load_final_model(args.run)
    table = list_labelled(args.data)
    unknown = sorted(set(table["label"]) - set(final.classes))
    if unknown:
        raise UserError(f"--data {args.data}: class folders {', '.join(unknown)} are not classes of the model "
                        f"in {args.run}; known classes: {', '.join(final.classes)} (rename or remove those folders)")
    arguments = {"model": runs_path(args.run, args.out), "data": portable_path(args.data),
                 "images": images_digest([portable_path(p, args.data) for p in table["path"]], table["label"])}
    run_dir, _ = open_run("evaluate", args.preset, args.seed, cfg, arguments, args.out)
    data_cfg = final.data_config(cache_dir=cfg.data.cache_dir)  # the same standardisation as predict / explain
    images, ok = load_images(list(table["path"]), data_cfg, workers=args.workers,
                             skipped_csv=run_dir / "skipped.csv", root=args.data)
    if not ok.all():
        print(f"{int((~ok).sum())} unreadable images left out; listed in {run_dir / 'skipped.csv'}")
        table = table[ok].reset_index(drop=True)
    probabilities = final.predict_proba(images)
    predictions = pd.DataFrame({"path": table["path"], "true": table["label"],
                                "predicted": [final.classes[i] for i in probabilities.argmax(axis=1)], "fold": 0})
    for index, name in enumerate(final.classes):
        predictions[f"prob_{name}"] = probabilities[:, index]
    summary = metrics.summarise(predictions, final.classes, cfg.cv.bootstrap, args.seed)
    extra = {"model": final.name, "model_run": arguments["model"], "data": arguments["data"],
             "balanced_accuracy": summary["balanced_accuracy_pooled"], "macro_f1": summary["f1_mean"]}
    metrics.write_reports(run_dir, relative_images(predictions, args.data), summary, extra,
                             title=f"{final.name} on {Path(args.data).name}, {len(predictions)} images")
    print(f"{final.name} on {len(predictions)} images of {args.data}:")
    print(f"  accuracy          {metrics.format_percent(summary['accuracy_pooled'])}% "
          f"(95% CI {100 * summary['accuracy_ci95'][0]:.1f}–{100 * summary['accuracy_ci95'][1]:.1f})")
    print(f"  balanced accuracy {metrics.format_percent(summary['balanced_accuracy_pooled'])}%")
    print(f"  macro F1          {metrics.format_percent(summary['f1_mean'])}%")
    for pair in summary["most_confused"][:3]:
        print(f"  most confused: {pair['pair']} ({pair['confusions']} images)")
    mark_done(run_dir)
    print(f"run folder: {run_dir}")
    return run_dir


main = common.command(run, parse_args)
