"""python -m deeppainter.serve: the page in headless Chromium, bad uploads, concurrency, Grad-CAM and the reference set.

The model is a real one: Table 1's features-svm trained by cv10 --save-final-model on 30 paintings per painter
of the embedded sample, so the page is asked about paintings it never saw. ``DEEPPAINTER_SCREENSHOT=docs/serve.png``
keeps the browser test's screenshot (docs/serve.md).
"""
from __future__ import annotations

import base64
import concurrent.futures
import dataclasses
import http.client
import io
import os
import shutil
import tempfile
import threading
import urllib.parse
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
from PIL import Image

from deeppainter.cli import cv10, predict
from deeppainter.cli import serve as serve_cli
from deeppainter.eval import inference
from deeppainter.runs import sample_dir
from deeppainter.tools import web

SCREENSHOT = os.environ.get("DEEPPAINTER_SCREENSHOT", "")


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("serve-run")
    cv10.main(["--preset", "smoke", "--model", "features-svm", "--set", "cv.folds=2", "--set", "cv.bootstrap=1",
               "--set", "cv.group_duplicates=false", "--set", "data.image_size=64", "--set", "data.max_per_class=30", "--save-final-model", "--out", str(out)])
    (run_dir,) = [p for p in out.glob("*_cv10_*") if p.is_dir()]
    return run_dir


@pytest.fixture(scope="module")
def unseen(sample_run) -> list[Path]:
    """Sample paintings the final model was not trained on (10 per painter), in a fixed order."""
    trained = set(pd.read_csv(sample_run / "images.csv")["path"])
    return sorted(p for p in sample_dir().glob("*/*.jpg") if f"{p.parent.name}/{p.name}" not in trained)


@pytest.fixture(scope="module")
def upload_dir(tmp_path_factory):
    """The server's temporary folder: every upload must be gone from it after its answer."""
    folder = tmp_path_factory.mktemp("serve-tmp")
    saved, tempfile.tempdir = tempfile.tempdir, str(folder)
    yield folder
    tempfile.tempdir = saved


