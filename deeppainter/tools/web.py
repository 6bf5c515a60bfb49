"""The local page of ``python -m deeppainter.serve``: upload paintings, see who painted them and why.

Built on Starlette (served by uvicorn, uploads parsed by python-multipart) with one small HTML page
(``web_page.html``, plain JavaScript). Why not Gradio: it brings some forty packages and its own
front-end build, keeps every upload in its own cache folder (we must delete uploads after the
answer) and puts its own queue and file handling between the request and the model; FastAPI adds
request validation and generated API docs that one upload endpoint does not need, on top of the
Starlette it is built on. Starlette is the small, well-kept ASGI library under FastAPI that most
ML users have met: here it is one page, one JSON endpoint and one lock, all visible in this file.

``POST /api/predict`` (multipart, field ``images``, one or more files) answers with JSON: per image
the top-k painters from the same function as ``predict`` (``eval.inference.predict_files``), the
image as the model saw it, a heat map (``eval.explain.explain_image``: Grad-CAM or occlusion, named),
the nearest training paintings when the run carries a reference set, the open-set verdict when the
model's table has one, and the CSV ``predict`` would write for the same files. Uploads live in a
temporary folder only while they are answered. A request larger than ``serve.max_files`` images of
``serve.max_upload_mb`` is refused before it is read; an image over the size or megapixel limit,
or smaller than ``serve.min_side``, is refused before it is decoded.
"""
from __future__ import annotations

import base64
import datetime as _dt
import io
import logging
import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from deeppainter.config import ServeConfig
from deeppainter.errors import UserError
from deeppainter.eval.explain import explain_image, overlay_png
from deeppainter.eval.inference import FinalModel, ReferenceSet, predict_files

