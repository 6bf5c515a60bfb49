"""A fake WikiArt on 127.0.0.1 for the scraper tests: legacy JSON endpoints, HTML pages, generated JPEGs.

    with FakeWikiArt({"alpha": [FakeWork(1), FakeWork(2, kind="corrupt")]}) as site:
        site.inject("PaintingsByArtist", "429:1", "500", "reset", "truncate")
        ... python -m deeppainter.scrape --base-url site.base_url --allowed-hosts 127.0.0.1 ...

Faults queued with :meth:`FakeWikiArt.inject` hit the next requests whose path+query contains the
given text, one per request, in order: ``"429"`` / ``"429:<retry-after>"``, ``"500"``, ``"503"``,
``"reset"`` (TCP RST, no response), ``"truncate"`` (a 200 whose body is cut in half, with a matching
Content-Length) and ``"short"`` (Content-Length of the full body, half of it sent, then closed).
Per-work faults are ``FakeWork.kind``: ``ok``, ``placeholder``, ``corrupt``, ``external`` (image on
another host name), ``redirect`` (302 from the allowed host to another host name), and ``FakeWork.dup_of`` (serve another work's bytes). ``json_unavailable``
makes an artist's JSON listing answer 503 so only the HTML text-list works; ``image_delay`` slows
every image down. Every request is logged in ``requests`` as (monotonic time, path, user-agent).
"""
from __future__ import annotations

import hashlib
import html
import io
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit

PLACEHOLDER_PATH = "/Content/images/FRAME-600x480.jpg"


@dataclass
class FakeWork:
    content_id: object  # int (possibly > 2**63) or a hostile string
    title: str = ""
    year: object = 1889
    url: str = ""  # WikiArt's painting url slug
    kind: str = "ok"  # ok | placeholder | corrupt | external
    dup_of: object = None  # content_id whose image bytes this work serves

    def __post_init__(self):
        self.title = self.title or f"Work {self.content_id}"
        self.url = self.url or f"work-{self.content_id}"


