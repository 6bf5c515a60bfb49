"""One table per command: our rows beside the published numbers, one row per method.

Each finished run gives one row (its ``metrics.json``): accuracy mean ± std over the folds, the bootstrap
95% CI and macro F1; every published source of the task (eval/published.py) is one column beside it,
matched by method name. Methods that were published but not run here follow, with their numbers only.
The columns stay narrow (≤ 100 characters for the papers' tasks): the sources' full names are footnotes.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from deeppainter.eval.metrics import format_percent
from deeppainter.eval.published import PUBLISHED, task_name
from deeppainter.runs import read_json

NOT_RUN = "—"


def source_name(source: str) -> str:
    """``David & Netanyahu 2016, Table 1 (…)`` → ``David & Netanyahu 2016``: one column per paper."""
    return source.split(",")[0].strip()


def source_column(name: str) -> str:
    """``David & Netanyahu 2016`` → ``D&N 2016``: a column header a table of this width can carry."""
    words = name.split()
    return "".join(w if w == "&" else w[0] for w in words[:-1]) + " " + words[-1]


def model_label(summary: dict) -> str:
    """The model name, marked where its encoder was pre-trained on the evaluated images."""
    if summary.get("transductive"):
        return f"{summary['model']} (transductive pre-training)"
    if summary.get("pretraining") == "in-fold":
        return f"{summary['model']} (in-fold pre-training)"
    return summary["model"]


def comparison_table(summaries: list[dict]) -> tuple[pd.DataFrame, list[str]]:
    """``(table, footnotes)`` for runs' summaries (``metrics.json``; ``model``, ``transductive`` and
    ``pretraining`` as cv10 records them) on one task: a row per run, then the published-only methods."""
    task = task_name(summaries[0]["classes"]) if summaries else ""
    published = PUBLISHED.get(task, [])
    sources = list(dict.fromkeys(source_name(source) for source, _, _ in published))
    cells = {(source_name(source), model): values for source, model, values in published}

    def published_cells(model: str) -> dict:
        return {source_column(s): f"{cells[s, model]['accuracy']:.2f}" if (s, model) in cells else ""
                for s in sources}

    rows = [{"method": model_label(s), "ours: acc mean ± std": format_percent(s["accuracy_mean"], s["accuracy_std"]),
             "95% CI": "–".join(f"{100 * v:.1f}" for v in s["accuracy_ci95"]), "macro F1": f"{100 * s['f1_mean']:.2f}",
             **published_cells(s["model"])} for s in summaries]
    ran = {s["model"] for s in summaries}
    for model in dict.fromkeys(model for _, model, _ in published):
        if model not in ran:
            rows.append({"method": model, "ours: acc mean ± std": NOT_RUN, "95% CI": "", "macro F1": "",
                         **published_cells(model)})
    notes = []
    for name in sources:
        full = max((source for source, _, _ in published if source_name(source) == name), key=len)
        others = [f"{model} P/R/F1 " + "/".join(f"{values[m]:.0f}" for m in ("precision", "recall", "f1"))
                  for source, model, values in published if source_name(source) == name and "f1" in values]
        notes.append(f"{source_column(name)}: {full}" + (f" (also {'; '.join(others)})" if others else ""))
    return pd.DataFrame(rows), notes


def render(summaries: list[dict]) -> str:
    """The table as printed text: a heading, the rows, the sources."""
    if not summaries:
        return ""
    table, notes = comparison_table(summaries)
    first = summaries[0]
    heading = (f"Accuracy (%), {first['n_folds']}-fold CV, {first['n_images']} images, {len(first['classes'])} "
               f"classes; ours: mean ± std over folds, bootstrap 95% CI")
    widths = {c: max(len(c), *(len(str(v)) for v in table[c])) for c in table.columns}
    lines = ["  ".join(str(v).ljust(widths[c]) for c, v in zip(table.columns, row)).rstrip()
             for row in [list(table.columns), *table.itertuples(index=False)]]
    unrun = [f"{NOT_RUN}: published, not run here"] if len(table) > len(summaries) else []
    return "\n".join([heading, *lines, *notes, *unrun])


def render_runs(run_dirs: list[Path]) -> str:
    """:func:`render` for finished run folders (those without metrics.json are left out)."""
    return render([read_json(Path(d) / "metrics.json") for d in run_dirs if (Path(d) / "metrics.json").is_file()])