PAGE = Path(__file__).with_name("web_page.html")
OPEN_SET_COLUMNS = ("unknown", "known_score", "threshold")  # read when the model's prediction table has them
MEGABYTE = 1_000_000
LOG = logging.getLogger("deeppainter.serve")


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def png_url(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return data_url(buffer.getvalue(), "image/png")


def plain_value(value):
    """A table cell as JSON: numpy scalars to Python, missing (NaN) to None."""
    if isinstance(value, np.generic):
        value = value.item()
    return None if isinstance(value, float) and value != value else value


def occlusion_grid_for(seconds_per_image: float, budget: float, largest: int) -> int:
    """Cells a side such that grid² covered copies take at most ``budget`` seconds, between 2 and ``largest``."""
    fits = int(np.sqrt(budget / max(seconds_per_image, 1e-9)))
    return max(2, min(largest, fits))


class PainterService:
    """One final model answering uploads; model work is serialised by a lock (Keras models are not re-entrant,
    and 2 cores gain nothing from running two at once)."""

    def __init__(self, final: FinalModel, cfg: ServeConfig, reference: ReferenceSet | None):
        self.final, self.cfg, self.reference = final, cfg, reference
        self.lock = threading.Lock()
        self.occlusion_grid = cfg.occlusion_grid  # warm_up fits it to the model's speed
        if reference is not None:
            probe = final.feature_vectors(np.zeros((1, final.image_size, final.image_size, 3), np.uint8))
            if probe is None or probe.shape[1] != reference.features.shape[1]:
                raise UserError(f"--run {final.run_dir}: reference_set.npz does not match the final model's features; "
                                f"re-run cv10 with --save-final-model to write both again")

    def warm_up(self) -> None:
        """Time the model on a few grey images, fit the occlusion grid to ``serve.heat_seconds``, then answer one
        image, so the first visitor waits for neither the model's first call nor an oversized map."""
        grey = np.full((4, self.final.image_size, self.final.image_size, 3), 128, np.uint8)
        self.final.predict_proba(grey)  # the first call pays for set-up (graph tracing, sessions)
        started = time.perf_counter()
        self.final.predict_proba(grey)
        self.occlusion_grid = occlusion_grid_for((time.perf_counter() - started) / len(grey), self.cfg.heat_seconds,
                                                 self.cfg.occlusion_grid)
        with tempfile.TemporaryDirectory(prefix="deeppainter-serve-") as folder:
            path = Path(folder) / "warm-up.png"
            Image.new("RGB", (self.final.image_size,) * 2, (128, 128, 128)).save(path)
            self.answer([("warm-up.png", path)])

    def info(self) -> dict:
        return {"model": self.final.name, "run": self.final.run_dir.name, "classes": self.final.classes,
                "image_size": self.final.image_size, "mode": self.final.mode, "top_k": self.cfg.top_k,
                "max_upload_mb": self.cfg.max_upload_mb, "max_files": self.cfg.max_files,
                "reference_images": 0 if self.reference is None else len(self.reference.painters)}

    def admit(self, path: Path) -> str:
        """Why an upload is not decoded ("" = decode it): its size on disk, then its header's pixel count."""
        size = path.stat().st_size
        if size > self.cfg.max_upload_mb * MEGABYTE:
            return (f"{size / MEGABYTE:.1f} MB is over the limit of {self.cfg.max_upload_mb:g} MB per image "
                    f"(serve.max_upload_mb); not decoded")
        limit = f"the limit of {self.cfg.max_megapixels:g} megapixels (serve.max_megapixels); not decoded"
        try:
            with Image.open(path) as image:  # reads the header only
                width, height = image.size
        except Image.DecompressionBombError:
            return f"more pixels than Pillow's decompression-bomb guard allows, over {limit}"
        except Exception:  # not an image, or a damaged header: the decoder says which, as predict does
            return ""
        if width * height > self.cfg.max_megapixels * 1e6:
            return f"{width}×{height} = {width * height / 1e6:.1f} megapixels is over {limit}"
        if min(width, height) < self.cfg.min_side:
            return (f"{width}×{height} pixels is too small to show a painting (at least {self.cfg.min_side} pixels a "
                    f"side; serve.min_side)")
        return ""

    def answer(self, uploads: list[tuple[str, Path]], explain: bool = True) -> dict:
        """``(name, path)`` of each upload → the page's JSON: one card per image and predict's CSV."""
        started = time.perf_counter()
        with self.lock:
            predictions = predict_files(self.final, [path for _, path in uploads], self.cfg.top_k, progress=False,
                                        admit=self.admit)
            table = predictions.table.assign(path=[name for name, _ in uploads])
            readable = iter(zip(predictions.images, predictions.probabilities))
            cards = []
            for row in table.to_dict(orient="records"):
                card = {"name": row["path"], "error": row["error"]}
                if not row["error"]:
                    image, probabilities = next(readable)
                    card.update(self.describe(row, image, probabilities, explain))
                cards.append(card)
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
        return {"model": self.final.name, "images": cards, "csv": table.to_csv(index=False),
                "csv_name": f"predictions_{stamp}.csv", "seconds": round(time.perf_counter() - started, 3)}

    def describe(self, row: dict, image: np.ndarray, probabilities: np.ndarray, explain: bool) -> dict:
        top_k = min(self.cfg.top_k, len(self.final.classes))
        card = {"top": [{"painter": row[f"top{rank}"], "probability": row[f"prob{rank}"]}
                        for rank in range(1, top_k + 1)],
                "seen": png_url(image), "seen_size": self.final.image_size}
        card.update({column: plain_value(row[column]) for column in OPEN_SET_COLUMNS if column in row})
        if not explain:
            return card
        target = self.final.classes.index(row["top1"])
        heat = explain_image(self.final, image, target, float(probabilities[target]), self.occlusion_grid)
        card.update({"heatmap": data_url(overlay_png(image, heat.heat, self.cfg.heat_alpha), "image/png"),
                     "heatmap_method": heat.method, "heatmap_note": heat.note})
        card.update(self.neighbours(image))
        return card

    def neighbours(self, image: np.ndarray) -> dict:
        if self.cfg.neighbours == 0:
            return {"neighbours": [], "neighbours_note": "the nearest-paintings view is off (serve.neighbours=0)"}
        if self.reference is None:
            return {"neighbours": [], "neighbours_note": (
                "this model carries no reference set of training paintings (cv10 --save-final-model writes "
                "reference_set.npz beside the final model; this run has none)")}
        vector = self.final.feature_vectors(image[None])[0]
        return {"neighbours": [{"painter": str(self.reference.painters[i]), "path": str(self.reference.paths[i]),
                                "distance": round(distance, 4),
                                "thumbnail": data_url(self.reference.thumbnail(i), "image/jpeg")}
                               for i, distance in self.reference.nearest(vector, self.cfg.neighbours)],
                "neighbours_note": ""}


def refuse(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(service: PainterService) -> Starlette:
    cfg = service.cfg
    request_limit = cfg.max_files * cfg.max_upload_mb * MEGABYTE + 64 * 1024  # and room for the form's headers

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    async def info(request: Request) -> JSONResponse:
        return JSONResponse(service.info())

    async def predict(request: Request) -> JSONResponse:
        length = request.headers.get("content-length")
        if length is None or not length.isdigit():
            return refuse(411, "send the images as a form upload with a Content-Length (the page and curl -F do)")
        if int(length) > request_limit:
            return refuse(413, f"upload of {int(length) / MEGABYTE:.1f} MB refused unread: the limit is "
                               f"{cfg.max_files} images of {cfg.max_upload_mb:g} MB (serve.max_files, "
                               f"serve.max_upload_mb)")
        async with request.form(max_files=cfg.max_files, max_fields=8) as form:
            uploads = [value for value in form.getlist("images") if isinstance(value, UploadFile)]
            if not uploads:
                return refuse(400, "no image in the upload: choose one or more image files (form field 'images')")
            explain = form.get("explain", "1") != "0"
            with tempfile.TemporaryDirectory(prefix="deeppainter-serve-") as folder:
                saved = []
                for number, upload in enumerate(uploads):
                    path = Path(folder) / f"upload{number:03d}"  # never the client's name: no path tricks
                    with open(path, "wb") as handle:
                        while chunk := await upload.read(1 << 20):
                            handle.write(chunk)
                    saved.append((Path(upload.filename or f"image{number + 1}").name, path))
                answer = await run_in_threadpool(service.answer, saved, explain)
        return JSONResponse(answer)

    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return refuse(exc.status_code, f"bad upload: {exc.detail}")

    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        LOG.exception("request failed")  # the traceback goes to the server's log, never to the page
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return refuse(500, f"the model could not answer ({type(exc).__name__}{': ' + message if message else ''})")

    return Starlette(routes=[Route("/", page), Route("/api/info", info),
                             Route("/api/predict", predict, methods=["POST"])],
                     exception_handlers={HTTPException: http_error, Exception: server_error})


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free one), or a one-line error naming the option."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        raise UserError(f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc}); choose another "
                        f"--port, or a --host of this machine") from None
    sock.listen(128)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"


def serve(app: Starlette, sock: socket.socket) -> None:
    """Answer on ``sock`` until Ctrl-C (uvicorn, access log off: upload names stay out of logs)."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, timeout_keep_alive=5))
    server.run(sockets=[sock])
