"""``python -m deeppainter.cv10``: stratified 10-fold cross validation of the DeepPainter classifier.

The encoder comes from ``--encoder``, or is pre-trained on ``--pretrain-data`` (minus the evaluated
classes); on the embedded sample with neither, the encoder shipped for the preset
(deeppainter/pretrained_encoders/, trained on other painters) is used. To pre-train on the evaluated
images themselves, ``--pretrain-in-fold`` pre-trains a new encoder in every fold on that fold's training
images only (labels ignored); ``--transductive-pretrain`` pre-trains once on all of them, test folds
included, and the run is marked transductive. Then the frozen-encoder classifier is trained in every fold
and the paper's table is printed beside ours.
``python -m deeppainter.cv10 merge RUN_DIR...`` combines fold subsets run on different machines;
``python -m deeppainter.cv10 ensemble RUN_DIR...`` averages finished runs' probabilities fold by fold;
``python -m deeppainter.cv10 models`` lists every model ``--model`` can name.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deeppainter.cli import common, experiments
from deeppainter.errors import UserError
from deeppainter.models import (
    registry,  # light: a model's module is imported only when it is created
)
from deeppainter.run_migration import migrate_run
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

# pandas, scikit-learn and Keras are imported inside the functions that use them, so --help is instant.
SHIPPED_ENCODERS = Path(__file__).resolve().parent.parent / "pretrained_encoders"
TRANSDUCTIVE_WARNING = ("WARNING: --transductive-pretrain: the autoencoder is pre-trained on every evaluated "
                        "image, test folds included (labels ignored); the accuracy is not a held-out estimate")
IN_FOLD_NOTE = ("in-fold pre-training: in every fold a new autoencoder is pre-trained on that fold's training images "
                "only (labels ignored); one pre-training per fold")
TRANSDUCTIVE = "transductive"  # encoder_source's second answer: how the encoder relates to the evaluated images


def parse_args(argv=None):
    parser = common.make_parser("cv10", __doc__, usage=USAGE)
    parser.add_argument("--data", type=Path, default=None,
                        help="folder of class folders (or manifest CSV); default: the embedded 120-painting sample")
    parser.add_argument("--classes", default="",
                        help="comma-separated class folders to use, or largest:N for the N largest; default: all")
    parser.add_argument("--model", default="cae", metavar="NAME",
                        help="the model evaluated in the folds (deeppainter.models.registry; python -m "
                             "deeppainter.cv10 models lists each with what it is) — " + registry.help_text())
    parser.add_argument("--weights", type=Path, default=None,
                        help="backbone models only: local ImageNet weights file (e.g. "
                             "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5); default: random init")
    parser.add_argument("--encoder", type=Path, default=None,
                        help="a pretrain_ae run folder or encoder.keras; default: on the embedded sample the "
                             "encoder shipped for the preset, otherwise give --pretrain-data")
    parser.add_argument("--pretrain-data", type=Path, default=None,
                        help="images for pre-training when --encoder is not given (the evaluated classes "
                             "are left out, see --pretrain-exclude)")
    parser.add_argument("--transductive-pretrain", action="store_true",
                        help="pre-train once on all --data images, test folds included (labels ignored), as "
                             "in the paper's setting; recorded as transductive in the run and its table")
    parser.add_argument("--pretrain-in-fold", action="store_true",
                        help="pre-train a new autoencoder in every fold on that fold's training images only "
                             "(labels ignored; the preset's pre-training settings, seed from --seed and the "
                             "fold), then evaluate the encoder model on the fold; no test image is seen in "
                             "pre-training. Saved per fold in the run folder (folds/foldKK_pretrain/), recorded "
                             "as in-fold pre-training in the run and its table")
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
    parser.add_argument("--with-baselines", action=argparse.BooleanOptionalAction, default=None,
                        help="also run the paper's Table 1 baselines in the same folds and print one table of all "
                             "(the RBM rows take minutes); default: on for the main job (the embedded sample, "
                             "--model cae, all folds), with the fast rows only")
    common.add_fresh_option(parser)
    parser.add_argument("--workers", type=int, default=2, help="threads decoding images")
    parser.add_argument("--verbose", action="store_true", help="show Keras progress for every epoch")
    args = parser.parse_args(argv)
    if args.experiment:
        experiments.apply(args, parser, args.experiment)
    names = registry.list_models()
    if args.model not in names:
        parser.error(f"argument --model: invalid choice: {args.model!r} (choose from {', '.join(names)})")
    args.overrides = [*registry.get_model(args.model).recipe, *args.overrides]  # the user's --set wins
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

    import deeppainter.models.layers  # noqa: F401  (registers the max-unpooling layers a paper2016 encoder holds)

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


def shipped_encoder(cfg, preset: str) -> Path | None:
    """The encoder shipped in the package for ``preset``, if there is one and ``cfg`` would build the same."""
    path = SHIPPED_ENCODERS / preset / "encoder.keras"
    if not path.is_file():
        return None
    from deeppainter.config import get_preset
    from deeppainter.train.pretrain import pretraining_identity

    if pretraining_identity(cfg, preset) != pretraining_identity(get_preset(preset), preset):
        return None  # model, pre-training or image settings changed: the shipped encoder does not fit
    return path


def encoder_source(args, cfg, data: Path) -> tuple[Path | None, str]:
    """``(encoder file or None to pre-train, pretraining)``, ``pretraining`` being "" (an encoder that never
    saw the evaluated images: --encoder, the shipped one or --pretrain-data), ``"in-fold"`` or
    ``"transductive"``; refuses to pre-train on the test folds silently."""
    from deeppainter.train.infold import IN_FOLD  # light: no Keras at import

    given = [flag for flag, on in (("--encoder", args.encoder is not None),
                                   ("--pretrain-data", args.pretrain_data is not None),
                                   ("--pretrain-in-fold", args.pretrain_in_fold),
                                   ("--transductive-pretrain", args.transductive_pretrain)) if on]
    if len(given) > 1:
        raise UserError(f"{' and '.join(given)} exclude each other: each says where the encoder comes from; keep one")
    if args.encoder is not None:
        return resolve_encoder(args.encoder, cfg.data.image_size), ""
    if args.pretrain_data is not None:
        return None, ""
    if args.pretrain_in_fold:
        return None, IN_FOLD
    if args.transductive_pretrain:
        return None, TRANSDUCTIVE
    from deeppainter.data.datasets import sample_dir

    if data.resolve() == sample_dir().resolve():
        shipped = shipped_encoder(cfg, args.preset)
        if shipped is not None:
            return shipped, ""
    raise UserError(f"no encoder for --data {data}: pass --encoder RUN_DIR, or --pretrain-data FOLDER (images "
                    f"of other painters), or --pretrain-in-fold to pre-train in every fold on its training "
                    f"images only, or --transductive-pretrain to pre-train once on all these images, test folds "
                    f"included")


def prepare_encoder(args, cfg, classes, data: Path, run_dir: Path, source=None) -> Path | None:
    """The encoder to evaluate: ``--encoder``, the shipped one, or a (reused or new) pre-training run; noted in
    encoder.json. None for in-fold pre-training (train.infold makes one encoder per fold).

    ``source`` is :func:`encoder_source`'s answer when the caller has it already.
    """
    from deeppainter.train.infold import IN_FOLD

    encoder_path, pretraining = source if source is not None else encoder_source(args, cfg, data)
    transductive = pretraining == TRANSDUCTIVE
    if pretraining == IN_FOLD:
        atomic_write_json(run_dir / "encoder.json", {"encoder": "", "pretraining": IN_FOLD, "transductive": False,
                                                     "fold_encoders": "folds/foldKK_pretrain/encoder.keras"})
        return None
    if encoder_path is None:
        from deeppainter.train.pretrain import pretraining_run

        pretrain_data = resolve_path(args.pretrain_data) if args.pretrain_data else data
        exclude = () if transductive else pretrain_exclusions(args, classes)
        pretrain_dir = pretraining_run(cfg, args.preset, args.seed, args.out, pretrain_data, exclude,
                                       verbose=1 if args.verbose else 2, fresh=args.fresh)
        encoder_path = pretrain_dir / "encoder.keras"
    atomic_write_json(run_dir / "encoder.json", {"encoder": runs_path(encoder_path, run_dir.parent),
                                                 "transductive": transductive})
    return encoder_path


def build_model(args, cfg, classes, data: Path, images, run_dir: Path, source=None, paths=None):
    """The registered model ``--model``, with an encoder prepared first when it needs one; with in-fold
    pre-training, wrapped so that every fold pre-trains its own (``paths``: the images, as recorded)."""
    from deeppainter.train.infold import IN_FOLD

    spec = registry.get_model(args.model)
    needed = spec.encoder_needed(cfg)
    source = source if source is not None or not needed else encoder_source(args, cfg, data)
    encoder_path = prepare_encoder(args, cfg, classes, data, run_dir, source) if needed else None
    ctx = registry.FoldContext(args.model, cfg, images, classes, args.seed, run_dir / "cache", encoder_path,
                               verbose=2 if args.verbose else 0)
    if needed and source[1] == IN_FOLD:
        from deeppainter.train.infold import InFoldPretrainModel

        return InFoldPretrainModel(ctx, run_dir, list(paths))
    return registry.create_model(ctx)


def run(args) -> Path:
    # A bad value or path is reported before Keras loads (seconds), as --help is.
    cfg = common.resolve_config(args)
    import numpy as np

    from deeppainter.data.datasets import (
        list_labelled,
        load_images,
        resolve_classes,
        sample_dir,
    )
    from deeppainter.data.splits import label_indices
    from deeppainter.eval import crossval
    from deeppainter.eval.crossval import finish

    data = resolve_path(args.data) if args.data else sample_dir()
    classes_requested = resolve_classes(data, args.classes)
    table = list_labelled(data, classes_requested, min_per_class=max(cfg.cv.folds, cfg.data.min_per_class),
                          max_per_class=cfg.data.max_per_class, seed=args.seed)
    classes = sorted(table["label"].unique())
    if len(classes) < 2:
        raise UserError(f"--data {data}: only one class ({classes[0]}); cross validation needs at least two")
    only_folds = parse_folds(args.folds, cfg.cv.folds)
    common.seed_everything(args.seed)  # imports Keras quietly, before anything below can
    spec = registry.get_model(args.model)
    final_format = spec.final_format
    if args.save_final_model and final_format is None:
        savable = ", ".join(name for name in registry.list_models() if registry.get_model(name).final_format)
        raise UserError(f"--save-final-model is available for {savable}; {args.model} is a study model "
                        f"(drop --save-final-model)")
    encoder, pretraining = encoder_source(args, cfg, data) if spec.encoder_needed(cfg) else (None, "")
    if pretraining == TRANSDUCTIVE:
        print(TRANSDUCTIVE_WARNING)
    elif pretraining:
        print(IN_FOLD_NOTE)
    # Paths as portable text (runs.portable_path); the image list, relative to the data, stands for the data.
    arguments = {"data": portable_path(args.data if args.data else data), "classes": classes, "model": args.model,
                 "images": images_digest([portable_path(p, data) for p in table["path"]], table["label"]),
                 "encoder": runs_path(encoder, args.out) if encoder else "",
                 "pretrain_data": portable_path(args.pretrain_data) if args.pretrain_data else "",
                 "pretrain_exclude": args.pretrain_exclude,
                 "experiment": args.experiment.stem if args.experiment else ""}
    if pretraining == TRANSDUCTIVE:  # only then, so the fingerprints of earlier runs stay valid
        arguments["transductive"] = True
    elif pretraining:  # "in-fold": one encoder per fold, from its training images
        arguments["pretraining"] = pretraining
    groups, all_paths = None, list(table["path"])
    if cfg.cv.group_duplicates:
        import hashlib

        from deeppainter.data.duplicates import RULE, find_duplicates

        groups, pairs = find_duplicates(all_paths, cfg.cv.duplicate_threshold)
        merged = len(groups) - len(np.unique(groups))
        if merged:
            # Grouped folds differ from the plain stratified ones: a run made (or half made) before
            # duplicates were grouped is another run, never resumed or reported as this one.
            arguments["duplicate_groups"] = hashlib.sha256(groups.tobytes()).hexdigest()[:16]
            arguments["duplicate_rule"] = RULE
    finished = None if args.fresh else find_run("cv10", args.preset, args.seed, cfg, arguments, args.out,
                                                 done=True, upgrade=migrate_run)
    if finished is not None and (not args.save_final_model or (finished / "final_model.json").exists()):
        # Every fold of this exact run is finished: nothing to train again.
        print(f"already finished here: {finished} (same command, data and settings); showing its results — "
              f"--fresh runs it again")
        return finished
    if finished is not None:  # only the final model is missing: add it to the finished run
        run_dir, resumed = finished, True
    else:
        run_dir, resumed = open_run("cv10", args.preset, args.seed, cfg, arguments, args.out, resume=not args.fresh,
                                    upgrade=migrate_run)
    print(f"resuming cv10 run {run_dir} (started before with the same command; --fresh starts a new one)"
          if resumed else f"writing cv10 run {run_dir}")
    images, ok = load_images(list(table["path"]), cfg.data, workers=args.workers,
                             skipped_csv=run_dir / "skipped.csv", root=data)
    if not ok.all():
        print(f"{int((~ok).sum())} unreadable images left out; listed in {run_dir / 'skipped.csv'}")
        table = table[ok].reset_index(drop=True)
    relative_table = relative_images(table, data)  # paths under the data root, as every run file records them
    atomic_write_csv(run_dir / "images.csv", relative_table)
    if groups is not None:
        from deeppainter.data.duplicates import duplicates_table

        pairs = relative_images(relative_images(pairs, data, "path_a"), data, "path_b")
        atomic_write_csv(run_dir / "duplicates.csv",
                         duplicates_table([portable_path(p, data) for p in all_paths], groups, pairs))
        if merged:
            print(f"duplicates: {merged} image(s) merged into {int((np.bincount(groups) > 1).sum())} group(s) of "
                  f"versions of one work, each kept inside one fold; listed in {run_dir / 'duplicates.csv'}")
        else:
            print("duplicates: none found (no two images are versions of one work)")
        groups = groups[ok]
    model = build_model(args, cfg, classes, data, images, run_dir, (encoder, pretraining), relative_table["path"])
    crossval.run_folds(model, relative_table, classes, cfg, args.seed, run_dir, only_folds, groups)
    record, _ = load_run_config(run_dir)
    finish(run_dir, record, cfg, [run_dir])
    if args.save_final_model:
        labels = label_indices(table["label"], classes)
        path = run_dir / f"final_model.{final_format}"
        model.save_final(labels, path)
        from deeppainter.eval.inference import FINAL_JSON, preprocessing_record, write_reference_set

        atomic_write_json(run_dir / FINAL_JSON, {"path": path.name, "model": args.model, "classes": classes,
                                                 **preprocessing_record(cfg.data)})
        write_reference_set(run_dir, images, table["label"], relative_table["path"], cfg.serve.thumbnail_size)
        print(f"final model trained on all {len(table)} images: {path}")
    return run_dir


def _subcommand_args(argv, name: str, description: str, what: str):
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

    from deeppainter.eval import crossval
    from deeppainter.eval.crossval import finish
    from deeppainter.train.infold import fold_pretrain_dir

    args, records = _subcommand_args(argv, "merge", "Combine cv10 runs of different --folds subsets into one result.",
                                     "cv10 run folders of the same configuration")
    if len({r["fingerprint"] for r in records}) != 1:
        raise UserError("these runs differ in configuration or data (fingerprints differ); only subsets of one "
                        "cv10 configuration can be merged")
    seen: dict[int, Path] = {}
    for run_dir in args.run_dirs:
        for fold in crossval.finished_folds(run_dir):
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
        for fold, part in crossval.collect_folds([run_dir]).groupby("fold"):  # predictions, either form
            atomic_write_csv(crossval.fold_file(merged, int(fold)), part)
            if fold_pretrain_dir(run_dir, int(fold)).is_dir():  # --pretrain-in-fold: the fold's own encoder
                shutil.copytree(fold_pretrain_dir(run_dir, int(fold)), fold_pretrain_dir(merged, int(fold)))
    atomic_write_json(merged / "merged_from.json", [runs_path(d, merged.parent) for d in args.run_dirs])
    record, _ = load_run_config(merged)
    finish(merged, record, cfg, [merged])
    print_table([merged])
    return merged


def ensemble(argv) -> Path:
    """Average the out-of-fold probabilities of finished runs that used the very same folds.

    The weights are fixed (equal), so nothing is tuned on the test folds.
    """
    from deeppainter.eval import crossval
    from deeppainter.eval.crossval import finish

    args, records = _subcommand_args(argv, "ensemble", ensemble.__doc__,
                                     "finished cv10 run folders on the same images, classes, seed and folds")
    frames = []
    for run_dir in args.run_dirs:
        if not (run_dir / "predictions.csv").is_file():
            raise UserError(f"{run_dir}: no predictions.csv; only finished cv10 runs can be ensembled")
        frames.append(crossval.read_predictions(run_dir).sort_values("path").reset_index(drop=True))
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
    arguments = {**portable_arguments(first["arguments"], out_root), "model": name,
                 "ensemble_of": [runs_path(d, out_root) for d in args.run_dirs]}
    run_dir, _ = open_run("cv10", first["preset"], first["seed"], cfg, arguments, out_root, resume=False)
    for fold, part in combined.groupby("fold"):
        atomic_write_csv(crossval.fold_file(run_dir, int(fold)), part)
    record, _ = load_run_config(run_dir)
    finish(run_dir, record, cfg, [run_dir])
    print_table([run_dir])
    return run_dir


def models(argv) -> None:
    """Print every registered model with what it is."""
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
        return 0
    args = parse_args(argv)
    with_baselines = args.with_baselines
    if with_baselines is None:  # the main job: one command, the paper's whole Table 1
        with_baselines = args.data is None and args.model == "cae" and not args.folds and not args.experiment
    run_dirs = [run(args)]
    if with_baselines:
        names = registry.list_models("Table 1 baselines") if args.with_baselines else MAIN_JOB_BASELINES
        for name in names:
            print(f"\nTable 1 baseline {name}, same folds:")
            run_dirs.append(run(argparse.Namespace(**{**vars(args), "model": name, "save_final_model": False})))
    print_table(run_dirs)
    return 0


# ASSUMPTION: the main job shows the Table 1 rows that take seconds on 2 cores; the RBM rows take minutes
# each (--with-baselines runs them all).
MAIN_JOB_BASELINES = ("features-knn", "features-svm")


def print_table(run_dirs: list[Path]) -> None:
    """The command's one table: its finished runs' rows beside the published numbers (eval/comparison.py)."""
    from deeppainter.eval.comparison import render_runs

    table = render_runs(run_dirs)
    if table:
        print("\n" + table)
        print("run folders: " + ", ".join(d.name for d in run_dirs))
