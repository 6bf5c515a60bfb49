"""Scrape a painting dataset from WikiArt, politely and resumably.

    python -m deeppainter.scrape --artists scraping/paper3.txt --out data/paper3
    python -m deeppainter.scrape --random-pool 5000 --artists scraping/paper3.txt --out data/pool

Images land in ``DIR/<artist-slug>/<contentId>.<ext>``; ``DIR/manifest.csv`` has one row per work
seen (``status`` = ok | placeholder | duplicate | failed | skipped) and ``DIR/summary.csv`` the
per-artist counts. Killed at any moment and re-run with the same arguments, it continues: ``ok``
works whose file is still there are not fetched again, ``failed`` and ``skipped`` ones are retried.

Crash safety: every manifest change is first appended (and fsynced) to ``DIR/.manifest.journal``;
``manifest.csv`` is only ever replaced atomically by a compacted copy, and the journal is folded
into it at start-up, every few works and at the end. Images are written to a temporary file,
decoded with Pillow, and only then renamed to their final name.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import random
import re
import sys
import threading
import time
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from deeppainter.data.wikiart import (
    WikiArtClient,
    WikiArtError,
    Work,
    full_size_url,
    is_placeholder,
)
from deeppainter.errors import UserError
from deeppainter.progress import progress
from deeppainter.runs import atomic_write_bytes, atomic_write_text

MANIFEST_COLUMNS = ["artist_slug", "content_id", "title", "year", "image_url", "status", "reason", "path",
                    "sha256", "width", "height", "source", "listed_via"]
STATUSES = ["ok", "placeholder", "duplicate", "failed", "skipped"]
SUMMARY_COLUMNS = ["artist_slug", "source", *STATUSES, "total", "note"]
JOURNAL_NAME = ".manifest.journal"
TEMP_SUFFIX = ".tmp"  # deeppainter.runs.atomic_write_* temp files: .<name>.<random>.tmp
IMAGE_EXTENSIONS = {".jpg": "jpg", ".jpeg": "jpg", ".png": "png", ".gif": "gif", ".webp": "webp",
                    ".bmp": "bmp", ".tif": "tif", ".tiff": "tif"}
USER_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$", re.IGNORECASE)
POOL_DEFAULT_PER_ARTIST = 10


# --------------------------------------------------------------------------- path safety
def safe_component(value: str, max_len: int = 100) -> str:
    """A file/folder name built from server text: no separators, no ``..``, no hidden or empty names.

    Unchanged when already safe (``[A-Za-z0-9_-]`` with inner dots); otherwise cleaned and suffixed
    with a short hash of the original so two different hostile names never collide.
    """
    value = "" if value is None else str(value)
    if re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", value) and ".." not in value and len(value) <= max_len:
        return value
    ascii_text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "_", ascii_text).strip("_")[: max_len - 9] or "item"
    return f"{cleaned}-{hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"


def image_extension(url: str) -> str:
    suffix = os.path.splitext(urlsplit(url).path)[1].lower()
    return IMAGE_EXTENSIONS.get(suffix, "jpg")


def inside(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


# --------------------------------------------------------------------------- manifest
class Manifest:
    """``manifest.csv`` + an fsynced JSON-lines journal; one row per (artist_slug, content_id)."""

    def __init__(self, root: Path, compact_every: int = 25):
        self.root = Path(root)
        self.csv_path = self.root / "manifest.csv"
        self.journal_path = self.root / JOURNAL_NAME
        self.compact_every = compact_every
        self.rows: dict[tuple[str, str], dict] = {}
        self._lock = threading.RLock()
        self._pending = 0
        self._load()
        self.compact()  # fold any journal left by a killed run, start a fresh one

    def _load(self) -> None:
        if self.csv_path.exists():
            with open(self.csv_path, newline="", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    self._merge(row)
        if self.journal_path.exists():
            with open(self.journal_path, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    try:
                        record = json.loads(line)
                    except ValueError:  # a line cut short by a kill: its work is simply redone
                        continue
                    if isinstance(record, dict):
                        self._merge(record)

    def _merge(self, row: dict) -> None:
        clean = {column: "" if row.get(column) is None else str(row.get(column)) for column in MANIFEST_COLUMNS}
        self.rows[(clean["artist_slug"], clean["content_id"])] = clean

    def get(self, slug: str, content_id: str) -> dict | None:
        with self._lock:
            row = self.rows.get((slug, content_id))
            return dict(row) if row else None

    def all_rows(self) -> list[dict]:
        with self._lock:
            return [dict(row) for row in self.rows.values()]

    def record(self, row: dict) -> None:
        with self._lock:
            self._merge(row)
            line = json.dumps({column: row.get(column, "") for column in MANIFEST_COLUMNS},
                              ensure_ascii=False, default=str)
            with open(self.journal_path, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            self._pending += 1
            if self._pending >= self.compact_every:
                self.compact()

    def compact(self) -> None:
        """Atomically rewrite manifest.csv with every row, then drop the journal (replay is idempotent)."""
        with self._lock:
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(self.rows.values())
            atomic_write_text(self.csv_path, buffer.getvalue())
            self.journal_path.unlink(missing_ok=True)
            self._pending = 0


# --------------------------------------------------------------------------- scraping
class Scraper:
    def __init__(self, client: WikiArtClient, out: Path, *, workers: int = 1, progress: bool = True,
                 log=print):
        self.client = client
        self.out = Path(out)
        self.workers = max(1, int(workers))
        self.progress = progress
        self.log = log
        self.manifest = Manifest(self.out)
        self.notes: dict[str, str] = {}
        self._hash_lock = threading.Lock()
        self._hashes: dict[str, tuple[str, str]] = {}  # sha256 -> (slug, content_id) of the ok work that owns it
        for row in self.manifest.all_rows():
            if row["status"] == "ok" and row["sha256"] and self._file_ok(row):
                key = (row["artist_slug"], row["content_id"])
                held = self._hashes.get(row["sha256"])
                if held is None or canonical_key(*key) < canonical_key(*held):
                    self._hashes[row["sha256"]] = key

    # ---- housekeeping
    def sweep_temp_files(self) -> int:
        """Remove temp files a killed run left behind (ours only: hidden ``.<name>.<random>.tmp`` files)."""
        removed = 0
        candidates = [*self.out.glob(f"*/.*{TEMP_SUFFIX}"), *self.out.glob(f".manifest.csv.*{TEMP_SUFFIX}"),
                      *self.out.glob(f".summary.csv.*{TEMP_SUFFIX}"), *self.out.glob(".standardize-input.csv*")]
        for path in candidates:
            if path.is_file():
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def _file_ok(self, row: dict) -> bool:
        return bool(row.get("path")) and (self.out / row["path"]).is_file()

    def ok_count(self, slug: str) -> int:
        return sum(1 for row in self.manifest.all_rows()
                   if row["artist_slug"] == slug and row["status"] == "ok" and self._file_ok(row))

    # ---- one artist
    def scrape_artist(self, slug: str, folder_slug: str, *, cap: int | None, source: str,
                      seed: int, record_skipped: bool, skip_reason: str | None = None) -> int:
        """List and download one artist's works; returns the number of ok works it now has."""
        already = self.ok_count(folder_slug)
        if cap is not None and already >= cap and skip_reason is None:
            return already
        try:
            works = self.client.paintings_by_artist(slug)
        except WikiArtError as exc:
            self.notes[folder_slug] = f"listing failed: {exc}"
            self.log(f"warning: {slug}: could not list works ({exc}); re-run to retry")
            return already
        for work in works:
            work.artist_slug = folder_slug
        if not works:
            self.notes[folder_slug] = "no works listed"
        works = _dedupe_ids(works)
        if skip_reason is not None:
            for work in works:
                row = self.manifest.get(work.artist_slug, work.content_id)
                if not (row and row["status"] == "ok" and self._file_ok(row)):  # never demote a finished image
                    self._record(work, source, "skipped", skip_reason)
            return already
        rng = random.Random(f"{seed}:{slug}")
        ordered = sorted(works, key=lambda work: work.content_id)
        rng.shuffle(ordered)
        todo = [work for work in ordered if not self._settled(work, source)]
        ok = self.ok_count(folder_slug)
        bar = progress(total=len(todo) if cap is None else min(len(todo), max(0, cap - ok)),
                       desc=folder_slug[:30], unit="img", enabled=self.progress)
        try:
            with ThreadPoolExecutor(self.workers) as pool:
                while todo and (cap is None or ok < cap):
                    batch, todo = (todo, []) if cap is None else (todo[: cap - ok], todo[cap - ok:])
                    for status in pool.map(lambda work: self.process_work(work, source), batch):
                        ok += status == "ok"
                        bar.update(1)
        finally:
            bar.close()
        if record_skipped:
            for work in todo:
                self._record(work, source, "skipped", f"--max-per-artist {cap} reached")
        return ok

    def _settled(self, work: Work, source: str) -> bool:
        """Works that need no request: ok with the file still there, duplicates, placeholders."""
        row = self.manifest.get(work.artist_slug, work.content_id)
        if row and row["status"] == "ok" and self._file_ok(row):
            return True
        if row and row["status"] == "duplicate":
            return True
        if is_placeholder(work.image_url):
            if not row or row["status"] != "placeholder":
                self._record(work, source, "placeholder", "copyright placeholder image, not downloaded")
            return True
        return False

    # ---- one work
    def process_work(self, work: Work, source: str) -> str:
        try:
            return self._process_work(work, source)
        except Exception as exc:  # one odd work must not stop the scrape; it is retried next run
            self._record(work, source, "failed", f"{type(exc).__name__}: {exc}")
            return "failed"

    def _process_work(self, work: Work, source: str) -> str:
        url = full_size_url(work.image_url)
        if not url:
            return self._record(work, source, "failed", "no image URL in the listing")
        folder = self.out / safe_component(work.artist_slug)
        final = folder / f"{safe_component(work.content_id)}.{image_extension(url)}"
        if not inside(self.out, final):  # belt and braces: safe_component already forbids this
            return self._record(work, source, "failed", "unsafe path")
        if final.is_file():  # renamed into place by a run killed before it could record it
            try:
                data = final.read_bytes()
                return self._store(work, source, data, final, already_there=True)
            except (OSError, ValueError):
                pass
        try:
            data = self.client.download(url)
        except WikiArtError as exc:
            return self._record(work, source, "failed", str(exc))
        return self._store(work, source, data, final)

    def _store(self, work: Work, source: str, data: bytes, final: Path, already_there: bool = False) -> str:
        try:
            width, height = _decode(data)
        except ValueError as exc:
            if already_there:
                raise
            return self._record(work, source, "failed", str(exc))
        digest = hashlib.sha256(data).hexdigest()
        me = (work.artist_slug, work.content_id)
        # One lock around claim, write and record: which of two identical images is kept must not
        # depend on which download finished first (workers, interruptions), so the canonical copy
        # is always the work with the smallest content id (canonical_key), and a later-arriving
        # smaller id takes the image over from the work that held it.
        with self._hash_lock:
            owner = self._hashes.get(digest)
            if owner is not None and owner != me and canonical_key(*owner) < canonical_key(*me):
                if already_there:
                    final.unlink(missing_ok=True)
                return self._record(work, source, "duplicate", f"same image bytes as {'/'.join(owner)}", sha256=digest,
                                    width=width, height=height)
            if not already_there:
                atomic_write_bytes(final, data)  # temp + fsync + rename
            if owner is not None and owner != me:
                self._demote(owner, me, digest)
            self._hashes[digest] = me
            return self._record(work, source, "ok", "", path=final.relative_to(self.out).as_posix(),
                                sha256=digest, width=width, height=height)

    def _demote(self, owner: tuple[str, str], canonical: tuple[str, str], digest: str) -> None:
        """``owner`` held an image that ``canonical`` (a smaller content id) also has: the owner becomes a
        duplicate (its file goes), and every duplicate of that image now names the canonical work."""
        reason = f"same image bytes as {'/'.join(canonical)}"
        row = self.manifest.get(*owner)
        if row is not None:
            if row.get("path"):
                (self.out / row["path"]).unlink(missing_ok=True)
            self.manifest.record({**row, "status": "duplicate", "reason": reason, "path": ""})
        for other in self.manifest.all_rows():
            if other["status"] == "duplicate" and other["sha256"] == digest and other["reason"] != reason:
                self.manifest.record({**other, "reason": reason})

    def _record(self, work: Work, source: str, status: str, reason: str, **extra) -> str:
        row = {"artist_slug": work.artist_slug, "content_id": work.content_id, "title": work.title,
               "year": work.year, "image_url": work.image_url, "status": status, "reason": reason,
               "path": "", "sha256": "", "width": "", "height": "", "source": source,
               "listed_via": work.listed_via}
        row.update({key: "" if value is None else str(value) for key, value in extra.items()})
        self.manifest.record(row)
        return status


