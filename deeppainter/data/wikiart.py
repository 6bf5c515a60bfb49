"""A polite HTTP client for WikiArt's legacy JSON endpoints, its HTML text-list pages and its images.

Every request goes through one :class:`RateLimiter` shared by all threads (at most one request
per ``min_interval`` seconds), 429/5xx/connection errors/truncated JSON are retried a bounded
number of times with exponential back-off and jitter, ``Retry-After`` pauses every thread, and
images are fetched only from allowed hosts, with a size cap, never following a redirect off them.

Endpoints (REFERENCE.md §4), all under ``<base>/en/``:
``App/Artist/AlphabetJson?v=new&inPublicDomain=true``,
``App/Painting/PaintingsByArtist?artistUrl=<slug>&json=2``, ``App/Painting/ImageJson/<contentId>``
and the HTML fallback ``<slug>/all-works/text-list``.
"""
from __future__ import annotations

import email.utils
import fnmatch
import json
import random
import re
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable
from urllib.parse import quote, unquote, urljoin, urlsplit

import requests

from deeppainter import __version__

DEFAULT_BASE_URL = "https://www.wikiart.org"
DEFAULT_IMAGE_HOSTS = ("uploads*.wikiart.org",)
USER_AGENT = f"deeppainter/{__version__} (+https://github.com/deeppainter)"
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
PLACEHOLDER_RE = re.compile(r"(/content/images/|frame-\d+x\d+)", re.IGNORECASE)


