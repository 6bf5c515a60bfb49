"""``python -m deeppainter.report``: regenerate ``results/README.md`` from the committed run folders.

Nothing in results/ is typed by hand: every row below comes from a run folder's ``metrics.json``,
``config.json`` and ``predictions.csv``, with the published numbers (REFERENCE.md) beside ours. Runs on
the embedded 120-painting sample and on the data sets under ``--data`` get separate tables; every
ablation is tested against its model's preset, and each table's best row against its runner-up, with
the paired tests of eval/stats.py. Which runs were chosen after seeing results is read from
``results/chosen_after_seeing_results.csv`` (run, reason) and marked with one sign, ``†``.
"""
from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd

from deeppainter import config as config_lib
from deeppainter.errors import UserError
from deeppainter.eval.metrics import METRICS, format_percent
from deeppainter.eval.published import PUBLISHED
from deeppainter.eval.stats import format_p, paired_tests
from deeppainter.runs import SAMPLE_ROOT, read_json

TASKS = {
    "3painters": "Table 1 — the paper's 3-painter task (van Gogh / Rembrandt / Renoir)",
    "10artists": "Table 2 — 10 artists (the 10 largest wikiart14 folders)",
    "": "Table 4 — binary look-alike pairs and other class lists",
}
ABLATED_TASK = "3painters"  # Table 3: one factor at a time against the same model at its preset
POST_HOC = "chosen_after_seeing_results.csv"  # in the results folder: run, reason
MARK = "†"  # the one sign for "chosen after seeing results"
ENSEMBLE_REASON = "which finished runs to average was chosen after their scores were known"


# How the folds were made is shown as "(grouped folds)" from the run's arguments, not as a change: runs
# from before the field existed were ungrouped whatever its default says, and the threshold belongs to
# the rule that found the groups (data/duplicates.py; arguments.duplicate_rule since the trimmed thumbnails).
FOLD_REGIME = ("cv.group_duplicates", "cv.duplicate_threshold")
OLD_DUPLICATE_RULE = "(grouped folds, padded thumbnails)"  # before arguments.duplicate_rule: bars in the thumbnails


def model_preset(record: dict) -> config_lib.Config:
    """The run's preset with its model's registered recipe applied: what `cv10 --model NAME` alone runs."""
    from deeppainter.models import registry

    model = record.get("arguments", {}).get("model", "")
    recipe = registry.get_model(model).recipe if model in registry.list_models() else ()
    return config_lib.build_config(record["preset"], list(recipe))


def unread_sections(model: str, cfg: config_lib.Config) -> tuple[str, ...]:
    """Config sections ``model`` never reads, so a value there (e.g. a default that changed after the run)
    is no change to it: ``backbone.*`` outside the transfer backbones, ``autoencoder.*`` / ``pretrain.*``
    for models without an encoder."""
    from deeppainter.models import registry

    if model not in registry.list_models():
        return ()
    spec = registry.get_model(model)
    unread = () if spec.group == "transfer backbones" else ("backbone.",)
    return unread + (() if spec.encoder_needed(cfg) else ("autoencoder.", "pretrain."))


