"""``python -m deeppainter.scrape``: the command line of the WikiArt scraper (deeppainter.data.scrape)."""
from __future__ import annotations

import argparse
from pathlib import Path
from urllib.parse import urlsplit

from deeppainter.cli.common import entry_point
from deeppainter.data.scrape import (
    POOL_DEFAULT_PER_ARTIST,
    one_scrape_per_folder,
    read_artists,
    run_scrape,
)
from deeppainter.data.wikiart import (
    DEFAULT_BASE_URL,
    DEFAULT_IMAGE_HOSTS,
    DEFAULT_MAX_BYTES,
)
from deeppainter.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m deeppainter.scrape", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--artists", help="comma-separated WikiArt slugs, or a file of slugs (one per line, "
                                          "# comments); see scraping/*.txt")
    parser.add_argument("--out", type=Path, required=True, help="dataset folder (images, manifest.csv, summary.csv)")
    parser.add_argument("--base-url", default=DEFAULT_BASE_URL, help="WikiArt (or a mirror/fake) root URL")
    parser.add_argument("--max-per-artist", type=int, default=None, metavar="N",
                        help="stop an artist after N ok images (others are recorded as skipped); "
                             f"in --random-pool mode default {POOL_DEFAULT_PER_ARTIST}")
    parser.add_argument("--min-interval", type=float, default=0.5, metavar="S",
                        help="at least S seconds between request starts, across all workers")
    parser.add_argument("--public-domain-only", action="store_true",
                        help="record works of artists missing from WikiArt's public-domain list as skipped")
    parser.add_argument("--random-pool", type=int, default=None, metavar="N",
                        help="also draw N random paintings from public-domain artists (not those in --artists)")
    parser.add_argument("--exclude", metavar="SLUGS_OR_FILE",
                        help="artists never drawn into --random-pool (e.g. the task's painters), like --artists")
    parser.add_argument("--standardize", type=int, default=None, metavar="SIZE",
                        help="afterwards, standardise DIR/<artist>/ into DIR/standardized/<artist>/ at SIZE px")
    parser.add_argument("--workers", type=int, default=2, help="parallel downloads (the rate limit is shared)")
    parser.add_argument("--seed", type=int, default=0, help="seed for --random-pool and --max-per-artist picks")
    parser.add_argument("--retries", type=int, default=5, help="retries per request on 429/5xx/resets/truncation")
    parser.add_argument("--backoff", type=float, default=1.0, metavar="S",
                        help="first back-off delay; doubles per retry, with jitter")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="S", help="per-request timeout")
    parser.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES, help="size cap per image download")
    parser.add_argument("--allowed-hosts", default=",".join(DEFAULT_IMAGE_HOSTS), metavar="PATTERNS",
                        help="comma-separated host patterns images may come from, besides the base URL's host")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser



def check_args(args: argparse.Namespace) -> None:
    if not args.artists and not args.random_pool:
        raise UserError("give --artists SLUGS_OR_FILE and/or --random-pool N")
    for name in ("max_per_artist", "random_pool", "standardize"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if args.min_interval < 0 or args.backoff < 0 or args.retries < 0 or args.workers < 1 or args.max_bytes < 1:
        raise UserError("--min-interval, --backoff and --retries must be >= 0; --workers and --max-bytes >= 1")
    parts = urlsplit(args.base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"--base-url must look like https://www.wikiart.org, got {args.base_url!r}")
    if args.out.exists() and not args.out.is_dir():
        raise UserError(f"--out {args.out} exists and is not a folder")



@entry_point
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    check_args(args)
    slugs = read_artists(args.artists, "--artists")
    excluded = set(read_artists(args.exclude, "--exclude"))
    args.out.mkdir(parents=True, exist_ok=True)
    with one_scrape_per_folder(args.out):
        return run_scrape(args, slugs, excluded)