def make_jpeg(seed: str, size=(24, 16)) -> bytes:
    """A small JPEG whose colours depend on ``seed``, so every work has distinct bytes."""
    from PIL import Image

    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    image = Image.new("RGB", size, tuple(digest[:3]))
    image.paste(tuple(digest[3:6]), (0, 0, size[0] // 2, size[1] // 2))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


class FakeWikiArt:
    def __init__(self, artists: dict[str, list[FakeWork]] | None = None, public_domain: list[str] | None = None,
                 image_delay: float = 0.0):
        self.artists = artists or {}
        self.public_domain = list(self.artists) if public_domain is None else public_domain
        self.image_delay = image_delay
        self.json_unavailable: set[str] = set()
        self.requests: list[tuple[float, str, str]] = []
        self._faults: list[list] = []  # [substring, [fault, ...]]
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self
        self._server.handle_error = lambda request, address: None  # resets are deliberate
        self.port = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    # ---- lifecycle
    def start(self) -> "FakeWikiArt":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- test controls
    def inject(self, substring: str, *faults: str) -> None:
        with self._lock:
            self._faults.append([substring, list(faults)])

    def take_fault(self, target: str) -> str | None:
        with self._lock:
            for entry in self._faults:
                if entry[0] in target and entry[1]:
                    return entry[1].pop(0)
        return None

    def log(self, path: str, agent: str, when: float | None = None) -> None:
        with self._lock:
            self.requests.append((time.monotonic() if when is None else when, path, agent))

    def paths(self) -> list[str]:
        with self._lock:
            return [path for _, path, _ in self.requests]

    # ---- content
    def image_path(self, slug: str, work: FakeWork) -> str:
        return f"/images/{quote(slug, safe='')}/{quote(work.url, safe='')}.jpg"

    def image_url(self, slug: str, work: FakeWork) -> str:
        if work.kind == "placeholder":
            return self.base_url + PLACEHOLDER_PATH
        host = f"http://localhost:{self.port}" if work.kind == "external" else self.base_url
        return host + self.image_path(slug, work) + "!Large.jpg"

    def record(self, slug: str, work: FakeWork) -> dict:
        return {"title": work.title, "contentId": work.content_id, "artistContentId": 42,
                "artistName": slug.replace("-", " ").title(), "artistUrl": slug, "url": work.url,
                "completitionYear": work.year, "yearAsString": "" if work.year is None else str(work.year),
                "width": 24, "height": 16, "image": self.image_url(slug, work), "location": None}

    def image_bytes(self, slug: str, work: FakeWork) -> bytes:
        if work.kind == "corrupt":
            return b"\xff\xd8\xff\xe0 these bytes are not a JPEG " + str(work.content_id).encode()
        if work.dup_of is not None:
            return make_jpeg(f"{slug}/{work.dup_of}")
        return make_jpeg(f"{slug}/{work.content_id}")

    def find_image(self, path: str):
        for slug, works in self.artists.items():
            for work in works:
                if unquote(self.image_path(slug, work)) == unquote(path):
                    return slug, work
        return None

    def find_work(self, slug: str, url: str):
        for work in self.artists.get(slug, []):
            if work.url == url or str(work.content_id) == url:
                return work
        return None


class _Server(ThreadingHTTPServer):
    """Stamps each connection when it is accepted, before a thread is started for it (less jitter)."""

    def process_request(self, request, client_address):
        self.accepted = getattr(self, "accepted", {})
        self.accepted[id(request)] = time.monotonic()
        super().process_request(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeWikiArt/1.0"

    def log_message(self, *args):  # keep test output quiet
        pass

    @property
    def fake(self) -> FakeWikiArt:
        return self.server.fake

    def do_GET(self):  # noqa: N802 (http.server naming)
        accepted = getattr(self.server, "accepted", {}).pop(id(self.request), None)
        self.fake.log(self.path, self.headers.get("User-Agent", ""), accepted)
        fault = self.fake.take_fault(self.path)
        if fault == "reset":
            return self._reset()
        if fault and fault.startswith("429"):
            retry_after = fault.partition(":")[2]
            return self._send(429, b"Too Many Requests", headers={"Retry-After": retry_after} if retry_after else {})
        if fault in ("500", "503"):
            return self._send(int(fault), b"server error")
        status, body, ctype, *headers = self._route()
        if fault == "truncate":
            body = body[: len(body) // 2]
        return self._send(status, body, ctype, headers=headers[0] if headers else None, cut=fault == "short")

    def _route(self):
        fake = self.fake
        parts = urlsplit(self.path)
        path, query = unquote(parts.path), parse_qs(parts.query)
        if path == "/en/App/Artist/AlphabetJson":
            listing = [{"contentId": 1000 + i, "artistName": slug, "url": slug}
                       for i, slug in enumerate(fake.public_domain)]
            return self._json(listing)
        if path == "/en/App/Painting/PaintingsByArtist":
            slug = query.get("artistUrl", [""])[0]
            if slug in fake.json_unavailable:
                return 503, b"<html>maintenance</html>", "text/html"
            if slug not in fake.artists:
                return 404, b"not found", "text/plain"
            return self._json([fake.record(slug, work) for work in fake.artists[slug]])
        if path.startswith("/en/App/Painting/ImageJson/"):
            wanted = path.rsplit("/", 1)[1]
            for slug, works in fake.artists.items():
                for work in works:
                    if str(work.content_id) == wanted:
                        return self._json(fake.record(slug, work))
            return 404, b"not found", "text/plain"
        if path == PLACEHOLDER_PATH:
            return 200, make_jpeg("placeholder", (60, 48)), "image/jpeg"
        if path.startswith("/images/"):
            found = fake.find_image(path.replace("-moved.jpg", ".jpg"))
            if found is None:
                return 404, b"not found", "text/plain"
            if found[1].kind == "redirect" and not path.endswith("-moved.jpg"):
                target = f"http://localhost:{fake.port}{fake.image_path(*found)[:-4]}-moved.jpg"
                return 302, b"", "text/plain", {"Location": target}
            if fake.image_delay:
                time.sleep(fake.image_delay)
            return 200, fake.image_bytes(*found), "image/jpeg"
        pieces = [unquote(piece) for piece in parts.path.strip("/").split("/")]
        if len(pieces) == 4 and pieces[0] == "en" and pieces[2:] == ["all-works", "text-list"]:
            return self._text_list(pieces[1])
        if len(pieces) == 3 and pieces[0] == "en":
            work = fake.find_work(pieces[1], pieces[2])
            if work is not None:
                return self._painting_page(pieces[1], work)
        return 404, b"not found", "text/plain"

    def _json(self, data):
        return 200, json.dumps(data).encode("utf-8"), "application/json; charset=utf-8"

    def _text_list(self, slug):
        if slug not in self.fake.artists:
            return 404, b"not found", "text/plain"
        rows = "".join(
            f'<li class="painting-list-text-row"><a href="/en/{quote(slug)}/{quote(work.url, safe="")}">'
            f"{html.escape(work.title)}</a><span>, {work.year or ''}</span></li>\n"
            for work in self.fake.artists[slug])
        page = f'<html><body><main><ul class="painting-list-text">\n{rows}</ul></main></body></html>'
        return 200, page.encode("utf-8"), "text/html; charset=utf-8"

    def _painting_page(self, slug, work):
        record = html.escape(json.dumps({"contentId": work.content_id, "title": work.title}))
        image = html.escape(self.fake.image_url(slug, work))
        page = (f'<html><head><meta property="og:image" content="{image}"></head>'
                f'<body><main ng-init="paintingJson = {record}"><h3>{html.escape(work.title)}</h3></main>'
                "</body></html>")
        return 200, page.encode("utf-8"), "text/html; charset=utf-8"

    def _send(self, status, body, ctype="text/plain", headers=None, cut=False):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if cut else body)
        if cut:
            self._reset()

    def _reset(self):
        """Close with a TCP RST: the client sees 'connection reset by peer'."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass


def demo_catalog() -> dict[str, list[FakeWork]]:
    """A small catalogue with one of every per-work fault, used by the end-to-end demo and tests."""
    return {
        "alpha-painter": [FakeWork(101), FakeWork(102), FakeWork(103), FakeWork(104, kind="placeholder"),
                          FakeWork(105, kind="corrupt"), FakeWork(106, dup_of=101)],
        "beta-painter": [FakeWork(201), FakeWork(2 ** 64 + 12345, title="Big id"),
                         FakeWork("../../etc/passwd", title="../../etc/passwd", url="../../etc/passwd"),
                         FakeWork("/tmp/absolute", title="Ça ira — 日本の絵 / \\ :*?", url="/tmp/absolute"),
                         FakeWork(205, kind="external")],
    }


if __name__ == "__main__":  # python tests/fake_wikiart.py: serve the demo catalogue until Ctrl-C
    import sys

    site = FakeWikiArt(demo_catalog()).start()
    for spec in sys.argv[1:]:  # PaintingsByArtist=429:1,500,reset | nojson=beta-painter | delay=0.2
        target, _, faults = spec.rpartition("=")
        if target == "nojson":
            site.json_unavailable.add(faults)
        elif target == "delay":
            site.image_delay = float(faults)
        else:
            site.inject(target, *faults.split(","))
    print(site.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        site.stop()
