"""``python -m deeppainter.report``: regenerate ``results/README.md`` from the committed run folders.

Nothing in results/ is typed by hand: every row below comes from a run folder's ``metrics.json``
and ``config.json``, with the published numbers (REFERENCE.md) beside ours.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from deeppainter import config as config_lib
from deeppainter.eval.metrics import METRICS, format_percent
from deeppainter.eval.published import PUBLISHED
from deeppainter.runs import read_json

TASKS = {
    "3painters": "Table 1 — the paper's 3-painter task (van Gogh / Rembrandt / Renoir)",
    "10artists": "Table 2 — 10 artists (the 10 largest wikiart14 folders)",
    "": "Table 4 — binary look-alike pairs and other class lists",
}
ABLATED_TASK = "3painters"  # Table 3: one factor at a time against the same model at its preset


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


def config_changes(record: dict) -> str:
    """The ``--set`` overrides a run used: its config against its preset and its model's recipe."""
    cfg = config_lib.from_dict(record["config"], record["preset"])
    changes = [(key, value) for key, value in config_lib.changes_between(cfg, model_preset(record)).items()
               if key not in FOLD_REGIME]
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


def device_of(env: dict) -> str:
    devices = [d for d in env.get("devices", []) if "CPU" not in d.upper()]
    accelerator = devices[0] if devices else f"CPU ×{env.get('cpu_count', '?')}"
    return f"{env.get('backend', '?')}, {accelerator}"


def reference_accuracy(run: dict, references: list[dict]) -> float | None:
    """Accuracy of the same model on the same task and classes at its preset (no changes), if run, in the same
    folds (same seed, and the same near-duplicate groups where they changed the folds)."""
    def folds_of(item: dict) -> tuple:
        return item["record"]["seed"], item["record"].get("arguments", {}).get("duplicate_groups", "")

    for ref in references:
        if (ref["metrics"]["model"], ref["record"]["preset"], ref["metrics"]["classes"], ref["metrics"]["n_images"],
                folds_of(ref)) == (run["metrics"]["model"], run["record"]["preset"], run["metrics"]["classes"],
                                   run["metrics"]["n_images"], folds_of(run)):
            return ref["metrics"]["accuracy_mean"]
    return None


def cv_table(runs: list[dict], relative_to: Path, references: list[dict] | None = None) -> pd.DataFrame:
    rows = []
    for run in runs:
        m, record = run["metrics"], run["record"]
        link = run["dir"].relative_to(relative_to).as_posix()
        delta = {}
        if references is not None:
            base = reference_accuracy(run, references)
            delta = {"Δ acc vs preset": "" if base is None else f"{100 * (m['accuracy_mean'] - base):+.2f}"}
        rows.append({
            "model": m["model"], "preset": record["preset"], "seed": record["seed"],
            "changes": run["changes"] or "—", **delta,
            "classes": len(m["classes"]), "images": m["n_images"], "folds": m["n_folds"],
            **{metric: format_percent(m[f"{metric}_mean"], m[f"{metric}_std"]) for metric in METRICS},
            "acc 95% CI": "–".join(f"{100 * v:.1f}" for v in m["accuracy_ci95"]),
            "CV wall (min)": f"{m.get('wall_seconds_folds', 0) / 60:.1f}", "device": device_of(run["env"]),
            "run": f"[{run['dir'].name}]({link}/)",
        })
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


