"""``python -m deeppainter.bench``: speed ratios measured side by side in one run (deeppainter.tools.bench).

``--paper-only`` keeps the paper-size rows alone (256 px autoencoder and head training steps in
float32 and bfloat16, each in a fresh process): the GPU session's bench (experiments/gpu_session.sh).
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

from deeppainter.cli import common
from deeppainter.data.datasets import list_labelled
from deeppainter.tools.bench import (
    COLUMNS,
    DTYPES,
    HEAD_PRESET,
    PAPER_PRESETS,
    SHARED_DATA,
    accelerator,
    bench_config,
    cae_training,
    cv_cache_comparison,
    default_data,
    extraction_rates,
    labelled_images,
    markdown_table,
    matmul_peak,
    nominal_cpu_peak,
    onednn_kernels,
    paper_memory,
    paper_rows,
    paper_size,
    peak_row,
    pipeline_rows,
    standardiser_rates,
)

# ASSUMPTION: a few hundred ms per product: n = 2048 on a CPU, 8192 (ten products per timing) on an accelerator.
MATMUL_SIZES = {"cpu": ((1024, 2048), 1), "accelerator": ((4096, 8192), 10)}
# ASSUMPTION: batch 2 keeps a 256 px replication2021 step under 2.5 GB and a few seconds on a quiet 2-core CPU; an
# accelerator gets the presets' own batch (32).
CPU_PAPER_BATCH = 2
# TensorFlow logs this E-level line once per process when Keras fits the autoencoder on a PyDataset here: its
# oneDNN check does not see this AMD CPU's AVX-512 for int32 shape arithmetic, and Eigen does it instead.
SPURIOUS_NATIVE_LINES = ("oneDNN supports DT_INT32 only on platforms with AVX-512",
                         "All log messages before absl::InitializeLog() is called")


@contextlib.contextmanager
def native_stderr_without(patterns: tuple[str, ...]):
    """Hold back what is written to fd 2 (C++ logs too) while the block runs, then pass on every line that
    matches none of ``patterns``: only the known spurious lines disappear, errors still show."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode(errors="replace").splitlines(keepends=True):
                if not any(pattern in line for pattern in patterns):
                    sys.stderr.write(line)


def parse_args(argv=None):
    parser = common.make_parser("bench", __doc__)
    parser.add_argument("--data", type=Path, default=None,
                        help=f"folder of class folders; default: {SHARED_DATA} if present, else the embedded sample")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds), for CI; no meaningful timings")
    parser.add_argument("--peak-tflops", default="",
                        help="the device's datasheet peak for MFU: FLOAT32[,BFLOAT16] TFLOP/s (one number: bfloat16 "
                             "twice it); default: cores × clock × FLOP per cycle on a CPU, the backend's own matrix "
                             "product (measured per dtype) on an accelerator")
    parser.add_argument("--images", type=int, default=400, help="images timed through the standardiser")
    parser.add_argument("--size", type=int, default=128, help="standardiser output size in pixels (downscaling)")
    parser.add_argument("--per-class", type=int, default=100, help="images per class for the cv10 and CAE rows")
    parser.add_argument("--epochs", type=int, default=10, help="head epochs per fold (no early stopping)")
    parser.add_argument("--steps", type=int, default=8, help="timed autoencoder training steps")
    parser.add_argument("--extract-images", type=int, default=64,
                        help="images timed through each frozen feature extractor (the CAE encoder, the pretrained networks)")
    parser.add_argument("--paper-only", action="store_true",
                        help="only the paper-size rows (no data needed): the accelerator session's bench")
    parser.add_argument("--paper-batch", type=int, default=0,
                        help=f"batch of the paper-size autoencoder steps; 0 = the preset's (32) on an accelerator, "
                             f"{CPU_PAPER_BATCH} on a CPU")
    parser.add_argument("--paper-steps", type=int, default=2, help="timed paper-size steps (median), after one untimed")
    parser.add_argument("--dtypes", default=",".join(DTYPES),
                        help="compute dtypes of the paper-size rows (bfloat16 = Keras' mixed_bfloat16 policy)")
    parser.add_argument("--report", type=Path, default=Path("results/bench.md"), help="markdown report (atomic)")
    args = parser.parse_args(argv)
    args.dtypes = tuple(d.strip() for d in args.dtypes.split(",") if d.strip())
    try:
        args.peak_tflops = tuple(float(v) for v in args.peak_tflops.split(",") if v.strip())
    except ValueError:
        parser.error(f"--peak-tflops {args.peak_tflops}: expected one or two numbers, e.g. 495,989")
    if len(args.peak_tflops) > 2 or any(v <= 0 for v in args.peak_tflops):
        parser.error("--peak-tflops: one or two positive numbers (float32[,bfloat16] TFLOP/s)")
    if not args.dtypes or not set(args.dtypes) <= set(DTYPES):
        parser.error(f"--dtypes {','.join(args.dtypes)}: choose from {','.join(DTYPES)}")
    if min(args.paper_steps, args.steps, args.images, args.per_class, args.epochs) < 1 or args.paper_batch < 0:
        parser.error("--paper-steps, --steps, --images, --per-class and --epochs must be at least 1, "
                     "--paper-batch at least 0")
    if args.smoke:
        args.preset = "smoke"
        args.images, args.size, args.per_class = min(args.images, 12), 32, min(args.per_class, 12)
        args.epochs, args.steps = min(args.epochs, 2), min(args.steps, 2)
        args.extract_images = min(args.extract_images, 4)
        args.paper_steps, args.paper_batch = 1, args.paper_batch or 2
    return args


