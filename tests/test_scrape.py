"""The WikiArt scraper against a fake WikiArt on 127.0.0.1 (tests/fake_wikiart.py): faults, safety, resume."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_wikiart import FakeWikiArt, FakeWork, demo_catalog  # noqa: E402

from deeppainter.cli import scrape as scrape_cli  # noqa: E402
from deeppainter.data import scrape  # noqa: E402
from deeppainter.data.wikiart import (  # noqa: E402
    RateLimiter,
    full_size_url,
    is_placeholder,
    parse_retry_after,
)

ROOT = Path(__file__).resolve().parent.parent
FAST = ["--min-interval", "0.01", "--backoff", "0.01", "--no-progress", "--allowed-hosts", "127.0.0.1"]


def run(site: FakeWikiArt, out: Path, artists: str | None, *extra: str) -> int:
    argv = ["--out", str(out), "--base-url", site.base_url, *FAST, *extra]
    if artists:
        argv += ["--artists", artists]
    return scrape_cli.main(argv)


def manifest(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)


def row(frame: pd.DataFrame, content_id) -> pd.Series:
    rows = frame[frame.content_id == str(content_id)]
    assert len(rows) == 1, f"{len(rows)} rows for {content_id}"
    return rows.iloc[0]


def image_files(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*") if p.is_file() and p.suffix == ".jpg" and "standardized" not in p.parts)


def simple_site(n: int = 4, slug: str = "alpha-painter", **kwargs) -> FakeWikiArt:
    return FakeWikiArt({slug: [FakeWork(100 + i) for i in range(n)]}, **kwargs)


# --------------------------------------------------------------------------- happy path
def test_clean_scrape_writes_images_manifest_and_summary(tmp_path, capsys):
    with simple_site(3) as site:
        assert run(site, tmp_path, "alpha-painter") == 0
    frame = manifest(tmp_path)
    assert list(frame.columns[:11]) == ["artist_slug", "content_id", "title", "year", "image_url", "status",
                                        "reason", "path", "sha256", "width", "height"]
    assert sorted(frame.content_id) == ["100", "101", "102"] and set(frame.status) == {"ok"}
    for _, r in frame.iterrows():
        path = tmp_path / r.path
        assert path == tmp_path / "alpha-painter" / f"{r.content_id}.jpg"
        with Image.open(path) as image:
            assert image.size == (int(r.width), int(r.height)) == (24, 16)
        assert "!" not in r.image_url  # full-size URL
    image_requests = [p for p in site.paths() if p.startswith("/images/")]
    assert all("!" not in p for p in image_requests) and len(image_requests) == 3
    assert {agent for _, _, agent in site.requests} == {"deeppainter/0.1.0 (+https://github.com/deeppainter)"}
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert summary.loc[0, "ok"] == 3 and summary.loc[0, "failed"] == 0
    assert "alpha-painter" in capsys.readouterr().out
    assert not (tmp_path / ".manifest.journal").exists()


# --------------------------------------------------------------------------- transient faults
@pytest.mark.parametrize("fault", ["429", "500", "503", "reset", "truncate"])
def test_listing_fault_is_retried(tmp_path, fault):
    with simple_site(2) as site:
        site.inject("PaintingsByArtist", fault, fault)
        run(site, tmp_path, "alpha-painter")
        listings = [p for p in site.paths() if "PaintingsByArtist" in p]
    assert len(listings) == 3  # two faults, then success
    assert set(manifest(tmp_path).status) == {"ok"}
    assert all(r.listed_via == "json" for _, r in manifest(tmp_path).iterrows())


@pytest.mark.parametrize("fault", ["429", "500", "reset", "short"])
def test_image_fault_is_retried(tmp_path, fault):
    with simple_site(2) as site:
        site.inject("/images/alpha-painter/work-100.jpg", fault)
        run(site, tmp_path, "alpha-painter")
        assert site.paths().count("/images/alpha-painter/work-100.jpg") == 2
    assert set(manifest(tmp_path).status) == {"ok"}
    assert len(image_files(tmp_path)) == 2


def test_retries_are_bounded_and_failure_is_recorded(tmp_path):
    with simple_site(2) as site:
        site.inject("work-100.jpg", *["500"] * 10)
        run(site, tmp_path, "alpha-painter", "--retries", "2")
        assert site.paths().count("/images/alpha-painter/work-100.jpg") == 3
    r = row(manifest(tmp_path), 100)
    assert r.status == "failed" and "3 attempts" in r.reason and "HTTP 500" in r.reason and r.path == ""
    assert row(manifest(tmp_path), 101).status == "ok"


def test_retry_after_is_honoured(tmp_path):
    with simple_site(1) as site:
        site.inject("PaintingsByArtist", "429:0.6")
        run(site, tmp_path, "alpha-painter")
        times = [t for t, path, _ in site.requests if "PaintingsByArtist" in path]
        all_times = [t for t, _, _ in site.requests]
    assert len(times) == 2 and times[1] - times[0] >= 0.58
    assert all_times[-1] - times[0] >= 0.58  # the image waited too, not only the retried request


def test_retry_after_http_date_and_garbage():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    assert 9 <= parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480) <= 11


def test_rate_limit_spacing_is_measured_at_the_server(tmp_path):
    interval = 0.06
    with simple_site(8) as site:
        run(site, tmp_path, "alpha-painter", "--min-interval", str(interval), "--workers", "4")
        times = sorted(t for t, _, _ in site.requests)
    assert len(times) == 9
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps) >= interval - 0.02, gaps  # unthrottled, these gaps are ~1 ms


def test_rate_limiter_is_shared_across_threads():
    import threading

    clock = {"now": 0.0}
    starts = []
    limiter = RateLimiter(1.0, clock=lambda: clock["now"],
                          sleep=lambda s: clock.__setitem__("now", clock["now"] + s))

    def hit():
        limiter.wait()
        starts.append(clock["now"])

    threads = [threading.Thread(target=hit) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(starts) == [0.0, 1.0, 2.0, 3.0, 4.0]
    limiter.pause(10)
    hit()
    assert starts[-1] >= 14.0


# --------------------------------------------------------------------------- per-work faults
def test_placeholder_corrupt_and_duplicate(tmp_path):
    with FakeWikiArt(demo_catalog()) as site:
        run(site, tmp_path, "alpha-painter", "--workers", "1")
        paths = site.paths()
    frame = manifest(tmp_path)
    assert row(frame, 104).status == "placeholder" and row(frame, 104).path == ""
    assert not any("FRAME" in p for p in paths)  # placeholders are never downloaded
    corrupt = row(frame, 105)
    assert corrupt.status == "failed" and "undecodable" in corrupt.reason and corrupt.path == ""
    dup, original = row(frame, 106), row(frame, 101)
    # Of identical images the smallest content id is kept, whatever finished downloading first.
    assert original.status == "ok" and dup.status == "duplicate" and dup.path == ""
    assert dup.reason == "same image bytes as alpha-painter/101" and dup.sha256 == original.sha256
    assert sorted(p.name for p in image_files(tmp_path)) == ["101.jpg", "102.jpg", "103.jpg"]


@pytest.mark.parametrize("workers", ["1", "3"])
def test_the_smallest_content_id_keeps_an_image_whatever_the_download_order(tmp_path, workers):
    # 406 and 402 serve 409's bytes and 405 serves 403's: the later-listed smaller ids must win.
    works = [FakeWork(409), FakeWork(406, dup_of=409), FakeWork(405, dup_of=403), FakeWork(403),
             FakeWork(402, dup_of=409), FakeWork(401)]
    with FakeWikiArt({"alpha-painter": works}) as site:
        for seed in ("0", "1", "2"):  # other seeds, other download orders
            out = tmp_path / f"seed{seed}"
            run(site, out, "alpha-painter", "--workers", workers, "--seed", seed)
            frame = manifest(out)
            ok = sorted(frame[frame.status == "ok"].content_id)
            assert ok == ["401", "402", "403"], (seed, ok)
            assert sorted(p.name for p in image_files(out)) == ["401.jpg", "402.jpg", "403.jpg"]
            assert row(frame, 409).reason == "same image bytes as alpha-painter/402"


def test_sigkill_at_any_point_resumes_to_the_uninterrupted_manifest(tmp_path):
    """Kills (SIGKILL) after 1, 2 and 4 images landed; each resumed run's manifest equals an uninterrupted one."""
    works = [FakeWork(509), FakeWork(506, dup_of=509), FakeWork(503), FakeWork(505, dup_of=503),
             FakeWork(502, dup_of=509), FakeWork(501), FakeWork(507), FakeWork(508, kind="placeholder")]
    columns = ["artist_slug", "content_id", "status", "reason", "path", "sha256", "width", "height"]

    def table(out):
        return manifest(out)[columns].astype(str).sort_values(["artist_slug", "content_id"]).reset_index(drop=True)

    with FakeWikiArt({"alpha-painter": works}) as site:
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}

        def command(out):
            return [sys.executable, "-m", "deeppainter.scrape", "--artists", "alpha-painter", "--out", str(out),
                    "--base-url", site.base_url, *FAST, "--workers", "2"]

        subprocess.run(command(tmp_path / "whole"), cwd=ROOT, env=env, check=True, capture_output=True, timeout=60)
        expected = table(tmp_path / "whole")
        site.image_delay = 0.2
        for landed in (1, 2, 4):
            out = tmp_path / f"killed{landed}"
            proc = subprocess.Popen(command(out), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 30
            while len(image_files(out)) < landed and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            site.image_delay = 0
            subprocess.run(command(out), cwd=ROOT, env=env, check=True, capture_output=True, timeout=60)
            site.image_delay = 0.2
            pd.testing.assert_frame_equal(table(out), expected)
            assert sorted(p.name for p in image_files(out)) == ["501.jpg", "502.jpg", "503.jpg", "507.jpg"]


def test_hostile_ids_titles_and_urls_stay_inside_out(tmp_path):
    with FakeWikiArt(demo_catalog()) as site:
        run(site, tmp_path / "data", "beta-painter")
    out = tmp_path / "data"
    frame = manifest(out)
    hostile = row(frame, "../../etc/passwd")
    absolute = row(frame, "/tmp/absolute")
    assert hostile.status == absolute.status == "ok"
    assert absolute.title == "Ça ira — 日本の絵 / \\ :*?"
    for r in (hostile, absolute):
        assert ".." not in r.path and not r.path.startswith("/") and r.path.startswith("beta-painter/")
        assert (out / r.path).resolve().parent == (out / "beta-painter").resolve()
    assert all(p.resolve().is_relative_to(out.resolve()) for p in out.rglob("*"))
    assert not list(tmp_path.glob("*passwd*")) and not Path("/tmp/absolute.jpg").exists()


def test_safe_component():
    assert scrape.safe_component("12345") == "12345"
    assert scrape.safe_component("vincent-van-gogh") == "vincent-van-gogh"
    for hostile in ["..", ".", "", "../../etc/passwd", "/abs/path", "a/b", "a\\b", ".hidden", "x" * 500,
                    "Ça ira", "nul\x00byte"]:
        name = scrape.safe_component(hostile)
        assert name and "/" not in name and "\\" not in name and ".." not in name
        assert not name.startswith(".") and len(name) <= 100
    assert scrape.safe_component("a/b") != scrape.safe_component("a\\b")


def test_content_id_beyond_64_bits_is_kept_exactly(tmp_path):
    big = 2 ** 64 + 12345
    with FakeWikiArt({"beta-painter": [FakeWork(big)]}) as site:
        run(site, tmp_path, "beta-painter")
    r = row(manifest(tmp_path), str(big))
    assert r.content_id == "18446744073709563961" and r.status == "ok"
    assert (tmp_path / "beta-painter" / "18446744073709563961.jpg").is_file()


def test_allow_list_blocks_other_hosts_without_fetching(tmp_path):
    with FakeWikiArt({"beta-painter": [FakeWork(1), FakeWork(205, kind="external")]}) as site:
        run(site, tmp_path, "beta-painter")
        assert "/images/beta-painter/work-205.jpg" not in site.paths()
    r = row(manifest(tmp_path), 205)
    assert r.status == "failed" and "host not allowed" in r.reason and "localhost" in r.reason
    assert row(manifest(tmp_path), 1).status == "ok"


def test_allow_list_can_be_widened(tmp_path):
    with FakeWikiArt({"beta-painter": [FakeWork(205, kind="external")]}) as site:
        run(site, tmp_path, "beta-painter", "--allowed-hosts", "localhost,uploads*.wikiart.org")
    assert row(manifest(tmp_path), 205).status == "ok"


def test_download_size_cap(tmp_path):
    with simple_site(1) as site:
        run(site, tmp_path, "alpha-painter", "--max-bytes", "100")
    r = row(manifest(tmp_path), 100)
    assert r.status == "failed" and "cap" in r.reason and not image_files(tmp_path)


def test_redirect_to_another_host_is_refused(tmp_path):
    with FakeWikiArt({"beta-painter": [FakeWork(8, kind="redirect")]}) as site:
        run(site, tmp_path, "beta-painter")
        assert "/images/beta-painter/work-8-moved.jpg" not in site.paths()
        assert "/images/beta-painter/work-8.jpg" in site.paths()
        assert row(manifest(tmp_path), 8).reason == "host not allowed: localhost"
        run(site, tmp_path / "wide", "beta-painter", "--allowed-hosts", "localhost")
        assert "/images/beta-painter/work-8-moved.jpg" in site.paths()
    assert row(manifest(tmp_path / "wide"), 8).status == "ok"


def test_url_helpers():
    assert full_size_url("https://uploads6.wikiart.org/images/a/b.jpg!Large.jpg") == \
        "https://uploads6.wikiart.org/images/a/b.jpg"
    assert is_placeholder("https://www.wikiart.org/Content/images/FRAME-600x480.jpg")
    assert not is_placeholder("https://uploads6.wikiart.org/images/a/frame-of-mind.jpg")


# --------------------------------------------------------------------------- HTML fallback
def test_html_fallback_when_json_listing_is_unavailable(tmp_path):
    big = 2 ** 70 + 1
    with FakeWikiArt({"alpha-painter": [FakeWork(7, title="Starry & <Night>"), FakeWork(big)]}) as site:
        site.json_unavailable.add("alpha-painter")
        run(site, tmp_path, "alpha-painter", "--retries", "1")
        paths = site.paths()
    assert any("all-works/text-list" in p for p in paths)
    frame = manifest(tmp_path)
    assert set(frame.listed_via) == {"html"} and set(frame.status) == {"ok"}
    assert row(frame, 7).title == "Starry & <Night>" and row(frame, 7).year == "1889"
    assert row(frame, str(big)).path == f"alpha-painter/{big}.jpg"


def test_unknown_artist_is_reported_not_fatal(tmp_path, capsys):
    with simple_site(1) as site:
        assert run(site, tmp_path, "alpha-painter,nobody-at-all") == 0
    summary = pd.read_csv(tmp_path / "summary.csv", dtype=str, keep_default_na=False)
    assert "listing failed" in summary[summary.artist_slug == "nobody-at-all"].note.iloc[0]
    assert row(manifest(tmp_path), 100).status == "ok"


# --------------------------------------------------------------------------- resume
def test_rerun_skips_ok_and_retries_failed(tmp_path):
    with simple_site(3) as site:
        site.inject("work-101.jpg", *["500"] * 2)
        run(site, tmp_path, "alpha-painter", "--retries", "1")
        assert row(manifest(tmp_path), 101).status == "failed"
        before = len(site.paths())
        run(site, tmp_path, "alpha-painter", "--retries", "1")
        second = site.paths()[before:]
    assert [p for p in second if p.startswith("/images/")] == ["/images/alpha-painter/work-101.jpg"]
    frame = manifest(tmp_path)
    assert len(frame) == 3 and set(frame.status) == {"ok"}


def test_rerun_redownloads_an_ok_image_whose_file_vanished(tmp_path):
    with simple_site(2) as site:
        run(site, tmp_path, "alpha-painter")
        (tmp_path / "alpha-painter" / "100.jpg").unlink()
        before = len(site.paths())
        run(site, tmp_path, "alpha-painter")
        assert [p for p in site.paths()[before:] if p.startswith("/images/")] == ["/images/alpha-painter/work-100.jpg"]
    assert (tmp_path / "alpha-painter" / "100.jpg").is_file()


def test_journal_left_by_a_kill_is_folded_in_and_torn_lines_ignored(tmp_path):
    with simple_site(2) as site:
        run(site, tmp_path, "alpha-painter")
        frame = manifest(tmp_path)
        # simulate a kill: the CSV lost its last row, the journal still has it plus a torn line
        import json

        last = frame.iloc[-1].to_dict()
        frame.iloc[:-1].to_csv(tmp_path / "manifest.csv", index=False)
        (tmp_path / ".manifest.journal").write_text(json.dumps(last) + "\n" + '{"artist_slug": "alp')
        before = len(site.paths())
        run(site, tmp_path, "alpha-painter")
        assert not [p for p in site.paths()[before:] if p.startswith("/images/")]
    assert len(manifest(tmp_path)) == 2 and set(manifest(tmp_path).status) == {"ok"}


def test_kill_and_resume(tmp_path):
    out = tmp_path / "data"
    works = [FakeWork(300 + i) for i in range(8)]
    with FakeWikiArt({"alpha-painter": works}, image_delay=0.15) as site:
        cmd = [sys.executable, "-m", "deeppainter.scrape", "--artists", "alpha-painter", "--out", str(out),
               "--base-url", site.base_url, *FAST, "--workers", "2"]
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while len(image_files(out)) < 3 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
        landed = {p.name for p in image_files(out)}
        for path in image_files(out):  # whatever carries a final name is a complete image
            with Image.open(path) as image:
                image.load()
        assert 3 <= len(landed) < len(works)
        if (out / "manifest.csv").exists():  # never corrupt, even mid-run
            manifest(out)
        site.image_delay = 0
        before = len(site.paths())
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, timeout=30)
        refetched = {p.rsplit("-", 1)[1].replace(".jpg", "") + ".jpg"
                     for p in site.paths()[before:] if p.startswith("/images/")}
    assert not refetched & landed, "images already on disk were downloaded again"
    assert sorted(p.name for p in image_files(out)) == sorted(f"{w.content_id}.jpg" for w in works)
    frame = manifest(out)
    assert len(frame) == len(works) and frame.content_id.is_unique and set(frame.status) == {"ok"}
    leftovers = [p for p in out.rglob("*") if p.name.startswith(".") or p.suffix in (".part", ".tmp")]
    assert leftovers == []