def config_changes(record: dict) -> str:
    """The ``--set`` overrides a run used: its config against its preset and its model's recipe."""
    cfg = config_lib.from_dict(record["config"], record["preset"])
    unread = unread_sections(record.get("arguments", {}).get("model", ""), cfg)
    changes = [(key, value) for key, value in config_lib.changes_between(cfg, model_preset(record)).items()
               if key not in FOLD_REGIME and not key.startswith(unread)]
    text = " ".join(f"{key}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for key, v in changes)
    arguments = record.get("arguments", {})
    if arguments.get("duplicate_groups"):  # its folds keep versions of one work together
        text = f"{text} {'(grouped folds)' if arguments.get('duplicate_rule') else OLD_DUPLICATE_RULE}".strip()
    if arguments.get("transductive"):  # its encoder saw the test folds (labels ignored)
        text = f"{text} (transductive pre-training)".strip()
    if arguments.get("pretraining") == "in-fold":  # one encoder per fold, from its training images only
        text = f"{text} (in-fold pre-training)".strip()
    return text


def encoder_saw_test_images(run_dir: Path, runs_root: Path, record: dict) -> bool:
    """Whether the run's encoder was pre-trained on images it then classified (same data root, same path).

    Runs made before cv10 recorded ``transductive`` say it only this way: the old default pre-trained
    on the evaluated images themselves.
    """
    arguments = record.get("arguments", {})
    if arguments.get("transductive"):
        return True
    if arguments.get("pretraining") or not (run_dir / "encoder.json").exists():  # in-fold, or no encoder
        return False
    encoder = read_json(run_dir / "encoder.json").get("encoder", "")
    if not encoder.startswith("runs:"):
        return False
    pretrain_dir = runs_root / Path(encoder.removeprefix("runs:")).parent
    if not (pretrain_dir / "pretrain_images.csv").exists() or not (run_dir / "images.csv").exists():
        return False
    pretrain_data = read_json(pretrain_dir / "config.json").get("arguments", {}).get("data")
    if pretrain_data != arguments.get("data"):
        return False
    seen = set(pd.read_csv(pretrain_dir / "pretrain_images.csv")["path"])
    return bool(seen & set(pd.read_csv(run_dir / "images.csv")["path"]))


def load_runs(runs_root: Path) -> tuple[list[dict], list[dict]]:
    cv_runs, pretrain_runs = [], []
    for metrics_file in sorted(runs_root.glob("*/metrics.json")):
        run_dir = metrics_file.parent
        if not (run_dir / "config.json").exists() or not (run_dir / "DONE").exists():
            continue
        record = read_json(run_dir / "config.json")
        if record["command"] == "cv10" and encoder_saw_test_images(run_dir, runs_root, record):
            record["arguments"]["transductive"] = True
        entry = {"dir": run_dir, "record": record, "metrics": read_json(metrics_file),
                 "env": read_json(run_dir / "env.json") if (run_dir / "env.json").exists() else {},
                 "changes": config_changes(record)}
        if record["command"] == "cv10":
            cv_runs.append(entry)
        elif record["command"] == "pretrain_ae":
            pretrain_runs.append(entry)
    return cv_runs, pretrain_runs


def load_evaluations(runs_root: Path) -> dict[str, list[dict]]:
    """Finished ``evaluate`` runs by the run folder name of the model they scored."""
    found: dict[str, list[dict]] = {}
    for metrics_file in sorted(runs_root.glob("*_evaluate_*/metrics.json")):
        if (metrics_file.parent / "DONE").exists():
            metrics = read_json(metrics_file)
            model_run = str(metrics.get("model_run", "")).split(":", 1)[-1]  # "runs:<name>", a portable path
            found.setdefault(Path(model_run).name, []).append(
                {"dir": metrics_file.parent, "metrics": metrics})
    return found


def final_scorer(record: dict) -> str:
    """The open-set score a cv10 run's final model answers with (``trust.final_scorer``)."""
    return record["config"].get("trust", {}).get("final_scorer", "msp")


def trust_table(cv_runs: list[dict], evaluations: dict[str, list[dict]], relative_to: Path,
                reasons: dict[str, str]) -> pd.DataFrame:
    """One row per open-set cv10 run and scorer: leave-painters-out numbers, calibration, and the final model on
    another source (its newest evaluate run with unknown painters)."""
    from deeppainter.models import registry

    rows = []
    for run in cv_runs:
        m = run["metrics"]
        if "openset" not in m:
            continue
        scorer_of_final = final_scorer(run["record"])
        other = [e["metrics"] for e in evaluations.get(run["dir"].name, []) if "openset" in e["metrics"]]
        dev = other[-1] if other else None
        try:
            saw_unknown = registry.get_model(m["model"]).needs_encoder
        except UserError:  # a model this version no longer registers
            saw_unknown = False
        for scorer, values in m["openset"].items():
            on_dev = dev is not None and scorer == scorer_of_final
            rows.append({
                "model": m["model"] + (MARK if run["dir"].name in reasons else "")
                + (" ‡" if saw_unknown else ""),
                "changes": run["changes"] or "—", "unknown painters": len(m.get("unknown_painters", [])),
                "acc": format_percent(m["accuracy_mean"], m["accuracy_std"]), "scorer": scorer,
                "AUROC": f"{values['auroc_mean']:.3f} ± {values['auroc_std']:.3f}",
                "FPR@95": format_percent(values["fpr95_mean"]),
                "knowns kept": format_percent(values["known_kept_mean"]),
                "unknowns rejected": format_percent(values["unknown_rejected_mean"]),
                "ECE": format_percent(m["calibration"]["ece"]),
                "ECE (T)": format_percent(m["calibration"].get("ece_temperature_scaled", float("nan"))),
                "other source: bal. acc": format_percent(dev["balanced_accuracy"]) if on_dev else "",
                "other source: AUROC": f"{dev['openset']['auroc']:.3f}" if on_dev else "",
                "other source: unknowns rejected": format_percent(dev["openset"]["unknown_rejected"]) if on_dev else "",
                "other source: knowns kept": format_percent(dev["openset"]["known_kept"]) if on_dev else "",
                "other source: ECE": format_percent(dev["calibration"]["ece"]) if on_dev else "",
                "run": f"[{run['dir'].name}]({run['dir'].relative_to(relative_to).as_posix()}/)",
            })
    return pd.DataFrame(rows)


def device_of(env: dict) -> str:
    devices = [d for d in env.get("devices", []) if "CPU" not in d.upper()]
    accelerator = devices[0] if devices else f"CPU ×{env.get('cpu_count', '?')}"
    return f"{env.get('backend', '?')}, {accelerator}"


def on_sample(run: dict) -> bool:
    """Whether the run evaluated the embedded 120-painting sample (its own tables, never ranked with wikiart14)."""
    return str(run["record"]["arguments"].get("data", "")).startswith(SAMPLE_ROOT)


def post_hoc_reasons(results_dir: Path, cv_runs: list[dict]) -> dict[str, str]:
    """Run folder name → why it counts as chosen after seeing results (the listed runs and every ensemble)."""
    listed = results_dir / POST_HOC
    reasons = dict(pd.read_csv(listed)[["run", "reason"]].itertuples(index=False)) if listed.exists() else {}
    return reasons | {r["dir"].name: ENSEMBLE_REASON for r in cv_runs if r["record"]["arguments"].get("ensemble_of")}


@functools.lru_cache(maxsize=None)
def _predictions(run_dir: Path) -> pd.DataFrame:
    from deeppainter.eval.crossval import read_predictions

    return read_predictions(run_dir)


def comparable(a: dict, b: dict) -> bool:
    """Same images (data, classes, count) and seed: paired tests can match their predictions image by image."""
    def key(run):
        return (run["record"]["arguments"].get("data"), tuple(run["metrics"]["classes"]), run["metrics"]["n_images"],
                run["record"]["seed"])

    return key(a) == key(b)


def reference_run(run: dict, references: list[dict]) -> dict | None:
    """The same model at its preset on the same images (same seed, so the same folds where the duplicate
    groups agree: those are preferred), or None. A stack with other members than the preset's is another
    model, not an ablation of the preset's stack."""
    if "classifier.stack_members" in run["changes"]:
        return None
    same = [ref for ref in references if ref["metrics"]["model"] == run["metrics"]["model"]
            and ref["record"]["preset"] == run["record"]["preset"] and comparable(ref, run)]
    groups = run["record"]["arguments"].get("duplicate_groups", "")
    same.sort(key=lambda ref: ref["record"]["arguments"].get("duplicate_groups", "") != groups)
    return same[0] if same else None


def paired(a: dict, b: dict) -> dict:
    """eval.stats.paired_tests of two runs' out-of-fold predictions (A minus B)."""
    return paired_tests(_predictions(a["dir"]), _predictions(b["dir"]))


def test_cells(result: dict | None) -> dict:
    """The Δ and p-value columns of a row compared with another run (blank where there is none)."""
    if result is None:
        return {"Δ acc": "", "p McNemar": "", "p corr. t": ""}
    t_test = result["corrected_t"]
    return {"Δ acc": f"{100 * result['difference']:+.2f}", "p McNemar": format_p(result["mcnemar"]["p"]),
            "p corr. t": format_p(t_test["p"] if t_test else None)}


def cv_table(runs: list[dict], relative_to: Path, references: list[dict] | None = None,
             reasons: dict[str, str] | None = None) -> pd.DataFrame:
    rows = []
    for run in runs:
        m, record = run["metrics"], run["record"]
        link = run["dir"].relative_to(relative_to).as_posix()
        tests = {}
        if references is not None:
            reference = reference_run(run, references)
            tests = test_cells(paired(run, reference) if reference is not None and reference is not run else None)
        rows.append({
            "model": m["model"] + (MARK if reasons and run["dir"].name in reasons else ""),
            "preset": record["preset"], "seed": record["seed"], "changes": run["changes"] or "—", **tests,
            "images": m["n_images"],
            **{metric: format_percent(m[f"{metric}_mean"], m[f"{metric}_std"]) for metric in METRICS},
            "acc 95% CI": "–".join(f"{100 * v:.1f}" for v in m["accuracy_ci95"]),
            "CV wall (min)": f"{m.get('wall_seconds_folds', 0) / 60:.1f}", "device": device_of(run["env"]),
            "run": f"[{run['dir'].name}]({link}/)",
        })
    return pd.DataFrame(rows)


def best_against_runner_up(runs: list[dict]) -> str:
    """One line: the table's best row against the best row on the same images, with both tests."""
    ranked = sorted(runs, key=lambda r: -r["metrics"]["accuracy_mean"])
    if len(ranked) < 2:
        return ""
    best = ranked[0]
    runner_up = next((r for r in ranked[1:] if comparable(r, best)), None)
    if runner_up is None:
        return ""
    result = paired(best, runner_up)
    test, t_test = result["mcnemar"], result["corrected_t"]

    def name(run):
        return f"`{run['dir'].name}` ({run['metrics']['model']}, {100 * run['metrics']['accuracy_mean']:.2f})"

    return (f"\nBest against runner-up: {name(best)} against {name(runner_up)}: Δ {100 * result['difference']:+.2f} "
            f"points on {result['images']} images; McNemar p = {format_p(test['p'])} ({test['a_only']} images right "
            f"only in the best, {test['b_only']} only in the runner-up, {test['method']}); corrected t p = "
            f"{format_p(t_test['p'] if t_test else None)}"
            + ("" if t_test else " (other folds: no paired t-test)") + ".\n")


def duplicate_groups(cv_runs: list[dict]) -> pd.DataFrame:
    """Per data set and class list, the newest grouped run's near-duplicate groups (data/duplicates.py rule)."""
    newest = {}
    for run in cv_runs:
        arguments = run["record"]["arguments"]
        if arguments.get("duplicate_rule") and (run["dir"] / "duplicates.csv").exists():
            newest[(arguments.get("data"), tuple(run["metrics"]["classes"]))] = run
    rows = []
    for (data, classes), run in sorted(newest.items()):
        table = pd.read_csv(run["dir"] / "duplicates.csv")
        painters = table.assign(painter=table["path"].str.split("/").str[0]).groupby("group")["painter"].nunique()
        rows.append({"data": data, "classes": len(classes), "images": run["metrics"]["n_images"],
                     "groups": len(painters), "images in groups": len(table),
                     "groups across painters": int((painters > 1).sum()),
                     "threshold": run["record"]["config"]["cv"]["duplicate_threshold"], "run": run["dir"].name})
    return pd.DataFrame(rows)


def stack_weights(metrics: dict) -> str:
    """``member 0.62, member 0.38``: each member's share of the combiner weights, averaged over folds."""
    shares = pd.DataFrame(metrics.get("fold_details", [])).filter(like="weight_").mean()
    return ", ".join(f"{name.removeprefix('weight_')} {share:.2f}" for name, share in shares.items())


def inner_choices(metrics: dict) -> str:
    """``svm.power: signed_sqrt ×7, passthrough ×3``: what the inner grid searches picked across the folds."""
    chosen = pd.DataFrame(metrics.get("fold_details", [])).filter(like="chose_")
    return "; ".join(f"{column.removeprefix('chose_')}: " + ", ".join(f"{value} ×{count}" for value, count in
                                                                       chosen[column].value_counts().items())
                     for column in chosen.columns)


def published_table(task: str) -> pd.DataFrame:
    return pd.DataFrame([{"source": source, "model": model,
                          **{metric: f"{values[metric]:.2f}" if metric in values else "" for metric in METRICS}}
                         for source, model, values in PUBLISHED.get(task, [])])


def pretrain_table(runs: list[dict], relative_to: Path) -> pd.DataFrame:
    rows = []
    for run in runs:
        m, record = run["metrics"], run["record"]
        link = run["dir"].relative_to(relative_to).as_posix()
        rows.append({
            "preset": record["preset"], "changes": run["changes"] or "—",
            "pool": f"{m['images_train'] + m['images_val']} images",
            "excluded": ", ".join(record["arguments"].get("exclude", [])) or "—",
            "val MSE untrained → best": f"{m['val_mse_untrained']:.4f} → {m['val_mse_best']:.4f}",
            "drop": f"{100 * m['val_mse_relative_drop']:.1f}%", "epochs": m["epochs_run"],
            "images/s": f"{m['images_per_second']:.0f}" if m.get("images_per_second") else "",
            "wall (min)": f"{m['wall_seconds'] / 60:.1f}", "device": device_of(run["env"]),
            "reconstructions": f"![]({link}/reconstructions.png)",
        })
    return pd.DataFrame(rows)


def markdown(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_no finished runs yet_\n"
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"



def model_legend(cv_runs: list[dict]) -> str:
    """What each model in the tables is (the registry's description)."""
    from deeppainter.models import registry

    names = dict.fromkeys(r["metrics"]["model"] for r in cv_runs)
    known = dict(registry.describe_all())
    return "".join(f"- `{name}`: {known[name]}\n" for name in known if name in names)


def selection_grid(record: dict) -> str:
    """The C grid a logistic-regression probe searched (its choices are counted beside it)."""
    grid = record["config"].get("classifier", {}).get("probe_c")
    return f" (C grid {', '.join(f'{c:g}' for c in grid)})" if grid else ""


def intro(reasons: dict[str, str], cv_runs: list[dict]) -> list[str]:
    parts = ["# Results\n",
             "Generated by `python -m deeppainter.report` from the run folders under `results/runs/` — "
             "do not edit by hand. Every run is 10-fold cross validation. Accuracy, precision, recall and F1 are "
             "percentages: mean ± std over the folds (macro averages for P/R/F1); the 95% CI is a bootstrap "
             "over images. Each run folder holds the exact configuration (`config.json`), environment "
             "(`env.json`), per-fold scores, predictions and plots. `changes` lists the config values that "
             "differ from the preset with the model's registered recipe. Runs on the embedded 120-painting "
             "sample and on wikiart14 are in separate tables and never ranked together.\n",
             "\n**Paired tests.** `Δ acc` is accuracy in points against the same model at its preset on the same "
             "images (pooled out-of-fold predictions), `p McNemar` McNemar's test on those predictions (exact "
             "binomial below 25 images that only one of the two gets right), `p corr. t` the Nadeau–Bengio "
             "corrected resampled t-test over the folds' accuracies (only where both runs used the very same "
             "folds; `—` otherwise). Below each table its best row is tested against the runner-up the same "
             "way. A difference without a small p-value is not evidence that one beats the other.\n"]
    if reasons:
        parts.append(f"\n**{MARK} chosen after seeing results.** A row marked {MARK} is a configuration picked "
                     "after the test-fold scores of other rows were known, so its score is "
                     "optimistic until it is confirmed on new data: "
                     + "; ".join(f"`{name}` — {reason}" for name, reason in sorted(reasons.items())
                                 if reason != ENSEMBLE_REASON)
                     + f"; and every `ensemble(a+b)` row ({ENSEMBLE_REASON}).\n")
    if any(r["record"]["arguments"].get("ensemble_of") for r in cv_runs):
        parts.append("\n`ensemble(a+b)` rows average the out-of-fold probabilities of finished runs in the same "
                     "folds with equal weights (`cv10 ensemble`): nothing inside is fitted on a test fold, but "
                     "every ensemble tried is listed.\n")
    pretrained_on_task = [(r, "transductive" if r["record"]["arguments"].get("transductive") else "in-fold")
                          for r in cv_runs if r["record"]["arguments"].get("transductive")
                          or r["record"]["arguments"].get("pretraining") == "in-fold"]
    if pretrained_on_task:
        parts.append("\nEncoders pre-trained on the evaluated images themselves (labels ignored) are marked in "
                     "`changes`: `(in-fold pre-training)` — a new encoder in every fold, from that fold's training "
                     "images only, so no test image was seen (`cv10 --pretrain-in-fold`); `(transductive "
                     "pre-training)` — one encoder from all images, test folds included, so the accuracy is not a "
                     "held-out estimate (`cv10 --transductive-pretrain`). Every other encoder was pre-trained on "
                     "other painters. Such runs: " + ", ".join(f"`{r['dir'].name}` ({kind})"
                                                                for r, kind in pretrained_on_task) + ".\n")
    stacks = [r for r in cv_runs if r["metrics"]["model"] == "stack"]
    if stacks:
        parts.append("\n`stack` rows (`--model stack`) combine their members' probabilities with a logistic "
                     "regression fitted, in every outer fold, on inner folds of the training folds only: no test "
                     "fold is used to fit the combination. Which members to stack is another matter: where they "
                     f"were picked after seeing the members' rows the row is marked {MARK}, and a stack of other "
                     "members than the preset's is a model of its own, not an ablation of the preset's stack (no "
                     "`Δ acc`). Mean share of the combiner's weight per member: "
                     + "; ".join(f"`{r['dir'].name}` {stack_weights(r['metrics'])}" for r in stacks) + ".\n")
    return parts


def render(results_dir: Path) -> str:
    runs_root = results_dir / "runs"
    cv_runs, pretrain_runs = load_runs(runs_root)
    reasons = post_hoc_reasons(results_dir, cv_runs)
    parts = intro(reasons, cv_runs)

    def table(runs, references=None):
        return markdown(cv_table(runs, results_dir, references, reasons))

    sample_runs = sorted((r for r in cv_runs if on_sample(r)), key=lambda r: -r["metrics"]["accuracy_mean"])
    if sample_runs:
        at_preset = [r for r in sample_runs if not r["changes"]]
        parts.append("\n## The embedded sample — 120 paintings, 40 each by van Gogh, Rembrandt and Renoir (the "
                     "paper's design)\n\n" + table(sample_runs, at_preset) + best_against_runner_up(sample_runs)
                     + "\n### Published (David & Netanyahu's own 120 curated paintings; the replication's WikiArt "
                       "set)\n\n" + markdown(published_table(ABLATED_TASK)))
    data_runs = [r for r in cv_runs if not on_sample(r)]
    ablations: list[str] = []  # Table 3 goes after Table 2
    for task, title in TASKS.items():
        if task == "":
            parts += ablations
        task_runs = [r for r in data_runs if r["metrics"].get("task", "") == task]
        if not task_runs and not (task and PUBLISHED.get(task)):
            continue
        parts.append(f"\n## {title} on wikiart14\n")
        ranked = sorted(task_runs, key=lambda r: -r["metrics"]["accuracy_mean"])
        at_preset, changed = [r for r in ranked if not r["changes"]], [r for r in ranked if r["changes"]]
        if task == ABLATED_TASK:
            parts.append("\n### Ours: each model at its preset\n\n" + table(at_preset)
                         + best_against_runner_up(at_preset))
        elif ranked:
            parts.append("\n### Ours (`changes` lists any value changed from the preset)\n\n"
                         + table(ranked, at_preset) + best_against_runner_up(ranked))
        if task:
            parts.append("\n### Published\n\n" + markdown(published_table(task)))
        if task == ABLATED_TASK and changed:
            ablations.append("\n## Table 3 — ablations on the 3-painter task on wikiart14 (one factor changed; see "
                             "`changes`)\n\nEach row against the same model at its preset in Table 1 on the same "
                             "images (same seed; the same folds unless the duplicate groups differ).\n\n"
                             + table(changed, at_preset) + best_against_runner_up(changed))
        selected_in_training = [r for r in task_runs if r["dir"].name not in reasons]
        if selected_in_training:
            best = max(selected_in_training, key=lambda r: r["metrics"]["accuracy_mean"])
            pairs = "; ".join(f"{p['pair']} ({p['confusions']})" for p in best["metrics"]["most_confused"][:3])
            parts.append(f"\nBest run not chosen after seeing results: `{best['dir'].name}` "
                         f"({best['metrics']['model']}). Most confused pairs there: {pairs}.\n\n"
                         f"![confusion matrix of the best run]({best['dir'].relative_to(results_dir).as_posix()}"
                         f"/confusion_matrix.png)\n")
    groups = duplicate_groups(cv_runs)
    if not groups.empty:
        parts.append("\n## Near-duplicate groups\n\nVersions of one work (byte-identical files, or trimmed-bar "
                     "grey + gradient thumbnails more similar than `cv.duplicate_threshold`, chosen on labelled "
                     "pairs: [experiments/duplicates/](../experiments/duplicates/)) are kept inside one fold. Per "
                     "class list, from its newest grouped run's `duplicates.csv`; no group should hold two "
                     "painters:\n\n" + markdown(groups))
    audited = [(r, inner_choices(r["metrics"])) for r in cv_runs]
    if any(choices for _, choices in audited):
        parts.append("\n## Model selection inside the training folds\n\nWhat each run's inner grid searches chose, "
                     "counted over its folds (recorded since the run folders carry `chose_*` per fold):\n\n"
                     + "".join(f"- `{r['dir'].name}` ({r['metrics']['model']}"
                               f"{', ' + r['changes'] if r['changes'] else ''}): {choices}"
                               f"{selection_grid(r['record']) if 'logreg.C' in choices else ''}\n"
                               for r, choices in audited if choices))
    trust = trust_table(cv_runs, load_evaluations(runs_root), results_dir, reasons)
    if not trust.empty:
        parts.append("\n## Who painted this — or none of them? Open set, calibration, another source\n\n"
                     "Leave-painters-out (deeppainter/eval/trust.py): the painters outside the task are dealt into "
                     "two groups; each fold tests one group's paintings as unknown and, with outlier exposure "
                     "(`trust.background`), trains against the other group as one background class. Per fold the "
                     "threshold keeps 95% of the training folds' known paintings (3 inner folds) and the "
                     "temperature (`ECE (T)`) is fitted there too; `knowns kept` / `unknowns rejected` are at that "
                     "threshold, `FPR@95` is the share of unknowns accepted when 95% of the test knowns are kept "
                     "(percent, mean over folds). *Other source*: the run's final model (trained on every image) "
                     "evaluated with its own scorer and threshold on devset's paintings by the task's painters "
                     "(balanced accuracy) against devset-unknown's 12 painters (`python -m deeppainter.evaluate "
                     "--unknown`). ‡: the model's encoder was pre-trained (without labels) on a pool that holds the "
                     "unknown painters' paintings.\n\n" + markdown(trust))
    parts.append("\n## What each model is\n\n" + model_legend(cv_runs))
    parts.append("\n## Autoencoder pre-training\n\n" + markdown(pretrain_table(pretrain_runs, results_dir)))
    if (results_dir / "bench.md").exists():
        parts.append("\n## Performance\n\nSee [bench.md](bench.md) (`python -m deeppainter.bench`).\n")
    parts.append("\nThe paper's genetic-algorithm classifier rows are out of scope: they are shown as "
                 "published only.\n")
    return "".join(parts)
