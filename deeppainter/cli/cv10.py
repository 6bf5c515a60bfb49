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
import dataclasses
import sys
from pathlib import Path

from deeppainter.cli import common, experiments
from deeppainter.eval import experiment  # light: Keras, pandas and scikit-learn load when a run starts
from deeppainter.models import (
    registry,  # light: a model's module is imported only when it is created
)
from deeppainter.runs import portable_path

# pandas, scikit-learn and Keras are imported inside the functions that use them, so --help is instant.


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
    parser.add_argument("--unknown", default="auto", metavar="DIR|auto|none",
                        help="painters outside the task, for open-set scores (\"none of the known painters\"), "
                             "leave-painters-out (see deeppainter.eval.trust): a folder of painter folders; auto "
                             "(default) = the data root's other class folders, if any; none = closed set only")
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
    args.model = registry.current_name(args.model)
    names = registry.list_models()
    if args.model not in names:
        parser.error(f"argument --model: invalid choice: {args.model!r} (choose from {', '.join(names)})")
    args.overrides = [*registry.get_model(args.model).recipe, *args.overrides]  # the user's --set wins
    if args.weights:  # a config value, so it is part of the run's fingerprint
        args.overrides.append(f"backbone.weights={portable_path(args.weights.expanduser())}")  # cwd-relative
    return args


def run(args) -> Path:
    """One cv10 run of the parsed options (deeppainter.eval.experiment does it)."""
    cfg = common.resolve_config(args)
    request = experiment.Cv10Request(**{field.name: getattr(args, field.name)
                                        for field in dataclasses.fields(experiment.Cv10Request)})
    plan = experiment.plan_cv10(request, cfg)  # a bad value or path is reported before Keras loads (seconds)
    common.seed_everything(args.seed)  # imports Keras quietly, before anything below can
    return experiment.run_cv10(plan)


def _run_dirs(argv, name: str, description: str, what: str):
    parser = argparse.ArgumentParser(prog=f"python -m deeppainter.cv10 {name}", description=description)
    parser.add_argument("run_dirs", nargs="+", type=Path, help=what)
    parser.add_argument("--out", type=Path, default=None, help="runs root for the new run (default: first's parent)")
    return parser.parse_args(argv)


def merge(argv) -> Path:
    args = _run_dirs(argv, "merge", "Combine cv10 runs of different --folds subsets into one result.",
                     "cv10 run folders of the same configuration")
    merged = experiment.merge_runs(args.run_dirs, args.out)
    print_table([merged])
    return merged


def ensemble(argv) -> Path:
    args = _run_dirs(argv, "ensemble", experiment.ensemble_runs.__doc__,
                     "finished cv10 run folders on the same images, classes, seed and folds")
    run_dir = experiment.ensemble_runs(args.run_dirs, args.out)
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
