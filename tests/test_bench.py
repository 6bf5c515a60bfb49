"""``python -m deeppainter.bench --smoke``: the table, the report and the cached-vs-uncached agreement (no timings)."""
import numpy as np

from deeppainter.cli import bench as bench_cli
from deeppainter.runs import read_json
from deeppainter.tools import bench


def test_smoke_bench_writes_table_report_and_run(synthetic_painters, tmp_path, capsys):
    report = tmp_path / "bench.md"
    assert bench_cli.main(["--smoke", "--data", str(synthetic_painters), "--out", str(tmp_path / "runs"),
                       "--report", str(report)]) == 0
    printed = capsys.readouterr().out
    text = report.read_text()
    assert "| " + " | ".join(bench.COLUMNS) + " |" in text
    for row in ("standardiser vs decode bound", "standardiser vs naive", "cv10 cached features vs encoder every epoch",
                "cv10 cache speed-up bound: one training step", "cv10 cached vs uncached agreement", "CAE training vs input pipeline", "CAE achieved FLOP/s (MFU)",
                "dense head at paper size (replication2021)", "replication2021 training memory",
                "frozen features: efficientnet-lite0", "peak reference (MFU denominator)",
                "paper size: CAE training, smoke, float32", "paper size: CAE training, smoke, bfloat16",
                "paper size: head training (0 M weights), smoke, float32"):
        assert f"| {row} |" in text and f"| {row} |" in printed, row
    (run_dir,) = (tmp_path / "runs").glob("*_bench_smoke_seed0")
    for name in ("metrics.json", "env.json", "config.json", "bench.md", "DONE"):
        assert (run_dir / name).exists(), name
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["cv10"]["max_abs_prob_diff"] <= 1e-4
    assert metrics["cv10"]["abs_accuracy_diff"] == 0
    assert metrics["memory"]["first_dense_weights"] == 245_760_300
    assert metrics["cae"]["train_flops_per_image"] > 0
    # the encoder adds work to every step: both bounds exceed 1 (the FLOP one from shapes alone)
    assert metrics["cv10"]["flop_bound"] > 1 and metrics["cv10"]["uncached_step_seconds"] > 0
    assert "≥ 10×" not in text  # the cache's goal is its measured bound, not a number it cannot reach
    # MFU's denominator (nominal on a CPU) and the measured matrix product beside it, per dtype
    for peaks in (metrics["peak"], metrics["matmul"]):
        assert set(peaks) == {"float32", "bfloat16"} and all(p["flops"] > 0 and p["source"] for p in peaks.values())
    records = {(r["part"], r["dtype"]): r for r in metrics["paper_size"]}
    assert set(records) == {(part, dtype) for part in ("cae", "head") for dtype in ("float32", "bfloat16")}
    assert all(r["images_per_s"] > 0 and r["peak_rss_bytes"] > 0 for r in records.values())
    # the FLOP count is the model's, whatever the dtype
    assert records["cae", "float32"]["train_flops_per_image"] == records["cae", "bfloat16"]["train_flops_per_image"]


def _allocate(megabytes: int) -> dict:
    block = np.ones(megabytes * 2 ** 20, dtype=np.uint8)
    return {"sum": int(block.sum())}


def test_isolated_measurement_reports_its_own_peak_memory():
    small, large = (bench.isolated(_allocate, {"megabytes": mb}) for mb in (1, 300))
    assert small["sum"] == 2 ** 20 and large["sum"] == 300 * 2 ** 20
    # each process's high-water mark is its own: the large one holds 300 MB more, the small one does not
    assert large["peak_rss_bytes"] - small["peak_rss_bytes"] > 250 * 2 ** 20
    assert small["device_peak_bytes"] is None


def test_mixed_dtype_picks_the_compute_dtype_and_is_restored():
    import keras

    from deeppainter.train.distribute import options

    for dtype in ("bfloat16", "float16"):
        with options(True, mixed_dtype=dtype):
            assert keras.config.dtype_policy().name == f"mixed_{dtype}"
        assert keras.config.dtype_policy().name == "float32"