def test_stale_temp_files_are_swept_but_user_files_kept(tmp_path):
    (tmp_path / "alpha-painter").mkdir(parents=True)
    stale = [tmp_path / "alpha-painter" / ".100.jpg.k2j3.tmp", tmp_path / ".manifest.csv.x1.tmp"]
    keep = tmp_path / "alpha-painter" / "notes.txt"
    for path in [*stale, keep]:
        path.write_bytes(b"half")
    with simple_site(1) as site:
        run(site, tmp_path, "alpha-painter")
    assert not any(path.exists() for path in stale) and keep.exists()
    assert row(manifest(tmp_path), 100).status == "ok"


def test_failed_rename_leaves_neither_partial_nor_temp_file(tmp_path, monkeypatch):
    real_replace = os.replace

    def broken_replace(src, dst):
        if str(dst).endswith(".jpg"):
            raise OSError("disk full")
        real_replace(src, dst)

    with simple_site(1) as site:
        monkeypatch.setattr(scrape.os, "replace", broken_replace)
        run(site, tmp_path, "alpha-painter")
        monkeypatch.undo()
    r = row(manifest(tmp_path), 100)
    assert r.status == "failed" and "disk full" in r.reason
    assert list((tmp_path / "alpha-painter").iterdir()) == []


# --------------------------------------------------------------------------- selection modes
def test_max_per_artist_then_raise_the_cap(tmp_path):
    with simple_site(5) as site:
        run(site, tmp_path, "alpha-painter", "--max-per-artist", "2")
        frame = manifest(tmp_path)
        assert (frame.status == "ok").sum() == 2 and (frame.status == "skipped").sum() == 3
        assert all("max-per-artist" in r for r in frame[frame.status == "skipped"].reason)
        run(site, tmp_path, "alpha-painter", "--max-per-artist", "3")
    frame = manifest(tmp_path)
    assert len(frame) == 5 and (frame.status == "ok").sum() == 3 and len(image_files(tmp_path)) == 3