def canonical_key(slug: str, content_id: str) -> tuple:
    """Order of works among identical images: the smallest content id is kept (numeric ids compare as
    numbers, of any length), the artist slug breaks ties."""
    numeric = content_id.isdigit()
    return (0, len(content_id.lstrip("0")), content_id.lstrip("0"), slug) if numeric else (1, 0, content_id, slug)


def _dedupe_ids(works: list[Work]) -> list[Work]:
    seen, unique = set(), []
    for work in works:
        if work.content_id and work.content_id not in seen:
            seen.add(work.content_id)
            unique.append(work)
    return unique


def _decode(data: bytes) -> tuple[int, int]:
    """(width, height) of a fully decodable image, else ValueError with the reason."""
    from PIL import Image

    if not data:
        raise ValueError("empty image body")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return image.size
    except Exception as exc:  # Pillow raises many types for bad bytes
        raise ValueError(f"undecodable image: {type(exc).__name__}: {exc}") from None


# --------------------------------------------------------------------------- summary
def summarise(rows: list[dict], notes: dict[str, str]) -> list[dict]:
    table: dict[tuple[str, str], dict] = {}
    for row in rows:
        key = (row["artist_slug"], row["source"])
        entry = table.setdefault(key, {"artist_slug": key[0], "source": key[1], **{s: 0 for s in STATUSES}})
        if row["status"] in STATUSES:
            entry[row["status"]] += 1
    for slug, note in notes.items():
        if not any(key[0] == slug for key in table):
            table[(slug, "")] = {"artist_slug": slug, "source": "", **{s: 0 for s in STATUSES}}
    result = []
    for (slug, _source), entry in table.items():
        entry["total"] = sum(entry[s] for s in STATUSES)
        entry["note"] = notes.get(slug, "")
        result.append(entry)
    return result


