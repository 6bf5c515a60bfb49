"""A featurizer's features for a run's images (deeppainter.models.featurizers says what each one is).

:func:`features` computes every image's vector once, through the one extraction loop and the feature
cache of deeppainter.models.feature_cache: a pretrained network's features in the user-wide cache
(shared by every run and model on the same pixels), the run-dependent ones (handcrafted features at
the run's scales, the run's encoder's descriptors) in the run's cache folder, raw pixels not at all.

``classifier.probe_view`` is a robustness ablation for the pretrained networks: they see the
standardised squares as they are ("colour"), as grey-scale luma ("grey"), as the mean feature of the
colour and the grey square ("colour+grey"), with each image's colour statistics normalised
("colournorm": every channel brought to the mean and spread of the image's luma, so a colour cast or
a palette's overall saturation cannot decide), as the mean feature of the square and four fixed
recolourings ("jitter": hue turned by ±30°, saturation halved and raised by half), or as six views whose
features are averaged
("multicrop": the square, its mirror and its four corner crops), the same at training and test time.
Each view's image set is cached on its own pixels.

``classifier.probe_augment`` trains on views instead of averaging them: :func:`augment_sets` are extra
copies of the training paintings (grey, the four recolourings) that the head learns from as more rows
with the same labels, while test paintings are seen as ``probe_view`` only.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deeppainter.models.feature_cache import extract_in_batches, shared_cache_file
from deeppainter.models.featurizers import Featurizer, get_featurizer
from deeppainter.runs import cached_npy

CORNER_FRACTION = 7 / 8  # ASSUMPTION: multicrop corner crops keep 7/8 of the side (a small shift and zoom)
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601, as PIL's convert("L")
# ASSUMPTION: the "jitter" view's fixed recolourings, (hue turn in degrees, saturation factor): two hue turns and
# two saturations, mild enough that a painting stays itself
JITTERS = ((-30.0, 1.0), (30.0, 1.0), (0.0, 0.5), (0.0, 1.5))
# RGB → YIQ (NTSC): Y is the luma above; a hue turn rotates the I/Q plane, a saturation factor scales it
_YIQ = np.array([LUMA, [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


@dataclass(frozen=True)
class FeatureSettings:
    """What a featurizer reads besides the pixels."""

    cache_root: Path | None  # the user-wide cache of pretrained features (None: no caching)
    run_cache: Path | None = None  # the run's cache folder for run-dependent features (None: no caching)
    feature_scales: tuple[int, ...] = (1,)  # classifier.feature_scales (handcrafted features)
    view: str = "colour"  # classifier.probe_view (pretrained networks)
    encoder_path: Path | None = None  # the run's frozen encoder (CAE descriptors)

    @classmethod
    def from_context(cls, ctx) -> FeatureSettings:
        return cls(shared_cache_root(ctx.cfg), Path(ctx.cache_dir), tuple(ctx.cfg.classifier.feature_scales),
                   ctx.cfg.classifier.probe_view, ctx.encoder_path)


def shared_cache_root(cfg) -> Path:
    """Where the shared feature cache lives: data.cache_dir, or the user's default cache."""
    from deeppainter.data.datasets import default_cache_dir

    return Path(cfg.data.cache_dir) if cfg.data.cache_dir else default_cache_dir()


def view_sets(images: np.ndarray, view: str) -> list[np.ndarray]:
    """The uint8 image sets whose features are averaged for ``view`` (classifier.probe_view, or "tiles")."""
    from deeppainter.models.pretrained import resize_squares

    if view == "colour":
        return [images]
    if view == "grey":
        return [_grey(images)]
    if view == "colour+grey":
        return [images, _grey(images)]
    if view == "colournorm":
        return [_colour_normalised(images)]
    if view == "jitter":
        return [images, *(recolour(images, hue, saturation) for hue, saturation in JITTERS)]
    size = images.shape[1]
    if view == "tiles":  # the four quadrants, each left at half the side (the network resizes them)
        half = size // 2
        return [np.ascontiguousarray(images[:, y:y + half, x:x + half]) for y in (0, half) for x in (0, half)]
    crop = round(size * CORNER_FRACTION)
    corners = [images[:, y:y + crop, x:x + crop] for y in (0, size - crop) for x in (0, size - crop)]
    return [images, np.ascontiguousarray(images[:, :, ::-1]),
            *[resize_squares(np.ascontiguousarray(corner), size) for corner in corners]]


def augment_sets(images: np.ndarray, augment: str) -> list[np.ndarray]:
    """The extra training copies of ``images`` for ``classifier.probe_augment`` (none for "none")."""
    copies = augment.split("+")
    sets = view_sets(images, "grey") if "grey" in copies else []
    if "jitter" in copies:
        sets += view_sets(images, "jitter")[1:]  # the recolourings, not the square itself
    return sets


def _grey(images: np.ndarray) -> np.ndarray:
    luma = np.clip(np.rint(images.astype(np.float32) @ LUMA.astype(np.float32)), 0, 255).astype(np.uint8)
    return np.repeat(luma[..., None], 3, axis=-1)