def test_max_per_artist_replaces_failures(tmp_path):
    works = [FakeWork(1, kind="corrupt"), FakeWork(2, kind="corrupt"), FakeWork(3), FakeWork(4), FakeWork(5)]
    with FakeWikiArt({"alpha-painter": works}) as site:
        run(site, tmp_path, "alpha-painter", "--max-per-artist", "3")
    assert (manifest(tmp_path).status == "ok").sum() == 3


def test_random_pool_is_seeded_excludes_task_artists_and_sanitises_slugs(tmp_path):
    catalog = {f"pd-artist-{i}": [FakeWork(i * 100 + j) for j in range(4)] for i in range(4)}
    catalog["../evil"] = [FakeWork(999)]
    catalog["vincent-van-gogh"] = [FakeWork(1)]
    chosen = []
    for attempt in range(2):
        out = tmp_path / f"pool{attempt}"
        with FakeWikiArt(catalog) as site:
            run(site, out, None, "--random-pool", "7", "--max-per-artist", "2", "--exclude", "vincent-van-gogh",
                "--seed", "3")
            assert "/en/App/Artist/AlphabetJson?v=new&inPublicDomain=true" in site.paths()
        frame = manifest(out)
        assert (frame.status == "ok").sum() == 7 and set(frame.source) == {"random-pool"}
        assert frame.groupby("artist_slug").size().max() <= 2
        assert "vincent-van-gogh" not in set(frame.artist_slug)
        assert all(".." not in p and "/" not in p for p in frame.artist_slug)
        chosen.append(sorted(frame.content_id))
    assert chosen[0] == chosen[1]