def format_table(summary: list[dict]) -> str:
    columns = ["artist_slug", "source", *STATUSES, "total"]
    totals = {"artist_slug": "TOTAL", "source": "", **{c: sum(r[c] for r in summary) for c in [*STATUSES, "total"]}}
    lines = [columns] + [[str(r[c]) for c in columns] for r in [*summary, totals]]
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]

    def fmt(line):
        return "  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths)))

    rule = "  ".join("-" * w for w in widths)
    text = [fmt(lines[0]), rule, *(fmt(line) for line in lines[1:-1]), rule, fmt(lines[-1])]
    text += [f"note: {r['artist_slug']}: {r['note']}" for r in summary if r["note"]]
    return "\n".join(text)


# --------------------------------------------------------------------------- CLI
def read_artists(value: str | None, option: str = "--artists") -> list[str]:
    if not value:
        return []
    path = Path(value)
    if path.is_file():
        lines = path.read_text(encoding="utf-8").splitlines()
        slugs = [line.split("#", 1)[0].strip() for line in lines]
        where = f"in {path}"
    elif "/" in value or value.endswith(".txt"):
        raise UserError(f"{option}: file {value} not found (give a slug list file or comma-separated slugs)")
    else:
        slugs = [part.strip() for part in value.split(",")]
        where = f"in {option}"
    slugs = list(dict.fromkeys(slug for slug in slugs if slug))
    bad = [slug for slug in slugs if not USER_SLUG_RE.match(slug) or ".." in slug]
    if bad:
        raise UserError(f"{option}: {bad[0]!r} {where} is not a WikiArt slug (like vincent-van-gogh)")
    if not slugs:
        raise UserError(f"{option}: no slugs {where}")
    return slugs