def matmul_peaks(args, device: str) -> dict:
    """The backend's own matrix product per dtype, best of several (measured on every run)."""
    import keras

    sizes, products = MATMUL_SIZES["cpu" if device == "cpu" else "accelerator"]
    sizes = (256,) if args.smoke else sizes
    repeats = 2 if args.smoke else 5
    result = {}
    for dtype in DTYPES:
        result[dtype] = matmul_peak(dtype, sizes, repeats=repeats, products=products)
        result[dtype]["source"] = (f"keras.ops.matmul on {keras.backend.backend()} {device}, best of {repeats}"
                                   f"{f' × {products} products' if products > 1 else ''}")
    return result


def peaks(args, device: str, matmul: dict) -> dict:
    """The MFU denominator: the datasheet's (--peak-tflops); else on a CPU cores × clock × FLOP per cycle (a
    matrix product measured here under other jobs' load can run slower than the convolutions); else the
    measured matrix product."""
    if args.peak_tflops:
        float32, bfloat16 = (*args.peak_tflops, 2 * args.peak_tflops[0])[:2]
        return {dtype: {"flops": tflops * 1e12, "size": 0, "dtype": dtype, "source": "--peak-tflops (datasheet)"}
                for dtype, tflops in zip(DTYPES, (float32, bfloat16))}
    nominal = nominal_cpu_peak() if device == "cpu" else None
    return nominal or matmul


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
    import keras

    from deeppainter.models.autoencoder import build_autoencoder

    load_start = os.getloadavg()[0]
    data = args.data or default_data()
    arguments = {k: str(v) for k, v in vars(args).items() if k not in ("preset", "overrides", "seed", "out")}
    run_dir, _ = open_run("bench", args.preset, args.seed, cfg, arguments, args.out, resume=False)
    device = accelerator()
    inputs = "— (random inputs)" if args.paper_only else data
    print(f"bench run {run_dir} on {inputs} ({keras.backend.backend()}, {device})")
    metrics: dict = {"matmul": matmul_peaks(args, device), "device": device, "backend": keras.backend.backend()}
    metrics["peak"] = peaks(args, device, metrics["matmul"])
    rows = []
    if not args.paper_only:
        paths = list(list_labelled(data)["path"].sample(frac=1.0, random_state=args.seed))[:args.images]
        metrics["standardiser"] = standardiser_rates(paths, args.size, repeats=1 if args.smoke else 3)
        images, labels = labelled_images(data, cfg, args.per_class, args.seed)
        _, encoder = build_autoencoder(cfg.autoencoder, cfg.data.image_size)  # untrained: timing and agreement only
        encoder.save(run_dir / "encoder.keras")
        metrics["cv10"] = cv_cache_comparison(cfg, images, labels, run_dir / "encoder.keras", run_dir / "cache",
                                              args.seed, repeats=1 if args.smoke else 2)
        with native_stderr_without(SPURIOUS_NATIVE_LINES):
            metrics["cae"] = cae_training(cfg, images, args.steps, args.seed, metrics["peak"]["float32"]["flops"])
        metrics["memory"] = paper_memory()
        metrics["image_size"] = cfg.data.image_size
        extractors = ("efficientnet-lite0",) if args.smoke else ("efficientnet-lite0", "dinov2-s", "magenta-style")
        metrics["extraction"] = extraction_rates(images[:args.extract_images], run_dir / "encoder.keras", extractors)
        rows += pipeline_rows(metrics, args.size)
    metrics["paper_size"] = paper_size(
        ("smoke",) if args.smoke else PAPER_PRESETS, "smoke" if args.smoke else HEAD_PRESET, args.dtypes,
        cae_batch=args.paper_batch or (CPU_PAPER_BATCH if device == "cpu" else 0), head_batch=args.paper_batch,
        steps=args.paper_steps, seed=args.seed, isolate=not args.smoke, initializer=common.import_keras_quietly)
    if keras.backend.backend() == "tensorflow" and device == "cpu" and "bfloat16" in args.dtypes and not args.smoke:
        metrics["onednn"] = onednn_kernels()
    rows += [peak_row(metrics), *paper_rows(metrics)]
    metrics["table"] = [dict(zip(COLUMNS, row)) for row in rows]
    metrics["load_average"] = {"start": load_start, "end": os.getloadavg()[0], "cpus": os.cpu_count()}
    table = markdown_table(rows)
    command = " ".join(["python -m deeppainter.bench", *(sys.argv[1:] if argv is None else argv)])
    load = metrics["load_average"]
    what = "paper-size rows only, random inputs" if args.paper_only else f"preset {args.preset}, data {data}"
    header = (f"# deeppainter bench\n\n`{command}`: {what}, seed {args.seed}, "
              f"{keras.backend.backend()} on {device}; run folder {run_dir}. Ratios are measured side by side in one "
              f"run. Load average {load['start']:.1f} at the start and {load['end']:.1f} at the end on {load['cpus']} "
              f"CPUs (other jobs share this machine: timings are only as steady as that).\n\n")
    atomic_write_text(args.report, header + table)
    atomic_write_text(run_dir / "bench.md", header + table)
    atomic_write_json(run_dir / "metrics.json", metrics)
    mark_done(run_dir)
    print(table)
    print(f"report: {args.report}; run folder: {run_dir}")
    return 0
