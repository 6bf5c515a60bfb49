"""``python -m deeppainter.bench``: speed ratios measured side by side in one run (deeppainter.tools.bench)."""
from __future__ import annotations

from pathlib import Path

from deeppainter.cli import common
from deeppainter.data.datasets import list_labelled
from deeppainter.tools.bench import (
    COLUMNS,
    SHARED_DATA,
    bench_config,
    cae_training,
    cv_cache_comparison,
    default_data,
    extraction_rates,
    labelled_images,
    markdown_table,
    matmul_flops,
    paper_memory,
    standardiser_rates,
    table_rows,
)


def parse_args(argv=None):
    parser = common.make_parser("bench", __doc__)
    parser.add_argument("--data", type=Path, default=None,
                        help=f"folder of class folders; default: {SHARED_DATA} if present, else the embedded sample")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds), for CI; no meaningful timings")
    parser.add_argument("--peak-tflops", type=float, default=0.0,
                        help="the device's peak fp32 TFLOP/s for MFU; 0 = use the measured matmul rate")
    parser.add_argument("--images", type=int, default=400, help="images timed through the standardiser")
    parser.add_argument("--size", type=int, default=128, help="standardiser output size in pixels (downscaling)")
    parser.add_argument("--per-class", type=int, default=100, help="images per class for the cv10 and CAE rows")
    parser.add_argument("--epochs", type=int, default=10, help="head epochs per fold (no early stopping)")
    parser.add_argument("--steps", type=int, default=8, help="timed autoencoder training steps")
    parser.add_argument("--extract-images", type=int, default=64,
                        help="images timed through each frozen feature extractor (the CAE encoder, the pretrained networks)")
    parser.add_argument("--report", type=Path, default=Path("results/bench.md"), help="markdown report (atomic)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.preset = "smoke"
        args.images, args.size, args.per_class = min(args.images, 12), 32, min(args.per_class, 12)
        args.epochs, args.steps = min(args.epochs, 2), min(args.steps, 2)
        args.extract_images = min(args.extract_images, 4)
    return args



@common.entry_point
def main(argv=None):
    from deeppainter.runs import (
        atomic_write_json,
        atomic_write_text,
        mark_done,
        open_run,
    )

    args = parse_args(argv)
    cfg = bench_config(args)
    common.seed_everything(args.seed)  # imports Keras quietly, before the model code below
    from deeppainter.models.autoencoder import build_autoencoder

    data = args.data or default_data()
    arguments = {k: str(v) for k, v in vars(args).items() if k not in ("preset", "overrides", "seed", "out")}
    run_dir, _ = open_run("bench", args.preset, args.seed, cfg, arguments, args.out, resume=False)
    print(f"bench run {run_dir} on {data}")

    paths = list(list_labelled(data)["path"].sample(frac=1.0, random_state=args.seed))[:args.images]
    metrics: dict = {"standardiser": standardiser_rates(paths, args.size, repeats=1 if args.smoke else 3)}
    images, labels = labelled_images(data, cfg, args.per_class, args.seed)
    _, encoder = build_autoencoder(cfg.model, cfg.data.image_size)  # untrained: timing and agreement only
    encoder.save(run_dir / "encoder.keras")
    metrics["cv10"] = cv_cache_comparison(cfg, images, labels, run_dir / "encoder.keras", run_dir / "cache",
                                          args.seed, repeats=1 if args.smoke else 2)
    metrics["peak_flops"] = args.peak_tflops * 1e12 or matmul_flops(256 if args.smoke else 1024)
    metrics["peak_source"] = "--peak-tflops" if args.peak_tflops else "measured numpy matmul"
    metrics["cae"] = cae_training(cfg, images, args.steps, args.seed, metrics["peak_flops"])
    metrics["memory"] = paper_memory()
    metrics["image_size"] = cfg.data.image_size
    extractors = ("efficientnet-lite0",) if args.smoke else ("efficientnet-lite0", "dinov2-s", "magenta-style")
    metrics["extraction"] = extraction_rates(images[:args.extract_images], run_dir / "encoder.keras", extractors)
    rows = table_rows(metrics, args.size)
    metrics["table"] = [dict(zip(COLUMNS, row)) for row in rows]
    table = markdown_table(rows)
    header = (f"# deeppainter bench\n\npreset {args.preset}, data {data}, seed {args.seed}; run folder "
              f"{run_dir}. Ratios are measured side by side in one run.\n\n")
    atomic_write_text(args.report, header + table)
    atomic_write_text(run_dir / "bench.md", header + table)
    atomic_write_json(run_dir / "metrics.json", metrics)
    mark_done(run_dir)
    print(table)
    print(f"report: {args.report}; run folder: {run_dir}")
    return 0