def test_public_domain_only_skips_other_artists(tmp_path):
    catalog = {"alpha-painter": [FakeWork(1)], "modern-painter": [FakeWork(2), FakeWork(3)]}
    with FakeWikiArt(catalog, public_domain=["alpha-painter"]) as site:
        run(site, tmp_path, "alpha-painter,modern-painter", "--public-domain-only")
        assert not any("/images/modern-painter" in p for p in site.paths())
    frame = manifest(tmp_path)
    assert row(frame, 1).status == "ok"
    assert set(frame[frame.artist_slug == "modern-painter"].status) == {"skipped"}


# --------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("argv, message", [
    (["--artists", "rembrandt,x y"], "not a WikiArt slug"),
    (["--artists", "a..b"], "not a WikiArt slug"),
    (["--artists", "missing/list.txt"], "not found"),
    ([], "--artists"),
    (["--artists", "a", "--max-per-artist", "0"], "--max-per-artist"),
    (["--artists", "a", "--base-url", "ftp://x"], "--base-url"),
])
def test_user_errors_are_one_line(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        scrape_cli.main(["--out", str(tmp_path / "o"), *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


def test_artist_list_files(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("# comment\nvincent-van-gogh  # inline\n\nrembrandt\nvincent-van-gogh\n")
    assert scrape.read_artists(str(listing)) == ["vincent-van-gogh", "rembrandt"]
    assert scrape.read_artists(str(ROOT / "scraping" / "paper3.txt")) == [
        "vincent-van-gogh", "rembrandt", "pierre-auguste-renoir"]
    assert len(scrape.read_artists(str(ROOT / "scraping" / "replication10.txt"))) == 10
    assert len(scrape.read_artists(str(ROOT / "scraping" / "wikiart14.txt"))) == 14


def test_standardize_only_sees_ok_images(tmp_path):
    pytest.importorskip("deeppainter.data.standardize")
    catalog = {"alpha-painter": [FakeWork(100), FakeWork(101), FakeWork(102, dup_of=100), FakeWork(103, kind="corrupt")],
               "beta-painter": [FakeWork(200)]}
    with FakeWikiArt(catalog) as site:
        run(site, tmp_path, "alpha-painter,beta-painter", "--standardize", "32", "--workers", "1")
        (tmp_path / "alpha-painter" / "stray.jpg").write_bytes(b"not an image")
        run(site, tmp_path, "alpha-painter,beta-painter", "--standardize", "32")  # re-run: nothing new fed
    made = sorted(p.relative_to(tmp_path / "standardized").as_posix()
                  for p in (tmp_path / "standardized").rglob("*.jpg"))
    frame = manifest(tmp_path)
    assert made == sorted(frame[frame.status == "ok"].path) and len(made) == 3  # no duplicate, corrupt, stray
    with Image.open(tmp_path / "standardized" / made[0]) as image:
        assert image.size == (32, 32)
    assert not list(tmp_path.glob(".standardize*"))
    assert set(manifest(tmp_path).artist_slug) == {"alpha-painter", "beta-painter"}


def test_second_scrape_into_the_same_folder_is_refused(tmp_path, capsys):
    fcntl = pytest.importorskip("fcntl")
    tmp_path.mkdir(exist_ok=True)
    with open(tmp_path / ".scrape.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(SystemExit) as exit_info:
            scrape_cli.main(["--out", str(tmp_path), "--artists", "rembrandt", "--base-url", "http://127.0.0.1:9"])
    assert exit_info.value.code == 2 and "another scrape" in capsys.readouterr().err
