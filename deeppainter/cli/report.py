"""``python -m deeppainter.report``: regenerate results/README.md from the run folders; ``--paired A B``: the paired
tests of two runs."""
from __future__ import annotations

import argparse
from pathlib import Path

from deeppainter.cli.common import entry_point
from deeppainter.runs import atomic_write_text


@entry_point
def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m deeppainter.report", description=__doc__)
    parser.add_argument("--results", "--out", type=Path, default=Path("results"),
                        help="results folder holding runs/; results/README.md is rewritten")
    parser.add_argument("--migrate", action="store_true",
                        help="first rewrite old run folders under runs/ to portable paths and compact fold files "
                             "(one-off; numbers unchanged)")
    parser.add_argument("--paired", nargs=2, type=Path, metavar=("RUN_A", "RUN_B"),
                        help="print the paired tests of two cv10 runs (accuracy; open-set AUROC in CV and on another "
                             "source where both have them) instead of writing results/README.md")
    args = parser.parse_args(argv)
    if args.paired:
        from deeppainter.eval.paired import compare

        print("\n".join(compare(*args.paired)))
        return 0
    from deeppainter.eval.report import render

    if args.migrate:
        from deeppainter.run_migration import migrate_runs

        migrate_runs(args.results / "runs")
    text = render(args.results)
    atomic_write_text(args.results / "README.md", text)
    print(f"wrote {args.results / 'README.md'}")
    return 0