@contextmanager
def one_scrape_per_folder(out: Path):
    """One scrape per folder at a time (an OS lock: a killed run releases it by itself)."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks, trust the user
        yield
        return
    lock_path = out / ".scrape.lock"
    with open(lock_path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UserError(f"another scrape is writing {out}; wait for it or use another --out") from None
        try:
            yield
        finally:
            lock_path.unlink(missing_ok=True)


def run_scrape(args: argparse.Namespace, slugs: list[str], excluded: set[str]) -> int:
    log = print
    client = WikiArtClient(args.base_url, min_interval=args.min_interval, max_retries=args.retries,
                           backoff=args.backoff, timeout=args.timeout, max_bytes=args.max_bytes,
                           image_hosts=[h.strip() for h in args.allowed_hosts.split(",") if h.strip()],
                           rng=random.Random(args.seed), log=lambda message: print(message, file=sys.stderr))
    scraper = Scraper(client, args.out, workers=args.workers, progress=not args.no_progress, log=log)
    removed = scraper.sweep_temp_files()
    if removed:
        log(f"removed {removed} temporary file(s) left by an interrupted run")
    started = time.monotonic()
    try:
        public = None
        if args.public_domain_only or args.random_pool:
            public = _public_domain_slugs(client)
        for slug in slugs:
            skip = None
            if args.public_domain_only and slug not in public:
                skip = "artist not in WikiArt's public-domain list (--public-domain-only)"
            scraper.scrape_artist(slug, safe_component(slug), cap=args.max_per_artist, source="artists",
                                  seed=args.seed, record_skipped=True, skip_reason=skip)
        if args.random_pool:
            _random_pool(scraper, public, exclude=set(slugs) | excluded, target=args.random_pool,
                         per_artist=args.max_per_artist or POOL_DEFAULT_PER_ARTIST, seed=args.seed)
    finally:
        scraper.manifest.compact()
    summary = summarise(scraper.manifest.all_rows(), scraper.notes)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(summary)
    atomic_write_text(args.out / "summary.csv", buffer.getvalue())
    print(format_table(summary))
    print(f"{client.request_count} requests in {time.monotonic() - started:.1f}s; manifest: "
          f"{args.out / 'manifest.csv'}")
    if any(row["failed"] for row in summary):
        print("some works failed (see the reason column of manifest.csv); re-run the same command to retry them")
    if args.standardize:
        _standardize(args.out, scraper.manifest.all_rows(), args.standardize, args.workers, not args.no_progress)
    return 0


def _public_domain_slugs(client: WikiArtClient) -> list[str]:
    try:
        artists = client.public_domain_artists()
    except WikiArtError as exc:
        raise UserError(f"could not fetch WikiArt's public-domain artist list: {exc}; re-run later") from None
    slugs = [str(item.get("url") or item.get("artistUrl") or "").strip() for item in artists]
    return list(dict.fromkeys(slug for slug in slugs if slug))


def _random_pool(scraper: Scraper, public: list[str], exclude: set[str], target: int, per_artist: int,
                 seed: int) -> None:
    candidates = sorted(slug for slug in public if slug not in exclude)
    random.Random(seed).shuffle(candidates)

    def pool_ok() -> int:
        return sum(1 for row in scraper.manifest.all_rows()
                   if row["source"] == "random-pool" and row["status"] == "ok" and scraper._file_ok(row))

    collected = pool_ok()
    for slug in candidates:
        if collected >= target:
            break
        folder = safe_component(slug)
        mine = scraper.ok_count(folder)
        cap = min(per_artist, mine + target - collected)
        now = scraper.scrape_artist(slug, folder, cap=cap, source="random-pool", seed=seed, record_skipped=False)
        collected += now - mine
    if collected < target:
        scraper.log(f"warning: random pool has {collected} of {target} paintings (public-domain artists exhausted)")


def _standardize(out: Path, rows: list[dict], size: int, workers: int, progress: bool) -> None:
    """Standardise the ``ok`` images (and nothing else in DIR) into DIR/standardized/<artist>/."""
    try:
        from deeppainter.data.standardize import standardize_tree
    except ImportError as exc:
        raise UserError(f"--standardize needs deeppainter.data.standardize ({exc})") from None
    listing = out / ".standardize-input.csv"  # the standardiser's manifest input: path,label
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "label"])
    oks = sorted((row["path"], safe_component(row["artist_slug"])) for row in rows
                 if row["status"] == "ok" and row["path"] and (out / row["path"]).is_file())
    writer.writerows(oks)
    atomic_write_text(listing, buffer.getvalue())
    try:
        result = standardize_tree(src=listing, dst=out / "standardized", size=size, workers=workers,
                                  progress=progress)
    finally:
        listing.unlink(missing_ok=True)
    print(f"standardised {len(oks)} image(s) into {out / 'standardized'} at {size}x{size}"
          + (f" ({result.get('skipped')} skipped)" if isinstance(result, dict) and result.get("skipped") else ""))