@pytest.fixture(scope="module")
def server(sample_run, upload_dir):
    import uvicorn

    from deeppainter.config import ServeConfig

    final = inference.load_final_model(sample_run)
    service = web.PainterService(final, ServeConfig(), inference.load_reference_set(sample_run))
    sock = web.bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(web.create_app(service), log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = web.url_of(sock)
    for _ in range(100):
        if server.started:
            break
        threading.Event().wait(0.05)
    yield url, service
    server.should_exit = True
    thread.join(timeout=10)


def run_predict(sample_run, paths, tmp_path) -> pd.DataFrame:
    out = tmp_path / "predict"
    predict.main(["--run", str(sample_run), *map(str, paths), "--out", str(out)])
    return pd.read_csv(next(out.glob("predictions_*.csv")), keep_default_na=False)


def post(url, files, **data):
    return requests.post(url + "api/predict", files=[("images", item) for item in files], data=data, timeout=60)


def browser():
    """Headless Chromium from Debian's packages, or a skip naming what is missing."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("Chromium not installed (apt-get install chromium chromium-driver): browser test skipped")
    pytest.importorskip("selenium", reason="selenium not installed (pip install -e '.[dev]'): browser test skipped")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,1250"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(driver), options=options)


def upload_in_page(page, path: Path, count: int):
    """Choose ``path`` in the page's file input and wait until the answer has ``count`` cards."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    page.find_element(By.ID, "images").send_keys(str(path))
    WebDriverWait(page, 30).until(lambda d: d.find_element(By.ID, "status").text.startswith("answered")
                                  or d.find_element(By.ID, "error").text)
    cards = page.find_elements(By.CSS_SELECTOR, "#results .card")
    assert len(cards) == count, page.find_element(By.ID, "error").text
    return cards[0]


def test_the_page_answers_like_predict_in_a_real_browser(server, sample_run, unseen, upload_dir, tmp_path,
                                                         monkeypatch):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = server
    painting = unseen[0]
    expected = run_predict(sample_run, [painting], tmp_path).iloc[0]
    page = browser()
    try:
        page.get(url)
        WebDriverWait(page, 30).until(lambda d: d.execute_script("return document.body.dataset.ready") == "true")
        card = upload_in_page(page, painting, 1)
        first = card.find_element(By.CSS_SELECTOR, ".painter")
        assert first.get_attribute("data-painter") == expected["top1"]
        assert float(first.get_attribute("data-probability")) == float(expected["prob1"])  # the same function
        assert first.find_element(By.CSS_SELECTOR, ".pct").text == f"{100 * float(expected['prob1']):.1f}%"
        captions = [c.text for c in card.find_elements(By.TAG_NAME, "figcaption")]
        assert captions[0] == "as the model saw it: 64×64 px" and captions[1].startswith("occlusion map (6×6")
        assert len(card.find_elements(By.CSS_SELECTOR, ".neighbours figure")) == 5
        link = page.find_element(By.ID, "csv").get_attribute("href")
        page_csv = pd.read_csv(io.StringIO(urllib.parse.unquote(link.split(",", 1)[1])), keep_default_na=False)
        assert page_csv.columns.tolist() == expected.index.tolist() and page_csv["path"][0] == painting.name
        pd.testing.assert_series_equal(page_csv.drop(columns="path").iloc[0], expected.drop("path"),
                                       check_names=False)
        page.save_screenshot(SCREENSHOT or str(tmp_path / "serve.png"))

        notes = tmp_path / "notes.txt"
        notes.write_text("not a painting")
        card = upload_in_page(page, notes, 1)
        assert card.find_element(By.CSS_SELECTOR, ".error").text == "notes.txt: not an image (unrecognised format)"

        # A model that scores open-set adds unknown / known_score / threshold to predict's table: the page says so.
        def open_set(*args, **kwargs):
            answer = inference.predict_files(*args, **kwargs)
            answer.table = answer.table.assign(unknown=True, known_score=0.2, threshold=0.5)
            return answer

        monkeypatch.setattr(web, "predict_files", open_set)
        card = upload_in_page(page, painting, 1)
        assert card.find_element(By.CSS_SELECTOR, ".verdict.unknown").text == \
            "none of the known painters (known-painter score 0.200, threshold 0.500)"
    finally:
        page.quit()
    assert not list(upload_dir.iterdir())  # every upload was deleted after its answer


def truncated_jpeg() -> bytes:
    data = (sample_dir() / "rembrandt" / "103.jpg").read_bytes()
    return data[: len(data) // 2]


def png_bytes(size, mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format="PNG")
    return buffer.getvalue()


def test_bad_uploads_get_a_reason_each_and_nothing_is_kept(server, unseen, upload_dir, tmp_path):
    url, _ = server
    answer = post(url, [("notes.txt", b"just text"), ("half.jpg", truncated_jpeg()),
                        ("dot.png", png_bytes((1, 1))), ("huge.png", png_bytes((8000, 7000), mode="1")),
                        (unseen[1].name, unseen[1].read_bytes())])
    assert answer.status_code == 200
    reasons = {card["name"]: card["error"] for card in answer.json()["images"]}
    assert reasons == {
        "notes.txt": "not an image (unrecognised format)", "half.jpg": "truncated",
        "dot.png": "1×1 pixels is too small to show a painting (at least 8 pixels a side; serve.min_side)",
        "huge.png": "8000×7000 = 56.0 megapixels is over the limit of 50 megapixels (serve.max_megapixels); "
                    "not decoded",
        unseen[1].name: ""}
    table = pd.read_csv(io.StringIO(answer.json()["csv"]), keep_default_na=False)
    assert table["path"].tolist() == list(reasons) and table["error"].tolist() == list(reasons.values())
    assert not list(upload_dir.iterdir())

    assert post(url, []).json() == {"error": "no image in the upload: choose one or more image files "
                                             "(form field 'images')"}
    chunked = requests.post(url + "api/predict", data=iter([b"x"]), timeout=10)  # no Content-Length
    assert chunked.status_code == 411 and "Content-Length" in chunked.json()["error"]
    connection = http.client.HTTPConnection(*urllib.parse.urlsplit(url).netloc.split(":"), timeout=10)
    connection.putrequest("POST", "/api/predict")
    connection.putheader("Content-Type", "multipart/form-data; boundary=x")
    connection.putheader("Content-Length", str(10 ** 10))  # 10 GB announced, never sent: refused unread
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413 and b"refused unread" in response.read()


def test_an_image_over_the_size_limit_is_refused_before_decoding(server, unseen, monkeypatch):
    _, service = server
    small = dataclasses.replace(service.cfg, max_upload_mb=0.01)
    monkeypatch.setattr(service, "cfg", small)
    opened = []
    monkeypatch.setattr(Image, "open", lambda *a, **k: opened.append(a) or pytest.fail("decoded"))
    reason = service.admit(unseen[0])
    assert reason.endswith("MB is over the limit of 0.01 MB per image (serve.max_upload_mb); not decoded")
    assert not opened


def test_twenty_concurrent_requests_each_get_their_own_answer(server, sample_run, unseen):
    url, service = server
    paintings = unseen[:20]
    expected = inference.predict_files(service.final, paintings, 3, progress=False).table
    explained = set(paintings[::5])  # heat maps and neighbours for 4 of them; probabilities only for the rest (fast)
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda p: post(url, [(p.name, p.read_bytes())], explain=int(p in explained)),
                                paintings))
    assert [a.status_code for a in answers] == [200] * 20
    got = pd.concat([pd.read_csv(io.StringIO(a.json()["csv"]), keep_default_na=False) for a in answers])
    assert got["path"].tolist() == [p.name for p in paintings]
    columns = [c for c in expected.columns if c.startswith("prob")]
    assert got["top1"].tolist() == expected["top1"].tolist()
    np.testing.assert_allclose(got[columns].to_numpy(float), expected[columns].to_numpy(float), rtol=1e-12)
    assert [("heatmap" in a.json()["images"][0]) for a in answers] == [p in explained for p in paintings]


