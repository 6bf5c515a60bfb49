"""``python -m deeppainter.cv10``: stratified 10-fold cross validation of the DeepPainter classifier.

Without ``--encoder`` it first pre-trains an autoencoder with the same preset, then trains the
frozen-encoder classifier in every fold and prints the paper's table beside ours.
``python -m deeppainter.cv10 merge RUN_DIR...`` combines fold subsets run on different machines;
``python -m deeppainter.cv10 ensemble RUN_DIR...`` averages finished runs' probabilities fold by fold.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from deeppainter import cli, crossval, evaluation, experiments
from deeppainter.datasets import list_labelled, load_images, resolve_classes, sample_dir
from deeppainter.errors import UserError
from deeppainter.published import PUBLISHED, task_name
from deeppainter.runs import (atomic_write_csv, atomic_write_json, find_run, load_run_config, mark_done,
                              open_run, read_json)
from deeppainter.stacking import STACK, StackModel, uses_encoder

CAE = "cae"
# Study models: the frozen encoder's style descriptors (mean, std, Gram of each conv layer) → RBF SVM,
# alone or beside the handcrafted features of deeppainter.features; and the stack of SVM members.
ENCODER_SVMS = ("cae-svm", "cae-features-svm")
STUDY_MODELS = (*ENCODER_SVMS, STACK)


def model_names() -> list[str]:
    from deeppainter.backbones import BACKBONES
    from deeppainter.baselines import BASELINES

    return [CAE, *STUDY_MODELS, *BASELINES, *BACKBONES]


def parse_args(argv=None):
    parser = cli.make_parser("cv10", __doc__)
    parser.add_argument("--data", type=Path, default=None,
                        help="folder of class folders (or manifest CSV); default: the embedded 120-painting sample")
    parser.add_argument("--classes", default="",
                        help="comma-separated class folders to use, or largest:N for the N largest; default: all")
    parser.add_argument("--model", default=CAE, choices=model_names(),
                        help="cae = pre-trained encoder + dense head (DeepPainter); cae-svm / cae-features-svm = "
                             "encoder style descriptors + SVM; stack = classifier.stack_members combined by a "
                             "logistic regression fitted inside the training folds; the others are the "
                             "paper's Table 1 baselines and transfer backbones, run in the same folds")
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
        args.overrides.append(f"backbone.weights={args.weights.expanduser().resolve()}")
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
        from deeppainter.training import pretraining_run

        pretrain_data = args.pretrain_data or data
        exclude = pretrain_exclusions(args, classes)
        if pretrain_data.resolve() == data.resolve() and not exclude:
            print("ASSUMPTION: no --encoder or --pretrain-data given, so the autoencoder is pre-trained on the "
                  "same images (labels ignored), as in the paper's default setting")
        pretrain_dir = pretraining_run(cfg, args.preset, args.seed, args.out, pretrain_data, exclude,
                                       verbose=1 if args.verbose else 2)
        encoder_path = pretrain_dir / "encoder.keras"
    atomic_write_json(run_dir / "encoder.json", {"encoder": str(encoder_path.resolve())})
    return encoder_path


def build_model(args, cfg, classes, data: Path, images, run_dir: Path):
    from deeppainter.backbones import BACKBONES, BackboneModel

    if args.model in BACKBONES:
        return BackboneModel(args.model, cfg, images, len(classes), args.seed, verbose=2 if args.verbose else 0)
    needs_encoder = args.model in (CAE, *ENCODER_SVMS) or (args.model == STACK and uses_encoder(cfg))
    if not needs_encoder and args.model != STACK:
        return crossval.BaselineModel(args.model, images, args.seed, cfg.classifier.svm_power,
                                      cfg.classifier.feature_scales)
    encoder_path = prepare_encoder(args, cfg, classes, data, run_dir) if needs_encoder else None
    if args.model == STACK:
        return StackModel(cfg, images, args.seed, run_dir / "cache", encoder_path)
    if args.model in ENCODER_SVMS:
        return crossval.EncoderSVMModel(encoder_path, images, args.seed, run_dir / "cache",
                                        with_image_features=args.model == "cae-features-svm",
                                        svm_power=cfg.classifier.svm_power)
    return crossval.EncoderHeadModel(encoder_path, cfg, images, len(classes), args.seed, run_dir / "cache",
                                     verbose=2 if args.verbose else 0)


def paper_table(summary: dict, model: str, classes: list[str]) -> pd.DataFrame:
    rows = [{"source": "ours (this run)", "model": model,
             **{m: evaluation.format_percent(summary[f"{m}_mean"], summary[f"{m}_std"]) for m in evaluation.METRICS},
             "95% CI (acc)": "–".join(f"{100 * v:.1f}" for v in summary["accuracy_ci95"])}]
    for source, published_model, values in PUBLISHED.get(task_name(classes), []):
        rows.append({"source": source, "model": published_model,
                     **{m: f"{values[m]:.2f}" if m in values else "" for m in evaluation.METRICS}})
    return pd.DataFrame(rows).fillna("")


def finish(run_dir: Path, record: dict, cfg, folds_dirs: list[Path]) -> dict | None:
    """Aggregate when every fold is present; write the reports and return the summary."""
    predictions = crossval.collect_folds(folds_dirs)
    if predictions.empty or predictions["fold"].nunique() < cfg.cv.folds:
        done = sorted(predictions["fold"].unique()) if not predictions.empty else []
        print(f"folds finished so far: {done} of {cfg.cv.folds}; run the rest, then `cv10 merge` if they "
              f"ran in other folders")
        return None
    classes = record["arguments"]["classes"]
    summary = evaluation.summarise(predictions, classes, cfg.cv.bootstrap, record["seed"])
    infos = crossval.fold_infos(folds_dirs)
    histories = [pd.read_csv(f) for d in folds_dirs for f in sorted((Path(d) / "folds").glob("fold??.history.csv"))]
    if histories:
        atomic_write_csv(run_dir / "history.csv", pd.concat(histories, ignore_index=True))
    model = record["arguments"]["model"]
    table = paper_table(summary, model, classes)
    extra = {"model": model, "task": task_name(classes), "preset": record["preset"],
             "experiment": record["arguments"].get("experiment", ""),
             "wall_seconds_folds": float(sum(i["seconds"] for i in infos)),
             "fold_details": infos}
    evaluation.write_reports(run_dir, predictions, summary, extra,
                             title=f"{model}, {len(predictions)} images, {cfg.cv.folds}-fold CV")
    atomic_write_csv(run_dir / "paper_table.csv", table)
    print(f"\n{cfg.cv.folds}-fold cross validation, {len(predictions)} images, {len(classes)} classes "
          f"(percent, mean ± std over folds):")
    print(table.to_string(index=False))
    for pair in summary["most_confused"][:3]:
        print(f"most confused: {pair['pair']} ({pair['confusions']} images)")
    mark_done(run_dir)
    print(f"run folder: {run_dir}")
    return summary


def run(args) -> Path:
    cfg = cli.resolve_config(args)
    cli.seed_everything(args.seed)
    data = Path(args.data) if args.data else sample_dir()
    classes_requested = resolve_classes(data, args.classes)
    table = list_labelled(data, classes_requested, min_per_class=max(cfg.cv.folds, cfg.data.min_per_class),
                          max_per_class=cfg.data.max_per_class, seed=args.seed)
    classes = sorted(table["label"].unique())
    if len(classes) < 2:
        raise UserError(f"--data {data}: only one class ({classes[0]}); cross validation needs at least two")
    only_folds = parse_folds(args.folds, cfg.cv.folds)
    if args.save_final_model and args.model in STUDY_MODELS:
        raise UserError(f"--save-final-model is available for cae, the baselines and the backbones; "
                        f"{args.model} is a study model (drop --save-final-model)")
    arguments = {"data": str(data.resolve()), "classes": classes, "model": args.model,
                 "encoder": str(args.encoder.resolve()) if args.encoder else "",
                 "pretrain_data": str(args.pretrain_data.resolve()) if args.pretrain_data else "",
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
                             skipped_csv=run_dir / "skipped.csv")
    if not ok.all():
        print(f"{int((~ok).sum())} unreadable images left out; listed in {run_dir / 'skipped.csv'}")
        table = table[ok].reset_index(drop=True)
    atomic_write_csv(run_dir / "images.csv", table)
    model = build_model(args, cfg, classes, data, images, run_dir)
    crossval.run_protocol(model, table, classes, cfg, args.seed, run_dir, only_folds)
    record, _ = load_run_config(run_dir)
    finish(run_dir, record, cfg, [run_dir])
    if args.save_final_model:
        labels = crossval.label_indices(table["label"], classes)
        neural = not isinstance(model, crossval.BaselineModel)
        path = run_dir / ("final_model.keras" if neural else "final_model.pkl")
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
        for fold in crossval.collect_folds([run_dir])["fold"].unique() if (run_dir / "folds").is_dir() else []:
            if int(fold) in seen:
                raise UserError(f"fold {fold} is in both {seen[int(fold)]} and {run_dir}; keep one of them")
            seen[int(fold)] = run_dir
    first, cfg = load_run_config(args.run_dirs[0])
    merged, _ = open_run("cv10", first["preset"], first["seed"], cfg, first["arguments"],
                         args.out or args.run_dirs[0].parent, resume=False)
    (merged / "folds").mkdir()
    for run_dir in args.run_dirs:
        for path in (run_dir / "folds").glob("fold??*"):
            shutil.copy2(path, merged / "folds" / path.name)
    atomic_write_json(merged / "merged_from.json", [str(d.resolve()) for d in args.run_dirs])
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
        frames.append(pd.read_csv(run_dir / "predictions.csv").sort_values("path").reset_index(drop=True))
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
    arguments = {**first["arguments"], "model": name, "ensemble_of": [str(d.resolve()) for d in args.run_dirs]}
    run_dir, _ = open_run("cv10", first["preset"], first["seed"], cfg, arguments,
                          args.out or args.run_dirs[0].parent, resume=False)
    for fold, part in combined.groupby("fold"):
        atomic_write_csv(crossval.fold_file(run_dir, int(fold)), part)
    record, _ = load_run_config(run_dir)
    finish(run_dir, record, cfg, [run_dir])
    return run_dir


SUBCOMMANDS = {"merge": merge, "ensemble": ensemble}


@cli.entry_point
def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in SUBCOMMANDS:
        SUBCOMMANDS[argv[0]](argv[1:])
    else:
        run(parse_args(argv))
    return 0


if __name__ == "__main__":
    main()
