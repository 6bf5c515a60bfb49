"""One cv10 experiment, from a request to a finished run folder, and what combines run folders (merge, ensemble).

This is the domain policy behind ``python -m deeppainter.cv10`` (cli/cv10.py parses, calls and prints):

- where the encoder comes from (``--encoder``, the one shipped for the preset on the embedded sample, a
  pre-training on ``--pretrain-data`` minus the evaluated classes, ``--pretrain-in-fold``, or the explicitly
  transductive ``--transductive-pretrain``), refusing to pre-train on test folds silently;
- grouping versions of one work (near-duplicates) inside one fold;
- the run's identity (arguments, fingerprint) for resuming and finding finished runs;
- the unknown painters for open-set scores, and the trust plan that scores them (eval.trust);
- the final model trained on every image (``--save-final-model``), with its open-set scorer and temperature;
- ``merge`` of fold subsets run apart and the equal-weight ``ensemble`` of finished runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from deeppainter.config import Config
from deeppainter.errors import UserError
from deeppainter.models import registry
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

if TYPE_CHECKING:
    import pandas as pd

SHIPPED_ENCODERS = Path(__file__).resolve().parent.parent / "pretrained_encoders"
TRANSDUCTIVE_WARNING = ("WARNING: --transductive-pretrain: the autoencoder is pre-trained on every evaluated "
                        "image, test folds included (labels ignored); the accuracy is not a held-out estimate")
IN_FOLD_NOTE = ("in-fold pre-training: in every fold a new autoencoder is pre-trained on that fold's training images "
                "only (labels ignored); one pre-training per fold")
TRANSDUCTIVE = "transductive"  # encoder_source's second answer: how the encoder relates to the evaluated images


@dataclass(frozen=True)
class Cv10Request:
    """What a cv10 run is asked to do (the command line's options, as cli/cv10.py parsed them)."""

    preset: str
    seed: int
    out: Path  # the runs root
    data: Path | None = None  # None: the embedded sample
    classes: str = ""  # "a,b,c", "largest:N" or "" (all)
    model: str = "cae"
    encoder: Path | None = None
    pretrain_data: Path | None = None
    pretrain_exclude: str = "auto"
    transductive_pretrain: bool = False
    pretrain_in_fold: bool = False
    folds: str = ""  # "0,3,7" or "" (all)
    save_final_model: bool = False
    experiment: Path | None = None
    fresh: bool = False
    unknown: str = "auto"  # painters outside the task (eval.trust.unknown_table): a folder, auto or none
    workers: int = 2
    verbose: bool = False


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


def pretrain_exclusions(request: Cv10Request, classes: list[str]) -> tuple[str, ...]:
    if request.pretrain_exclude == "none":
        return ()
    if request.pretrain_exclude == "auto":  # an explicit pool never contains the evaluated classes
        return tuple(classes) if request.pretrain_data is not None else ()
    return tuple(c.strip() for c in request.pretrain_exclude.split(",") if c.strip())


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


def encoder_source(request: Cv10Request, cfg, data: Path) -> tuple[Path | None, str]:
    """``(encoder file or None to pre-train, pretraining)``, ``pretraining`` being "" (an encoder that never
    saw the evaluated images: --encoder, the shipped one or --pretrain-data), ``"in-fold"`` or
    ``"transductive"``; refuses to pre-train on the test folds silently."""
    from deeppainter.train.infold import IN_FOLD  # light: no Keras at import

    given = [flag for flag, on in (("--encoder", request.encoder is not None),
                                   ("--pretrain-data", request.pretrain_data is not None),
                                   ("--pretrain-in-fold", request.pretrain_in_fold),
                                   ("--transductive-pretrain", request.transductive_pretrain)) if on]
    if len(given) > 1:
        raise UserError(f"{' and '.join(given)} exclude each other: each says where the encoder comes from; keep one")
    if request.encoder is not None:
        return resolve_encoder(request.encoder, cfg.data.image_size), ""
    if request.pretrain_data is not None:
        return None, ""
    if request.pretrain_in_fold:
        return None, IN_FOLD
    if request.transductive_pretrain:
        return None, TRANSDUCTIVE
    from deeppainter.data.datasets import sample_dir

    if data.resolve() == sample_dir().resolve():
        shipped = shipped_encoder(cfg, request.preset)
        if shipped is not None:
            return shipped, ""
    raise UserError(f"no encoder for --data {data}: pass --encoder RUN_DIR, or --pretrain-data FOLDER (images "
                    f"of other painters), or --pretrain-in-fold to pre-train in every fold on its training "
                    f"images only, or --transductive-pretrain to pre-train once on all these images, test folds "
                    f"included")


def prepare_encoder(request: Cv10Request, cfg, classes, data: Path, run_dir: Path, source=None) -> Path | None:
    """The encoder to evaluate: ``--encoder``, the shipped one, or a (reused or new) pre-training run; noted in
    encoder.json. None for in-fold pre-training (train.infold makes one encoder per fold).

    ``source`` is :func:`encoder_source`'s answer when the caller has it already.
    """
    from deeppainter.train.infold import IN_FOLD

    encoder_path, pretraining = source if source is not None else encoder_source(request, cfg, data)
    transductive = pretraining == TRANSDUCTIVE
    if pretraining == IN_FOLD:
        atomic_write_json(run_dir / "encoder.json", {"encoder": "", "pretraining": IN_FOLD, "transductive": False,
                                                     "fold_encoders": "folds/foldKK_pretrain/encoder.keras"})
        return None
    if encoder_path is None:
        from deeppainter.train.pretrain import pretraining_run

        pretrain_data = resolve_path(request.pretrain_data) if request.pretrain_data else data
        exclude = () if transductive else pretrain_exclusions(request, classes)
        pretrain_dir = pretraining_run(cfg, request.preset, request.seed, request.out, pretrain_data, exclude,
                                       verbose=1 if request.verbose else 2, fresh=request.fresh)
        encoder_path = pretrain_dir / "encoder.keras"
    atomic_write_json(run_dir / "encoder.json", {"encoder": runs_path(encoder_path, run_dir.parent),
                                                 "transductive": transductive})
    return encoder_path


def build_model(request: Cv10Request, cfg, classes, data: Path, images, run_dir: Path, source=None, paths=None):
    """The registered model ``request.model``, with an encoder prepared first when it needs one; with in-fold
    pre-training, wrapped so that every fold pre-trains its own (``paths``: the images, as recorded)."""
    from deeppainter.train.infold import IN_FOLD

    spec = registry.get_model(request.model)
    needed = spec.encoder_needed(cfg)
    source = source if source is not None or not needed else encoder_source(request, cfg, data)
    encoder_path = prepare_encoder(request, cfg, classes, data, run_dir, source) if needed else None
    ctx = registry.FoldContext(request.model, cfg, images, classes, request.seed, run_dir / "cache", encoder_path,
                               verbose=2 if request.verbose else 0)
    if needed and source[1] == IN_FOLD:
        from deeppainter.train.infold import InFoldPretrainModel

        return InFoldPretrainModel(ctx, run_dir, list(paths))
    return registry.create_model(ctx)


def plan_trust(request: Cv10Request, cfg, classes: list[str], images, unknown, run_dir: Path, unknown_root: Path):
    """The known images followed by the unknown painters' (standardised alike), and the fold plan that scores them."""
    import numpy as np

    from deeppainter.data.datasets import load_images
    from deeppainter.eval import trust

    pool = None
    if len(unknown):
        pool_images, ok = load_images(list(unknown["path"]), cfg.data, workers=request.workers,
                                      skipped_csv=run_dir / "skipped_unknown.csv")
        if not ok.all():
            print(f"{int((~ok).sum())} unreadable unknown-painter images left out; listed in "
                  f"{run_dir / 'skipped_unknown.csv'}")
        # recorded like the task's images: relative to their root (the data root, or the --unknown folder)
        unknown = relative_images(unknown[ok].reset_index(drop=True), unknown_root)
        pool = trust.make_pool(unknown, len(images), cfg.trust.unknown_groups, cfg.cv.folds, request.seed)
        print(f"open set: {len(unknown)} paintings by {unknown['label'].nunique()} painters outside the task, "
              f"in {pool.n_groups} groups of painters (each fold tests one group's)"
              + ("; the other group is a background class" if cfg.trust.background else ""))
        images = np.concatenate([np.asarray(images), np.asarray(pool_images)])
    return images, trust.TrustPlan(cfg.trust, classes, pool, request.seed)


def save_final_trust(model, trust_plan, labels, cfg, run_dir: Path) -> dict:
    """final_trust.pkl beside the final model: its scorer, threshold and temperature (eval.trust)."""
    import pickle

    from deeppainter.eval import trust
    from deeppainter.runs import atomic_write_bytes

    record = trust.fit_final_trust(model, trust_plan, labels, cfg.cv.folds)
    atomic_write_bytes(run_dir / trust.FINAL_TRUST, pickle.dumps(record))
    return trust.describe_final_trust(record)


@dataclass(frozen=True)
class Cv10Plan:
    """What :func:`plan_cv10` checked (without Keras): the request, its configuration, data and folds."""

    request: Cv10Request
    cfg: Config
    data: Path  # the data root
    table: pd.DataFrame  # path, label of every image
    classes: list[str]
    only_folds: list[int] | None


def plan_cv10(request: Cv10Request, cfg: Config) -> Cv10Plan:
    """The images, classes and folds of ``request``: a bad value or path is reported in seconds, before Keras loads."""
    from deeppainter.data.datasets import list_labelled, resolve_classes, sample_dir

    data = resolve_path(request.data) if request.data else sample_dir()
    classes_requested = resolve_classes(data, request.classes)
    table = list_labelled(data, classes_requested, min_per_class=max(cfg.cv.folds, cfg.data.min_per_class),
                          max_per_class=cfg.data.max_per_class, seed=request.seed)
    classes = sorted(table["label"].unique())
    if len(classes) < 2:
        raise UserError(f"--data {data}: only one class ({classes[0]}); cross validation needs at least two")
    only_folds = parse_folds(request.folds, cfg.cv.folds)
    registry.check_probe_augment(request.model, cfg.classifier.probe_augment)
    if request.save_final_model and registry.get_model(request.model).final_format is None:
        savable = ", ".join(name for name in registry.list_models() if registry.get_model(name).final_format)
        raise UserError(f"--save-final-model is available for {savable}; {request.model} is a study model "
                        f"(drop --save-final-model)")
    return Cv10Plan(request, cfg, data, table, classes, only_folds)


def run_cv10(plan: Cv10Plan) -> Path:
    """Run (or resume, or find finished) the cv10 run of ``plan``: encoder, duplicate groups, folds, reports and
    the final model; returns its run folder. Keras is imported by the caller first (quietly)."""
    import numpy as np

    from deeppainter.data.datasets import load_images
    from deeppainter.data.splits import label_indices
    from deeppainter.eval import crossval
    from deeppainter.eval.crossval import finish

    request, cfg, data, table, classes = plan.request, plan.cfg, plan.data, plan.table, plan.classes
    spec = registry.get_model(request.model)
    encoder, pretraining = encoder_source(request, cfg, data) if spec.encoder_needed(cfg) else (None, "")
    if pretraining == TRANSDUCTIVE:
        print(TRANSDUCTIVE_WARNING)
    elif pretraining:
        print(IN_FOLD_NOTE)
    # Paths as portable text (runs.portable_path); the image list, relative to the data, stands for the data.
    arguments = {"data": portable_path(request.data if request.data else data), "classes": classes,
                 "model": request.model,
                 "images": images_digest([portable_path(p, data) for p in table["path"]], table["label"]),
                 "encoder": runs_path(encoder, request.out) if encoder else "",
                 "pretrain_data": portable_path(request.pretrain_data) if request.pretrain_data else "",
                 "pretrain_exclude": request.pretrain_exclude,
                 "experiment": request.experiment.stem if request.experiment else ""}
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
    from deeppainter.eval import trust

    unknown = trust.unknown_table(request.unknown, data, classes)
    if pretraining and pretraining != TRANSDUCTIVE and (len(unknown) or cfg.trust.temperature):
        raise UserError("--pretrain-in-fold with open-set scoring or temperature scaling is not supported (their "
                        "inner folds would re-use the fold's encoder); add --unknown none")
    unknown_root = data if request.unknown == "auto" else Path(request.unknown)
    if len(unknown):  # only then, so the fingerprints of closed-set runs stay valid
        arguments["unknown"] = {"painters": sorted(unknown["label"].unique()),
                                "images": images_digest([portable_path(p, unknown_root) for p in unknown["path"]],
                                                        unknown["label"])}
    finished = None if request.fresh else find_run("cv10", request.preset, request.seed, cfg, arguments, request.out,
                                                 done=True, upgrade=migrate_run)
    if finished is not None and (not request.save_final_model or (finished / "final_model.json").exists()):
        # Every fold of this exact run is finished: nothing to train again.
        print(f"already finished here: {finished} (same command, data and settings); showing its results — "
              f"--fresh runs it again")
        return finished
    if finished is not None:  # only the final model is missing: add it to the finished run
        run_dir, resumed = finished, True
    else:
        run_dir, resumed = open_run("cv10", request.preset, request.seed, cfg, arguments, request.out, resume=not request.fresh,
                                    upgrade=migrate_run)
    print(f"resuming cv10 run {run_dir} (started before with the same command; --fresh starts a new one)"
          if resumed else f"writing cv10 run {run_dir}")
    images, ok = load_images(list(table["path"]), cfg.data, workers=request.workers,
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
    trust_plan = None
    if len(unknown) or cfg.trust.temperature:
        images, trust_plan = plan_trust(request, cfg, classes, images, unknown, run_dir, unknown_root)
    model = build_model(request, cfg, trust_plan.model_classes if trust_plan else classes, data, images, run_dir,
                        (encoder, pretraining), relative_table["path"])
    crossval.run_folds(model, relative_table, classes, cfg, request.seed, run_dir, plan.only_folds, groups,
                       trust_plan)
    record, _ = load_run_config(run_dir)
    finish(run_dir, record, cfg, [run_dir])
    if request.save_final_model:
        labels = label_indices(table["label"], classes)
        path = run_dir / f"final_model.{spec.final_format}"
        background = trust_plan is not None and trust_plan.background
        model.save_final(trust_plan.labels(labels) if background else labels, path)
        from deeppainter.eval.inference import FINAL_JSON, preprocessing_record, write_reference_set

        record = {"path": path.name, "model": request.model, "classes": classes, **preprocessing_record(cfg.data)}
        if trust_plan is not None:
            record["trust"] = save_final_trust(model, trust_plan, labels, cfg, run_dir)
        atomic_write_json(run_dir / FINAL_JSON, record)
        write_reference_set(run_dir, images[:len(table)], table["label"], relative_table["path"],
                            cfg.serve.thumbnail_size)
        print(f"final model trained on all {len(table)} images: {path}")
    return run_dir


def cv10_records(run_dirs: list[Path], what: str) -> list[dict]:
    """The config.json records of ``run_dirs``, which must be cv10 run folders (``what``: the subcommand)."""
    records = []
    for run_dir in run_dirs:
        if not (Path(run_dir) / "config.json").is_file():
            raise UserError(f"{run_dir}: not a run folder (no config.json)")
        records.append(read_json(Path(run_dir) / "config.json"))
    if any(r["command"] != "cv10" for r in records):
        raise UserError(f"cv10 {what} takes cv10 run folders only")
    return records


def merge_runs(run_dirs: list[Path], out: Path | None = None) -> Path:
    """Combine cv10 runs of different --folds subsets of one configuration into one run (in ``out``, default the
    first's parent)."""
    import shutil

    from deeppainter.eval import crossval
    from deeppainter.eval.crossval import finish
    from deeppainter.train.infold import fold_pretrain_dir

    records = cv10_records(run_dirs, "merge")
    if len({r["fingerprint"] for r in records}) != 1:
        raise UserError("these runs differ in configuration or data (fingerprints differ); only subsets of one "
                        "cv10 configuration can be merged")
    seen: dict[int, Path] = {}
    for run_dir in run_dirs:
        for fold in crossval.finished_folds(run_dir):
            if int(fold) in seen:
                raise UserError(f"fold {fold} is in both {seen[int(fold)]} and {run_dir}; keep one of them")
            seen[int(fold)] = run_dir
    first, cfg = load_run_config(run_dirs[0])
    out_root = out or run_dirs[0].parent
    merged, _ = open_run("cv10", first["preset"], first["seed"], cfg, portable_arguments(first["arguments"], out_root),
                         out_root, resume=False)
    (merged / "folds").mkdir()
    for run_dir in run_dirs:
        for path in (run_dir / "folds").glob("fold??.*"):
            if not path.name.endswith(".csv") or path.name.endswith((".history.csv", ".unknown.csv")):
                shutil.copy2(path, merged / "folds" / path.name)  # scores, choices, timings, histories
        for fold, part in crossval.collect_folds([run_dir]).groupby("fold"):  # predictions, either form
            atomic_write_csv(crossval.fold_file(merged, int(fold)), part)
            if fold_pretrain_dir(run_dir, int(fold)).is_dir():  # --pretrain-in-fold: the fold's own encoder
                shutil.copytree(fold_pretrain_dir(run_dir, int(fold)), fold_pretrain_dir(merged, int(fold)))
    atomic_write_json(merged / "merged_from.json", [runs_path(d, merged.parent) for d in run_dirs])
    record, _ = load_run_config(merged)
    finish(merged, record, cfg, [merged])
    return merged


def ensemble_runs(run_dirs: list[Path], out: Path | None = None) -> Path:
    """Average the out-of-fold probabilities of finished runs that used the very same folds.

    The weights are fixed (equal), so nothing is tuned on the test folds.
    """
    from deeppainter.eval import crossval
    from deeppainter.eval.crossval import finish

    records = cv10_records(run_dirs, "ensemble")
    frames = []
    for run_dir in run_dirs:
        if not (run_dir / "predictions.csv").is_file():
            raise UserError(f"{run_dir}: no predictions.csv; only finished cv10 runs can be ensembled")
        frames.append(crossval.read_predictions(run_dir).sort_values("path").reset_index(drop=True))
    classes = records[0]["arguments"]["classes"]
    for run_dir, record, frame in zip(run_dirs, records, frames):
        if (record["arguments"]["classes"] != classes or record["seed"] != records[0]["seed"]
                or not frame[["path", "fold"]].equals(frames[0][["path", "fold"]])):
            raise UserError(f"{run_dir}: different images, classes, seed or folds than {run_dirs[0]}")
    probability_columns = [f"prob_{c}" for c in classes]
    combined = frames[0][["path", "true", "fold"]].copy()
    combined[probability_columns] = sum(f[probability_columns].to_numpy() for f in frames) / len(frames)
    combined.insert(2, "predicted", [classes[i] for i in combined[probability_columns].to_numpy().argmax(axis=1)])
    name = "ensemble(" + "+".join(r["arguments"]["model"] for r in records) + ")"
    first, cfg = load_run_config(run_dirs[0])
    out_root = out or run_dirs[0].parent
    arguments = {**portable_arguments(first["arguments"], out_root), "model": name,
                 "ensemble_of": [runs_path(d, out_root) for d in run_dirs]}
    run_dir, _ = open_run("cv10", first["preset"], first["seed"], cfg, arguments, out_root, resume=False)
    for fold, part in combined.groupby("fold"):
        atomic_write_csv(crossval.fold_file(run_dir, int(fold)), part)
    record, _ = load_run_config(run_dir)
    finish(run_dir, record, cfg, [run_dir])
    return run_dir