class WikiArtError(Exception):
    """A request that failed for good (after retries, or a status that is not worth retrying)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass
class Work:
    """One painting as listed by WikiArt; every field is a string (``content_id`` may exceed 64 bits)."""

    artist_slug: str
    content_id: str
    title: str = ""
    year: str = ""
    image_url: str = ""
    painting_url: str = ""
    listed_via: str = "json"


def full_size_url(url: str) -> str:
    """The full image: WikiArt appends size variants after ``!`` (``x.jpg!Large.jpg``)."""
    return (url or "").split("!", 1)[0].strip()


def is_placeholder(url: str) -> bool:
    """Copyrighted works come back as a frame placeholder such as ``/Content/images/FRAME-600x480.jpg``."""
    return bool(PLACEHOLDER_RE.search(urlsplit(url or "").path))


def _text(value) -> str:
    return "" if value is None else str(value).strip()


def work_from_json(record: dict, artist_slug: str, listed_via: str = "json") -> Work:
    """Map a legacy painting record (``contentId``, ``completitionYear`` sic, ``image`` ...) to a Work."""
    content_id = _text(record.get("contentId") if record.get("contentId") is not None else record.get("id"))
    year = _text(record.get("completitionYear")) or _text(record.get("yearAsString"))
    return Work(artist_slug=artist_slug, content_id=content_id, title=_text(record.get("title")),
                year=year, image_url=full_size_url(_text(record.get("image"))),
                painting_url=_text(record.get("url")), listed_via=listed_via)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class RateLimiter:
    """At most one request start per ``min_interval`` seconds across all threads; ``pause`` holds everyone."""

    def __init__(self, min_interval: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.min_interval = max(0.0, float(min_interval))
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._next = 0.0
        self.count = 0  # requests let through

    def wait(self) -> None:
        with self._lock:  # sleeping under the lock keeps requests strictly serialised and spaced
            delay = self._next - self._clock()
            if delay > 0:
                self._sleep(delay)
            self._next = self._clock() + self.min_interval
            self.count += 1

    def pause(self, seconds: float) -> None:
        """Push the next allowed request at least ``seconds`` into the future (Retry-After)."""
        with self._lock:
            self._next = max(self._next, self._clock() + seconds)


def host_allowed(url: str, patterns: Iterable[str]) -> bool:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    host = parts.hostname.lower()
    return any(fnmatch.fnmatchcase(host, pattern.lower()) for pattern in patterns)


class WikiArtClient:
    """HTTP access to WikiArt (or a compatible fake) with rate limiting, retries and download safety."""

    def __init__(self, base_url: str = DEFAULT_BASE_URL, *, min_interval: float = 0.5,
                 max_retries: int = 5, backoff: float = 1.0, max_backoff: float = 60.0,
                 max_retry_after: float = 300.0, timeout: float = 30.0,
                 image_hosts: Iterable[str] | None = None, max_bytes: int = DEFAULT_MAX_BYTES,
                 session: requests.Session | None = None, sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None, log: Callable[[str], None] | None = None):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base URL must be http(s)://host[:port], got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.max_retries = max(0, int(max_retries))
        self.backoff, self.max_backoff, self.max_retry_after = backoff, max_backoff, max_retry_after
        self.timeout, self.max_bytes = timeout, int(max_bytes)
        hosts = list(DEFAULT_IMAGE_HOSTS if image_hosts is None else image_hosts)
        self.allowed_hosts = tuple(dict.fromkeys([parts.hostname.lower(), *hosts]))
        self.limiter = RateLimiter(min_interval, sleep=sleep)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._log = log or (lambda message: None)
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT

    @property
    def request_count(self) -> int:
        return self.limiter.count

    # ----------------------------------------------------------------- low level
    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def _backoff_delay(self, attempt: int) -> float:
        with self._rng_lock:
            jitter = 0.5 + 0.5 * self._rng.random()
        return min(self.max_backoff, self.backoff * (2 ** attempt)) * jitter

    def _wait_before_retry(self, attempt: int, reason: str, retry_after: float | None = None) -> None:
        if retry_after is not None:
            delay = min(retry_after, self.max_retry_after)
        else:
            delay = self._backoff_delay(attempt)
        self.limiter.pause(delay)  # the site is struggling or throttling: every thread holds off
        self._log(f"retry {attempt + 1}/{self.max_retries} in {delay:.2f}s: {reason}")
        self._sleep(delay)

    def _with_retries(self, url: str, handle: Callable[[requests.Response], object], *,
                      params=None, stream: bool = False, allow_redirects: bool = True):
        """GET ``url`` and pass the response to ``handle``; retry transient failures.

        ``handle`` may raise :class:`_Transient` to ask for a retry (truncated JSON or body).
        """
        last = "no attempt"
        for attempt in range(self.max_retries + 1):
            self.limiter.wait()
            retry_after = None
            try:
                with self.session.get(url, params=params, timeout=self.timeout, stream=stream,
                                      allow_redirects=allow_redirects) as response:
                    if response.status_code in RETRY_STATUSES:
                        last = f"HTTP {response.status_code}"
                        retry_after = parse_retry_after(response.headers.get("Retry-After"))
                    elif response.status_code >= 400:
                        raise WikiArtError(f"HTTP {response.status_code} for {url}", response.status_code)
                    else:
                        return handle(response)
            except _Transient as exc:
                last = str(exc)
            except (requests.ConnectionError, requests.Timeout) as exc:
                last = f"{type(exc).__name__}: {_short(exc)}"
            if attempt < self.max_retries:
                self._wait_before_retry(attempt, f"{last} ({url})", retry_after)
        raise WikiArtError(f"gave up after {self.max_retries + 1} attempts: {last}")

    def get_json(self, path: str, params=None):
        def handle(response):
            try:
                return json.loads(response.content.decode("utf-8-sig"))
            except (ValueError, UnicodeDecodeError) as exc:
                raise _Transient(f"truncated or invalid JSON: {exc}") from None

        return self._with_retries(self.url(path), handle, params=params)

    def get_text(self, path: str, params=None) -> str:
        return self._with_retries(self.url(path), lambda response: response.text, params=params)

    # ----------------------------------------------------------------- endpoints
    def public_domain_artists(self) -> list[dict]:
        data = self.get_json("en/App/Artist/AlphabetJson", params={"v": "new", "inPublicDomain": "true"})
        if isinstance(data, dict):  # tolerate {"Artists": [...]} wrappers
            data = data.get("Artists") or data.get("data") or []
        if not isinstance(data, list):
            raise WikiArtError("artist list is not a JSON list")
        return [item for item in data if isinstance(item, dict)]

    def paintings_by_artist_json(self, slug: str) -> list[Work]:
        data = self.get_json("en/App/Painting/PaintingsByArtist", params={"artistUrl": slug, "json": "2"})
        if isinstance(data, dict):
            data = data.get("data") or data.get("Paintings") or []
        if not isinstance(data, list):
            raise WikiArtError("painting list is not a JSON list")
        return [work_from_json(item, slug) for item in data if isinstance(item, dict)]

    def painting(self, content_id: str) -> dict:
        data = self.get_json(f"en/App/Painting/ImageJson/{quote(str(content_id), safe='')}")
        if not isinstance(data, dict):
            raise WikiArtError(f"painting {content_id} is not a JSON object")
        return data

    def paintings_by_artist_html(self, slug: str) -> list[Work]:
        """Fallback: the text-list page, then each painting's page for its image and content id."""
        from bs4 import BeautifulSoup

        page = self.get_text(f"en/{quote(slug, safe='')}/all-works/text-list")
        soup = BeautifulSoup(page, "html.parser")
        rows = soup.select("li.painting-list-text-row") or soup.select("ul.painting-list-text li")
        works, seen = [], set()
        for row in rows:
            link = row.find("a", href=True)
            if link is None:
                continue
            href = link["href"]
            painting_url = unquote(href.rstrip("/").rsplit("/", 1)[-1])
            if not painting_url or href in seen:
                continue
            seen.add(href)
            year_match = re.search(r"\b(\d{3,4})\b", row.get_text(" ", strip=True).replace(link.get_text(), ""))
            work = Work(artist_slug=slug, content_id="", title=link.get_text(strip=True),
                        year=year_match.group(1) if year_match else "", painting_url=painting_url,
                        listed_via="html")
            try:
                self._complete_from_page(work, urljoin(self.base_url + "/", href))
            except WikiArtError as exc:
                self._log(f"{slug}/{painting_url}: {exc}")
            if not work.content_id:
                work.content_id = painting_url  # no numeric id on the page: the url slug is stable
            works.append(work)
        return works

    def _complete_from_page(self, work: Work, page_url: str) -> None:
        from bs4 import BeautifulSoup

        if urlsplit(page_url).hostname != urlsplit(self.base_url).hostname:
            raise WikiArtError(f"painting page off the site: {page_url}")
        html = self._with_retries(page_url, lambda response: response.text)
        match = re.search(r"(?:contentId|content-id)(?:&quot;|[\"'])?\s*[:=]\s*(?:&quot;|[\"'])?(\d+)", html)
        if match:
            work.content_id = match.group(1)
        meta = BeautifulSoup(html, "html.parser").find("meta", attrs={"property": "og:image"})
        if meta is not None and meta.get("content"):
            work.image_url = full_size_url(urljoin(page_url, meta["content"]))
        elif work.content_id:
            record = work_from_json(self.painting(work.content_id), work.artist_slug, "html")
            work.image_url = record.image_url
            work.title = work.title or record.title
            work.year = work.year or record.year

    def paintings_by_artist(self, slug: str) -> list[Work]:
        """The JSON listing, or the HTML text-list when the JSON listing is unavailable."""
        try:
            return self.paintings_by_artist_json(slug)
        except WikiArtError as exc:
            self._log(f"{slug}: JSON listing unavailable ({exc}); falling back to the HTML text-list")
        return self.paintings_by_artist_html(slug)

    # ----------------------------------------------------------------- images
    def download(self, url: str) -> bytes:
        """The image bytes at ``url``; only allowed hosts, redirects checked hop by hop, size capped."""
        for _hop in range(6):
            if not host_allowed(url, self.allowed_hosts):
                raise WikiArtError(f"host not allowed: {urlsplit(url).hostname or repr(url)}")
            result = self._with_retries(url, self._read_capped, stream=True, allow_redirects=False)
            if isinstance(result, _Redirect):
                url = urljoin(url, result.location)
                continue
            return result
        raise WikiArtError("too many redirects")

    def _read_capped(self, response: requests.Response):
        if response.is_redirect:
            return _Redirect(response.headers.get("Location", ""))
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise WikiArtError(f"image larger than the {self.max_bytes}-byte cap ({declared} bytes)")
        chunks, total = [], 0
        try:
            for chunk in response.iter_content(64 * 1024):
                total += len(chunk)
                if total > self.max_bytes:
                    raise WikiArtError(f"image larger than the {self.max_bytes}-byte cap")
                chunks.append(chunk)
        except (requests.exceptions.ChunkedEncodingError, requests.ConnectionError) as exc:
            raise _Transient(f"truncated download: {_short(exc)}") from None
        return b"".join(chunks)


@dataclass
class _Redirect:
    location: str


class _Transient(Exception):
    """A response that looked fine but was not (truncated body or JSON): worth another attempt."""


def _short(exc: BaseException, limit: int = 160) -> str:
    text = str(exc).replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "..."
