"""Shared fixtures: an isolated image cache, synthetic painters, and the real data when present."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
REAL_DATA = REPO_ROOT.parent / "shared" / "data" / "wikiart14"


@pytest.fixture(autouse=True, scope="session")
def isolated_cache(tmp_path_factory):
    """Keep the uint8 image cache of the tests out of the user's ~/.cache."""
    os.environ["DEEPPAINTER_CACHE"] = str(tmp_path_factory.mktemp("image-cache"))


@pytest.fixture(scope="session")
def synthetic_painters(tmp_path_factory) -> Path:
    from deeppainter.data.synthetic import make_synthetic_painters

    return make_synthetic_painters(tmp_path_factory.mktemp("painters"), painters=3, per_painter=20, seed=1)


@pytest.fixture
def real_data() -> Path:
    if not REAL_DATA.is_dir():
        pytest.skip(f"real data not present at {REAL_DATA}")
    return REAL_DATA


@pytest.fixture(scope="session")
def smoke_encoder(synthetic_painters, tmp_path_factory):
    from deeppainter.cli import pretrain_ae

    out = tmp_path_factory.mktemp("pretrain")
    pretrain_ae.main(["--preset", "smoke", "--data", str(synthetic_painters), "--out", str(out)])
    (run_dir,) = out.glob("*_pretrain_ae_*")
    return run_dir
