"""Classical baselines of [P16] Table 1 (REFERENCE.md §1): registered featurizer + head models.

| name               | featurizer (models.featurizers)            | head (classical.heads) |
|--------------------|--------------------------------------------|------------------------|
| features-knn       | image-features (classical.features)        | knn                    |
| features-svm       | image-features                             | svm                    |
| rbm-knn            | pixels32                                   | rbm-knn                |
| rbm-svm            | pixels32                                   | rbm-svm                |
| features-rbm-svm   | image-features ‖ pixels32                  | pixels-rbm-svm         |
| pixels-svm         | pixels32                                   | pca-svm                |

The paper's genetic-algorithm classifier is out of scope. Hyper-parameters (k for k-NN, C for the SVM)
are picked by a 3-fold grid search inside whatever data ``fit`` receives (classical.heads.inner_search),
so under 10-fold CV the choice never sees the test fold. :func:`build_baseline` gives one as a
scikit-learn pipeline from uint8 RGB images (N, H, W, 3), the form a saved final model takes.

Pixel-based models (RBM, raw pixels) see the zero-padding bars, as the CAE does;
the image-processing features ignore them (see deeppainter.classical.features).

Runtime, one fold of 10-fold CV on 1,425 images of 64×64 (fit on 1,282, predict 143;
one core of a shared 2-core machine): features-knn ≈ 2 s, features-svm ≈ 6 s,
pixels-svm ≈ 3 s, rbm-knn ≈ 55 s, rbm-svm / features-rbm-svm ≈ 1–3 min (the RBM's
20 epochs over 3,072 inputs dominate). Feature extraction: ≈ 2 ms per 64×64 image,
≈ 10 ms per 128×128 image.
"""
from __future__ import annotations

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from deeppainter.config import ClassifierConfig
from deeppainter.errors import UserError
from deeppainter.models import registry
from deeppainter.models.featurizers import get_featurizer

PIXEL_SIZE = 32  # ASSUMPTION: [P16] does not give the RBM input size; 32×32×3 = 3,072 inputs
BASELINES = tuple(registry.list_models("Table 1 baselines"))


def downsample_pixels(images: np.ndarray, size: int = PIXEL_SIZE) -> np.ndarray:
    """uint8 images (N, H, W, 3) → float32 (N, size·size·3) in [0, 1], area-averaged (the featurizer pixels32)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise UserError(f"expected images shaped (N, H, W, 3), got {images.shape}")
    n, h, w = images.shape[:3]
    x = images.astype(np.float32) / 255.0
    # area resampling: average the source rows / columns that fall into each target cell
    rows = np.minimum(np.arange(size + 1) * h // size, h)
    cols = np.minimum(np.arange(size + 1) * w // size, w)
    if h >= size and w >= size:
        x = np.add.reduceat(x, rows[:-1], axis=1) / np.diff(rows)[None, :, None, None]
        x = np.add.reduceat(x, cols[:-1], axis=2) / np.diff(cols)[None, None, :, None]
    else:  # smaller than the target: nearest neighbour
        x = x[:, np.arange(size) * h // size][:, :, np.arange(size) * w // size]
    return x.reshape(n, -1).astype(np.float32)


def build_baseline(name: str, seed: int = 0, power: str = "none", feature_scales: tuple[int, ...] = (1,)) -> Pipeline:
    """An unfitted pipeline from uint8 images for the named baseline: its featurizer, then its head.

    ``feature_scales`` (config ``classifier.feature_scales``): the handcrafted features are taken at
    full resolution and at 1/s of it for every other s, side by side.
    """
    from deeppainter.classical import featurize, heads

    if name not in BASELINES:
        raise UserError(f"unknown baseline {name!r}: choose one of {', '.join(BASELINES)}")
    spec = registry.get_model(name)
    settings = featurize.FeatureSettings(None, None, tuple(feature_scales))
    ccfg = ClassifierConfig(svm_power=power, feature_scales=tuple(feature_scales))
    parts = get_featurizer(spec.featurizer).parts or (spec.featurizer,)
    blocks = featurize.columns({part: featurize.output_width(part, settings) for part in parts})
    head = heads.build_head(spec.head, ccfg, seed, blocks)
    extract = FunctionTransformer(featurize.pixel_features,
                                  kw_args={"featurizer": spec.featurizer, "feature_scales": tuple(feature_scales)})
    return Pipeline([("features", extract), *head.steps])
