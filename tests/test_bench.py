"""``python -m deeppainter.bench --smoke``: the table, the report and the cached-vs-uncached agreement (no timings)."""
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
                "frozen features: efficientnet-lite0"):
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
