import numpy as np
import pytest

from deeppainter.config import DataConfig
from deeppainter.data.datasets import (
    list_labelled,
    list_unlabelled,
    load_images,
    resolve_classes,
    sample_dir,
)
from deeppainter.errors import UserError


def test_embedded_sample_is_the_papers_design():
    table = list_labelled(sample_dir())
    assert table["label"].value_counts().to_dict() == {
        "pierre-auguste-renoir": 40, "rembrandt": 40, "vincent-van-gogh": 40}
    assert (sample_dir() / "PROVENANCE.md").is_file()


def test_load_images_shape_and_cache_reuse(synthetic_painters, tmp_path):
    cfg = DataConfig(image_size=24, cache_dir=str(tmp_path))
    paths = list(list_labelled(synthetic_painters)["path"])
    images, ok = load_images(paths, cfg, progress=False)
    assert images.shape == (60, 24, 24, 3) and images.dtype == np.uint8 and ok.all()
    assert len(list(tmp_path.glob("*.npy"))) == 1
    again, _ = load_images(paths, cfg, progress=False)
    assert isinstance(again, np.memmap)  # served from the cache
    np.testing.assert_array_equal(again, images)
    load_images(paths, DataConfig(image_size=24, mode="crop", cache_dir=str(tmp_path)), progress=False)
    assert len(list(tmp_path.glob("*.npy"))) == 2  # another mode is another cache entry


def test_unreadable_images_are_listed_not_lost(synthetic_painters, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    paths = list(list_labelled(synthetic_painters)["path"])[:5] + [str(bad)]
    images, ok = load_images(paths, DataConfig(image_size=16, cache_dir=str(tmp_path)), progress=False,
                             skipped_csv=tmp_path / "skipped.csv")
    assert len(images) == 5 and not ok[-1]
    assert "broken.jpg" in (tmp_path / "skipped.csv").read_text()


def test_class_selection_and_errors(synthetic_painters):
    assert set(list_labelled(synthetic_painters, ("painter0", "painter2"))["label"]) == {"painter0", "painter2"}
    with pytest.raises(UserError, match="not found"):
        list_labelled(synthetic_painters, ("monet",))
    with pytest.raises(UserError, match="fewer than 30"):
        list_labelled(synthetic_painters, min_per_class=30)
    with pytest.raises(UserError, match="no such folder"):
        list_labelled(synthetic_painters / "missing")
    assert resolve_classes(synthetic_painters, "largest:2") == ("painter0", "painter1")


def test_unlabelled_pool_excludes_task_classes(synthetic_painters):
    pool = list_unlabelled(synthetic_painters, exclude=("painter1",))
    assert len(pool) == 40 and not pool["path"].str.contains("painter1").any()


def test_real_data_ten_largest(real_data):
    classes = resolve_classes(real_data, "largest:10")
    assert len(classes) == 10 and "jacques-louis-david" not in classes