def _colour_normalised(images: np.ndarray) -> np.ndarray:
    """Each image's channels shifted and scaled to the mean and standard deviation of its own luma.

    ASSUMPTION: per-image, per-channel standardisation (a grey-world balance that also equalises the channels'
    contrast); the statistics are taken over every pixel, so a padded image's bars count as dark pixels.
    """
    pixels = images.astype(np.float32)
    luma = pixels @ LUMA.astype(np.float32)  # (N, S, S)
    mean = pixels.mean(axis=(1, 2), keepdims=True)
    spread = pixels.std(axis=(1, 2), keepdims=True)
    target_mean = luma.mean(axis=(1, 2))[:, None, None, None]
    target_spread = luma.std(axis=(1, 2))[:, None, None, None]
    normalised = (pixels - mean) / np.maximum(spread, 1.0) * target_spread + target_mean
    return np.clip(np.rint(normalised), 0, 255).astype(np.uint8)


def recolour(images: np.ndarray, hue_degrees: float, saturation: float) -> np.ndarray:
    """Each image with its hue turned by ``hue_degrees`` and its saturation scaled, luma unchanged (YIQ)."""
    angle = np.deg2rad(hue_degrees)
    turn = saturation * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    chroma = np.eye(3)
    chroma[1:, 1:] = turn
    transform = np.linalg.inv(_YIQ) @ chroma @ _YIQ  # RGB → YIQ → turn and scale I/Q → RGB
    recoloured = images.astype(np.float32) @ transform.T.astype(np.float32)
    return np.clip(np.rint(recoloured), 0, 255).astype(np.uint8)


def output_width(name: str, settings: FeatureSettings) -> int:
    """The width of ``name``'s features before computing them (ValueError for one that depends on the run's encoder)."""
    featurizer = get_featurizer(name)
    if featurizer.output_dim is not None:
        return featurizer.output_dim
    if featurizer.parts:
        return sum(output_width(part, settings) for part in featurizer.parts)
    if featurizer.name != "image-features":
        raise ValueError(f"the width of {name}'s features is known only once computed")
    from deeppainter.classical.features import feature_count

    return feature_count() * len(settings.feature_scales)  # one block of handcrafted features per scale


def columns(widths: dict[str, int]) -> dict[str, np.ndarray]:
    """Each part → its column indices, the parts side by side in order."""
    edges = np.cumsum([0, *widths.values()])
    return {part: np.arange(edges[i], edges[i + 1]) for i, part in enumerate(widths)}


def part_features(name: str, images: np.ndarray, settings: FeatureSettings) -> dict[str, np.ndarray]:
    """``name``'s features by part (its parts for a concatenation, else itself): what heads that treat a part
    apart read, as ``columns({part: width})``."""
    featurizer = get_featurizer(name)
    return {part: features(part, images, settings) for part in (featurizer.parts or (name,))}


def features(name: str, images: np.ndarray, settings: FeatureSettings) -> np.ndarray:
    """``(N, D)`` float32 features of uint8 ``images`` (N, S, S, 3) by the featurizer ``name``."""
    featurizer = get_featurizer(name)
    if featurizer.parts:
        return np.concatenate(list(part_features(name, images, settings).values()), axis=1).astype(np.float32)
    if featurizer.pretrained or featurizer.base:
        # the mean over the view's image sets (one set for "colour")
        return np.mean([_network_features(featurizer, image_set, settings)
                        for image_set in view_sets(np.asarray(images), settings.view)], axis=0).astype(np.float32)
    if featurizer.cache == "run" and settings.run_cache is not None:
        return cached_npy(Path(settings.run_cache) / featurizer.cache_file,
                          lambda: _compute(featurizer, images, settings))
    return _compute(featurizer, images, settings)


def _network_features(featurizer: Featurizer, images: np.ndarray, settings: FeatureSettings) -> np.ndarray:
    """A pretrained network's features (cached on these pixels), or a view's mean over its own image sets."""
    if featurizer.base:
        base = get_featurizer(featurizer.base)
        return np.mean([_network_features(base, part, settings) for part in view_sets(images, featurizer.view)], axis=0)
    from deeppainter.models.pretrained import extract_features

    def compute():
        return extract_features(featurizer.name, np.asarray(images))

    if settings.cache_root is None:
        return compute()
    return cached_npy(shared_cache_file(settings.cache_root, featurizer, images), compute)


def _compute(featurizer: Featurizer, images: np.ndarray, settings: FeatureSettings) -> np.ndarray:
    """A handcrafted featurizer's function over every image, with the options it names (scales, encoder)."""
    from deeppainter.models.pretrained import runner

    function = runner(featurizer)
    accepted = inspect.signature(function).parameters
    options = {}
    if "scales" in accepted:
        options["scales"] = settings.feature_scales
    if "encoder" in accepted:
        import keras

        options["encoder"] = keras.models.load_model(settings.encoder_path, compile=False)
    return extract_in_batches(lambda batch: function(np.asarray(batch), **options), images, featurizer.batch_size,
                              desc=featurizer.name)


def pixel_features(images: np.ndarray, featurizer: str, feature_scales: tuple[int, ...] = (1,),
                   view: str = "colour") -> np.ndarray:
    """uint8 images → ``featurizer``'s features, computed afresh: the first step of a saved final model."""
    return features(featurizer, images, FeatureSettings(None, None, tuple(feature_scales), view))