def test_a_keras_model_gets_grad_cam_and_nearest_paintings_in_its_head_space(tmp_path):
    from deeppainter import config
    from deeppainter.models.autoencoder import build_autoencoder
    from deeppainter.models.classifier import build_classifier

    cfg = config.build_config("smoke")
    _, encoder = build_autoencoder(cfg.autoencoder, 32)
    model = build_classifier(encoder, cfg.classifier, 3)
    final = inference.FinalModel(tmp_path, "cae", ["a", "b", "c"], 32, "pad", (0, 0, 0), model)
    images = np.random.default_rng(0).integers(0, 255, (6, 32, 32, 3), dtype=np.uint8)
    features = final.feature_vectors(images)
    assert features.shape == (6, cfg.classifier.head[-1])  # the input of the softmax layer, inside the head
    inference.write_reference_set(tmp_path, images, list("aabbcc"), [f"{i}.jpg" for i in range(6)], 16,
                                  features=features)
    reference = inference.load_reference_set(tmp_path)
    assert Image.open(io.BytesIO(reference.thumbnail(2))).size == (16, 16)
    service = web.PainterService(final, dataclasses.replace(cfg.serve, neighbours=3), reference)
    Image.fromarray(images[4]).save(tmp_path / "x.png")
    (card,) = service.answer([("x.png", tmp_path / "x.png")])["images"]
    assert card["heatmap_method"].startswith("Grad-CAM")
    assert card["neighbours"][0]["path"] == "4.jpg" and card["neighbours"][0]["distance"] == 0.0
    assert [n["painter"] for n in card["neighbours"]][:1] == ["c"] and len(card["neighbours"]) == 3
    assert base64.b64decode(card["heatmap"].split(",", 1)[1])[:4] == b"\x89PNG"


def test_serve_refuses_a_run_without_a_final_model(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        serve_cli.main(["--run", str(tmp_path)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith(f"error: --run {tmp_path}: no final_model.json there")


def test_serve_listens_locally_unless_told_and_then_warns_once(sample_run, monkeypatch, capsys):
    listened = []
    monkeypatch.setattr(web, "serve", lambda app, sock: listened.append(sock.getsockname()[0]) or sock.close())
    serve_cli.main(["--run", str(sample_run), "--port", "0"])
    assert listened == ["127.0.0.1"] and "warning" not in capsys.readouterr().err
    serve_cli.main(["--run", str(sample_run), "--port", "0", "--host", "0.0.0.0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert listened[-1] == "0.0.0.0" and err == ["warning: --host 0.0.0.0: anyone who can reach this machine can "
                                                 "use the page (no login)"]


def test_the_occlusion_grid_shrinks_to_fit_a_slow_model():
    assert web.occlusion_grid_for(0.005, 1.0, 6) == 6  # 36 copies of a fast model: 0.18 s
    assert web.occlusion_grid_for(0.1, 1.0, 6) == 3  # 9 copies of a 0.1-s model fit in 1 s, 16 would not
    assert web.occlusion_grid_for(2.0, 1.0, 6) == 2  # never coarser than 2×2
