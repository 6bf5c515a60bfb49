"""``python -m deeppainter.cv10``: stratified 10-fold cross validation of the DeepPainter classifier.

Without ``--encoder`` it first pre-trains an autoencoder with the same preset, then trains the
frozen-encoder classifier in every fold and prints the paper's table beside ours.
``python -m deeppainter.cv10 merge RUN_DIR...`` combines fold subsets run on different machines;
``python -m deeppainter.cv10 ensemble RUN_DIR...`` averages finished runs' probabilities fold by fold;
``python -m deeppainter.cv10 models`` lists every model ``--model`` can name.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from deeppainter.cli import common, experiments
from deeppainter.data.datasets import (
    list_labelled,
    load_images,
    resolve_classes,
    sample_dir,
)
from deeppainter.data.splits import label_indices
from deeppainter.errors import UserError
from deeppainter.eval import protocol
from deeppainter.eval.protocol import finish
from deeppainter.models import registry
from deeppainter.runs import (
    atomic_write_csv,
    atomic_write_json,
    find_run,
    images_digest,
    load_run_config,
    open_run,
    portable_arguments,
    portable_path,
    read_json,
    relative_images,
    resolve_path,
    runs_path,
)


def parse_args(argv=None):
    parser = common.make_parser("cv10", __doc__, usage=USAGE)
    parser.add_argument("--data", type=Path, default=None,
                        help="folder of class folders (or manifest CSV); default: the embedded 120-painting sample")
    parser.add_argument("--classes", default="",
                        help="comma-separated class folders to use, or largest:N for the N largest; default: all")
    parser.add_argument("--model", default="cae", choices=registry.list_models(), metavar="NAME",
                        help="the model evaluated in the folds (deeppainter.models.registry; python -m "
                             "deeppainter.cv10 models lists each with what it is) — " + registry.help_text())
    parser.add_argument("--weights", type=Path, default=None,
                        help="backbone models only: local ImageNet weights file (e.g. "
                             "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5); default: random init")
    parser.add_argument("--encoder", type=Path, default=None,
                        help="a pretrain_ae run folder or encoder.keras; default: pre-train one first")
    parser.add_argument("--pretrain-data", type=Path, default=None,
                        help="images for pre-training when --encoder is not given; default: the --data "
                             "images with their labels ignored")
    parser.add_argument("--pretrain-exclude", default="auto",
                        help="folders of --pretrain-data to leave out: auto (the evaluated classes whenever "
                             "--pretrain-data is given), none, or a comma-separated list")
    parser.add_argument("--folds", default="",
                        help="comma-separated fold numbers to run (e.g. 0,3,7); default: all. "
                             "Combine subsets later with: cv10 merge RUN_DIR...")
    parser.add_argument("--save-final-model", action="store_true",
                        help="also train one model on all images and save it for predict/evaluate/explain")
    parser.add_argument("--experiment", type=Path, default=None,
                        help="an experiments/*.toml file supplying these options (explicit flags win)")
    parser.add_argument("--workers", type=int, default=2, help="threads decoding images")
    parser.add_argument("--verbose", action="store_true", help="show Keras progress for every epoch")
    args = parser.parse_args(argv)
    if args.experiment:
        experiments.apply(args, parser, args.experiment)
    if args.weights:  # a config value, so it is part of the run's fingerprint
        args.overrides.append(f"backbone.weights={portable_path(args.weights.expanduser())}")  # cwd-relative
    return args


def parse_folds(text: str, n_folds: int) -> list[int] | None:
    if not text:
        return None
    try:
        folds = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise UserError(f"--folds {text!r}: expected comma-separated integers like 0,3,7") from None
    if not folds or folds[0] < 0 or folds[-1] >= n_folds:
        raise UserError(f"--folds {text!r}: fold numbers must be in 0..{n_folds - 1}")
    return folds


def resolve_encoder(path: Path, image_size: int) -> Path:
    import keras

    path = Path(path)
    if path.is_dir():
        path = path / "encoder.keras"
    if not path.is_file():
        raise UserError(f"--encoder {path}: no such encoder.keras (give a pretrain_ae run folder or the file)")
    encoder = keras.models.load_model(path, compile=False)
    size = int(encoder.input_shape[1])
    if size != image_size:
        raise UserError(f"--encoder {path} expects {size}px images but data.image_size is {image_size}; "
                        f"add --set data.image_size={size} or pass an encoder trained at {image_size}px")
    return path


def pretrain_exclusions(args, classes: list[str]) -> tuple[str, ...]:
    if args.pretrain_exclude == "none":
        return ()
    if args.pretrain_exclude == "auto":  # an explicit pool never contains the evaluated classes
        return tuple(classes) if args.pretrain_data is not None else ()
    return tuple(c.strip() for c in args.pretrain_exclude.split(",") if c.strip())


def prepare_encoder(args, cfg, classes, data: Path, run_dir: Path) -> Path:
    """The encoder to evaluate: ``--encoder``, or a (reused or new) pre-training run; noted in encoder.json."""
    if args.encoder is not None:
        encoder_path = resolve_encoder(args.encoder, cfg.data.image_size)
    else:
        from deeppainter.train.pretrain import pretraining_run

        pretrain_data = resolve_path(args.pretrain_data) if args.pretrain_data else data
        exclude = pretrain_exclusions(args, classes)
        if pretrain_data.resolve() == data.resolve() and not exclude:
            print("ASSUMPTION: no --encoder or --pretrain-data given, so the autoencoder is pre-trained on the "
                  "same images (labels ignored), as in the paper's default setting")
        pretrain_dir = pretraining_run(cfg, args.preset, args.seed, args.out, pretrain_data, exclude,
                                       verbose=1 if args.verbose else 2)
        encoder_path = pretrain_dir / "encoder.keras"
    atomic_write_json(run_dir / "encoder.json", {"encoder": runs_path(encoder_path, run_dir.parent)})
    return encoder_path


def build_model(args, cfg, classes, data: Path, images, run_dir: Path) -> registry.FoldModel:
    """The registered model ``--model``, with an encoder prepared first when it needs one."""
    spec = registry.get_model(args.model)
    encoder_path = prepare_encoder(args, cfg, classes, data, run_dir) if spec.encoder_needed(cfg) else None
    ctx = registry.FoldContext(args.model, cfg, images, classes, args.seed, run_dir / "cache", encoder_path,
                               verbose=2 if args.verbose else 0)
    return registry.create_model(ctx)


def run(args) -> Path:
    cfg = common.resolve_config(args)
    common.seed_everything(args.seed)
    data = resolve_path(args.data) if args.data else sample_dir()
    classes_requested = resolve_classes(data, args.classes)
    table = list_labelled(data, classes_requested, min_per_class=max(cfg.cv.folds, cfg.data.min_per_class),
                          max_per_class=cfg.data.max_per_class, seed=args.seed)
    classes = sorted(table["label"].unique())
    if len(classes) < 2:
        raise UserError(f"--data {data}: only one class ({classes[0]}); cross validation needs at least two")
    only_folds = parse_folds(args.folds, cfg.cv.folds)
    final_format = registry.get_model(args.model).final_format
    if args.save_final_model and final_format is None:
        savable = ", ".join(name for name in registry.list_models() if registry.get_model(name).final_format)
        raise UserError(f"--save-final-model is available for {savable}; {args.model} is a study model "
                        f"(drop --save-final-model)")
    # Paths as portable text (runs.portable_path); the image list, relative to the data, stands for the data.
    arguments = {"data": portable_path(args.data if args.data else data), "classes": classes, "model": args.model,
                 "images": images_digest([portable_path(p, data) for p in table["path"]], table["label"]),
                 "encoder": runs_path(args.encoder, args.out) if args.encoder else "",
                 "pretrain_data": portable_path(args.pretrain_data) if args.pretrain_data else "",
                 "pretrain_exclude": args.pretrain_exclude,
                 "experiment": args.experiment.stem if args.experiment else ""}
    finished = find_run("cv10", args.preset, args.seed, cfg, arguments, args.out, done=True)
    if finished is not None and (not args.save_final_model or (finished / "final_model.json").exists()):
        # Every fold of this exact run is finished: nothing to train again (use another --seed or --out for a repeat).
        print(f"already finished: {finished}")
        print(pd.read_csv(finished / "paper_table.csv").fillna("").to_string(index=False))
        return finished
    if finished is not None:  # only the final model is missing: add it to the finished run
        run_dir, resumed = finished, True
    else:
        run_dir, resumed = open_run("cv10", args.preset, args.seed, cfg, arguments, args.out)
    print(f"{'resuming' if resumed else 'writing'} cv10 run {run_dir}")
    images, ok = load_images(list(table["path"]), cfg.data, workers=args.workers,
                             skipped_csv=run_dir / "skipped.csv", root=data)
    if not ok.all():
        print(f"{int((~ok).sum())} unreadable images left out; listed in {run_dir / 'skipped.csv'}")
        table = table[ok].reset_index(drop=True)
    atomic_write_csv(run_dir / "images.csv", relative_images(table, data))
    model = build_model(args, cfg, classes, data, images, run_dir)
    protocol.run_protocol(model, relative_images(table, data), classes, cfg, args.seed, run_dir, only_folds)
    record, _ = load_run_config(run_dir)
    finish(run_dir, record, cfg, [run_dir])
    if args.save_final_model:
        labels = label_indices(table["label"], classes)
        path = run_dir / f"final_model.{final_format}"
        model.save_final(labels, path)
        atomic_write_json(run_dir / "final_model.json", {
            "path": path.name, "model": args.model, "classes": classes, "image_size": cfg.data.image_size,
            "mode": cfg.data.mode, "pad_color": list(cfg.data.pad_color), "trim_bars": cfg.data.trim_bars})
        print(f"final model trained on all {len(table)} images: {path}")
    return run_dir


def _subcommand_args(argv, name: str, description: str, what: str):
    import argparse

    parser = argparse.ArgumentParser(prog=f"python -m deeppainter.cv10 {name}", description=description)
    parser.add_argument("run_dirs", nargs="+", type=Path, help=what)
    parser.add_argument("--out", type=Path, default=None, help="runs root for the new run (default: first's parent)")
    args = parser.parse_args(argv)
    records = []
    for run_dir in args.run_dirs:
        if not (run_dir / "config.json").is_file():
            raise UserError(f"{run_dir}: not a run folder (no config.json)")
        records.append(read_json(run_dir / "config.json"))
    if any(r["command"] != "cv10" for r in records):
        raise UserError(f"cv10 {name} takes cv10 run folders only")
    return args, records


def merge(argv) -> Path:
    import shutil

    args, records = _subcommand_args(argv, "merge", "Combine cv10 runs of different --folds subsets into one result.",
                                     "cv10 run folders of the same configuration")
    if len({r["fingerprint"] for r in records}) != 1:
        raise UserError("these runs differ in configuration or data (fingerprints differ); only subsets of one "
                        "cv10 configuration can be merged")
    seen: dict[int, Path] = {}
    for run_dir in args.run_dirs:
        for fold in protocol.finished_folds(run_dir):
            if int(fold) in seen:
                raise UserError(f"fold {fold} is in both {seen[int(fold)]} and {run_dir}; keep one of them")
            seen[int(fold)] = run_dir
    first, cfg = load_run_config(args.run_dirs[0])
    out_root = args.out or args.run_dirs[0].parent
    merged, _ = open_run("cv10", first["preset"], first["seed"], cfg, portable_arguments(first["arguments"], out_root),
                         out_root, resume=False)
    (merged / "folds").mkdir()
    for run_dir in args.run_dirs:
        for path in (run_dir / "folds").glob("fold??.*"):
            if not path.name.endswith(".csv") or path.name.endswith(".history.csv"):
                shutil.copy2(path, merged / "folds" / path.name)  # scores, choices, timings, histories
        for fold, part in protocol.collect_folds([run_dir]).groupby("fold"):  # predictions, either form
            atomic_write_csv(protocol.fold_file(merged, int(fold)), part)
    atomic_write_json(merged / "merged_from.json", [runs_path(d, merged.parent) for d in args.run_dirs])
    record, _ = load_run_config(merged)
    finish(merged, record, cfg, [merged])
    return merged


def ensemble(argv) -> Path:
    """Average the out-of-fold probabilities of finished runs that used the very same folds.

    The weights are fixed (equal), so nothing is tuned on the test folds.
    """
    args, records = _subcommand_args(argv, "ensemble", ensemble.__doc__,
                                     "finished cv10 run folders on the same images, classes, seed and folds")
    frames = []
    for run_dir in args.run_dirs:
        if not (run_dir / "predictions.csv").is_file():
            raise UserError(f"{run_dir}: no predictions.csv; only finished cv10 runs can be ensembled")
        frames.append(protocol.read_predictions(run_dir).sort_values("path").reset_index(drop=True))
    classes = records[0]["arguments"]["classes"]
    for run_dir, record, frame in zip(args.run_dirs, records, frames):
        if (record["arguments"]["classes"] != classes or record["seed"] != records[0]["seed"]
                or not frame[["path", "fold"]].equals(frames[0][["path", "fold"]])):
            raise UserError(f"{run_dir}: different images, classes, seed or folds than {args.run_dirs[0]}")
    probability_columns = [f"prob_{c}" for c in classes]
    combined = frames[0][["path", "true", "fold"]].copy()
    combined[probability_columns] = sum(f[probability_columns].to_numpy() for f in frames) / len(frames)
    combined.insert(2, "predicted", [classes[i] for i in combined[probability_columns].to_numpy().argmax(axis=1)])
    name = "ensemble(" + "+".join(r["arguments"]["model"] for r in records) + ")"
    first, cfg = load_run_config(args.run_dirs[0])
    out_root = args.out or args.run_dirs[0].parent
    arguments = {**portable_arguments(first["arguments"], out_root), "model": name, "ensemble_of": [runs_path(d, out_root) for d in args.run_dirs]}
    run_dir, _ = open_run("cv10", first["preset"], first["seed"], cfg, arguments, out_root, resume=False)
    for fold, part in combined.groupby("fold"):
        atomic_write_csv(protocol.fold_file(run_dir, int(fold)), part)
    record, _ = load_run_config(run_dir)
    finish(run_dir, record, cfg, [run_dir])
    return run_dir


def models(argv) -> None:
    """Print every registered model with what it is."""
    import argparse

    argparse.ArgumentParser(prog="python -m deeppainter.cv10 models", description=models.__doc__).parse_args(argv)
    width = max(len(name) for name in registry.list_models())
    for name, text in registry.describe_all():
        print(f"{name:<{width}}  {text}")


SUBCOMMANDS = {"merge": merge, "ensemble": ensemble, "models": models}
USAGE = ("python -m deeppainter.cv10 [options]\n"
         "       python -m deeppainter.cv10 merge RUN_DIR... [--out DIR]\n"
         "       python -m deeppainter.cv10 ensemble RUN_DIR... [--out DIR]\n"
         "       python -m deeppainter.cv10 models")


@common.entry_point
def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in SUBCOMMANDS:
        SUBCOMMANDS[argv[0]](argv[1:])
    else:
        run(parse_args(argv))
    return 0