def render(results_dir: Path) -> str:
    runs_root = results_dir / "runs"
    cv_runs, pretrain_runs = load_runs(runs_root)
    parts = ["# Results\n",
             "Generated by `python -m deeppainter.report` from the run folders under `results/runs/` — "
             "do not edit by hand. Accuracy, precision, recall and F1 are percentages: mean ± std over "
             "the 10 folds (macro averages for P/R/F1); the 95% CI is a bootstrap over images. "
             "Each run folder holds the exact configuration (`config.json`), environment (`env.json`), "
             "per-fold scores, predictions and plots. `changes` lists the config values that differ "
             "from the preset.\n"]
    if any(r["record"]["arguments"].get("ensemble_of") for r in cv_runs):
        parts.append("\n`ensemble(a+b)` rows average the out-of-fold probabilities of finished runs in the same "
                     "folds with equal weights (`cv10 ensemble`). Nothing inside an ensemble is fitted on a test "
                     "fold, but which runs to combine was chosen after their CV scores were known, and every "
                     "ensemble tried is listed: read the best one as slightly optimistic.\n")
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
        parts.append("\n`stack` rows are the honest form of an ensemble (`--model stack`): in every outer fold a "
                     "logistic regression learns how to combine the members' probabilities from inner folds of "
                     "the training folds only. Mean share of the combiner's weight per member: "
                     + "; ".join(f"`{r['dir'].name}` {stack_weights(r['metrics'])}" for r in stacks) + ".\n")
    ablations: list[str] = []  # Table 3 goes after Table 2
    for task, title in TASKS.items():
        if task == "":
            parts += ablations
        task_runs = [r for r in cv_runs if r["metrics"].get("task", "") == task]
        if not task_runs and not (task and PUBLISHED.get(task)):
            continue
        parts.append(f"\n## {title}\n")
        ranked = sorted(task_runs, key=lambda r: -r["metrics"]["accuracy_mean"])
        at_preset, changed = [r for r in ranked if not r["changes"]], [r for r in ranked if r["changes"]]
        if task == ABLATED_TASK:
            parts.append("\n### Ours: each model at its preset\n\n" + markdown(cv_table(at_preset, results_dir)))
        elif ranked:
            parts.append("\n### Ours (`changes` lists any value changed from the preset)\n\n"
                         + markdown(cv_table(ranked, results_dir, references=at_preset)))
        if task:
            parts.append("\n### Published\n\n" + markdown(published_table(task)))
        if task == ABLATED_TASK and changed:
            ablations.append("\n## Table 3 — ablations on the 3-painter task (one factor changed; see `changes`)\n\n"
                             "`Δ acc vs preset` compares with the same model at its preset in the same folds "
                             "(Table 1; same seed, as the seed fixes the folds).\n\n"
                             + markdown(cv_table(changed, results_dir, references=at_preset)))
        selected_in_training = [r for r in task_runs if not r["record"]["arguments"].get("ensemble_of")]
        if selected_in_training:
            best = max(selected_in_training, key=lambda r: r["metrics"]["accuracy_mean"])
            pairs = "; ".join(f"{p['pair']} ({p['confusions']})" for p in best["metrics"]["most_confused"][:3])
            parts.append(f"\nBest run (post-hoc ensembles left out): `{best['dir'].name}` "
                         f"({best['metrics']['model']}). Most confused pairs there: {pairs}.\n\n"
                         f"![confusion matrix of the best run]({best['dir'].relative_to(results_dir).as_posix()}"
                         f"/confusion_matrix.png)\n")
    audited = [(r, inner_choices(r["metrics"])) for r in cv_runs]
    if any(choices for _, choices in audited):
        parts.append("\n## Model selection inside the training folds\n\nWhat each run's inner grid searches chose, "
                     "counted over its folds (recorded since the run folders carry `chose_*` per fold):\n\n"
                     + "".join(f"- `{r['dir'].name}` ({r['metrics']['model']}"
                               f"{', ' + r['changes'] if r['changes'] else ''}): {choices}\n"
                               for r, choices in audited if choices))
    parts.append("\n## Autoencoder pre-training\n\n" + markdown(pretrain_table(pretrain_runs, results_dir)))
    if (results_dir / "bench.md").exists():
        parts.append("\n## Performance\n\nSee [bench.md](bench.md) (`python -m deeppainter.bench`).\n")
    parts.append("\nThe paper's genetic-algorithm classifier rows are out of scope: they are shown as "
                 "published only.\n")
    return "".join(parts)
