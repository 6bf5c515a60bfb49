"""Typed configuration and the named presets.

Sources: [P16] David & Netanyahu, ICANN 2016 (REFERENCE.md §1);
[R21] Angus & Thorsteinsson 2021 replication (REFERENCE.md §2).
Every value the papers leave open is marked ``# ASSUMPTION:``.
"""
from __future__ import annotations

import dataclasses
import functools
import sys
import typing
from dataclasses import dataclass, field

from deeppainter.errors import UserError


@dataclass
class DataConfig:
    image_size: int = 256  # [P16] §1 and [R21] §2: 256×256 inputs
    mode: str = "pad"  # [R21] §2: zero-pad to square, then resize (pad | crop | resize)
    pad_color: tuple[int, ...] = (0, 0, 0)  # [R21] §2: zeros
    # ASSUMPTION: off. True cuts dark bars an earlier padding left (wikiart14 is pre-padded) before
    # `mode` applies, so crop / resize see the painting itself (the standardisation ablation).
    trim_bars: bool = False
    classes: tuple[str, ...] = ()  # empty = every class folder
    min_per_class: int = 10  # one image per fold at least for 10-fold CV
    max_per_class: int = 0  # 0 = no cap; ASSUMPTION: cap used only for quick studies
    cache_dir: str = ""  # "" = ~/.cache/deeppainter (uint8 memory-map cache)


@dataclass
class AutoencoderConfig:
    filters: tuple[int, ...] = (200, 200)  # [R21] Table I: encoder conv 200, conv 200
    decoder_filters: tuple[int, ...] = (200, 200)  # [R21] Table I: Conv2DTranspose 200, 200
    kernel_size: int = 5  # [P16] §1 / [R21] Table I: 5×5
    activation: str = "relu"  # ASSUMPTION: neither paper names the activation
    unpooling: str = "upsample"  # [R21]: UpSampling2D; [P16]: "maxunpool" (pool switches)
    reconstruction_activation: str = "sigmoid"  # ASSUMPTION: inputs are scaled to [0, 1]
    mixed_precision: bool = False  # ASSUMPTION: off; float32 everywhere
    # The compute dtype under mixed_precision (weights stay float32). ASSUMPTION: float16 (loss-scaled), the
    # older GPUs' choice; bfloat16 needs no loss scaling and suits H100s and CPUs with AVX512-BF16.
    mixed_dtype: str = "float16"


@dataclass
class PretrainConfig:
    epochs: int = 20  # ASSUMPTION: [P16] does not say; [R21] saw >90% val-loss drop in 4 epochs
    batch_size: int = 32  # ASSUMPTION: not stated by either paper
    optimizer: str = "adam"  # ASSUMPTION: [P16] names only the learning rate
    learning_rate: float = 1e-3  # ASSUMPTION for adam; [P16] uses 0.01 (see paper2016 preset)
    lr_decay: float = 1.0  # per-epoch multiplier; [P16] §1: 0.98
    loss: str = "mse"  # [R21] §2: MSE (KL divergence gave blurry, green reconstructions)
    denoise: str = "per_batch"  # none | per_batch | per_epoch; [R21] preferred per-batch masks
    denoise_rate: float = 0.2  # [P16] §1: 20% of input pixels removed
    val_fraction: float = 0.1  # held-out share for validation loss
    patience: int = 5  # ASSUMPTION: early-stopping patience on val loss
    max_images: int = 0  # 0 = whole pool; caps the unlabelled pool (pool-size ablation)
    jit_compile: str = "auto"  # ASSUMPTION: Keras default; auto | true | false (XLA where the backend has it)


@dataclass
class ClassifierConfig:
    head: tuple[int, ...] = (300, 300)  # [R21] Table II: Dense 300 → Dense 300
    pooling: str = "flatten"  # [R21] Table II: Flatten; also "avg" | "meanstd" (study option)
    spatial_dropout: float = 0.2  # ASSUMPTION: [R21] uses SpatialDropout2D, rate not given
    dropout: float = 0.5  # ASSUMPTION: [R21] uses Dropout, rate not given
    fine_tune: bool = False  # [R21] §2: fine-tuning collapsed the encoder; frozen by default
    augment: bool = False  # flips and small rotations; disables the feature cache
    class_weights: bool = False
    # Study model `stack` (deeppainter.classical.stacking). ASSUMPTION: one handcrafted and one learned member,
    # combined by a logistic regression fitted on 3 inner folds of the training folds.
    stack_members: tuple[str, ...] = ("features-svm", "cae-svm")
    stack_folds: int = 3
    # ASSUMPTION: "none" = the plain scaled RBF SVM of the baselines; "sqrt" / "select" add power
    # normalisation to every SVM on features (deeppainter.classical.baselines).
    svm_power: str = "none"
    # ASSUMPTION: one scale. (1, 2) adds the handcrafted features of a 1/2-resolution copy (baselines).
    feature_scales: tuple[int, ...] = (1,)
    # ASSUMPTION: a small log grid for the linear probes on pretrained features (deeppainter.classical.heads logreg),
    # chosen by the inner CV of the training folds.
    probe_c: tuple[float, ...] = (0.01, 0.1, 1.0)
    # How the probes' networks see a painting (robustness ablations, issue #14): "colour" as standardised;
    # "grey" luma copied to RGB (colour cannot carry the decision); "colour+grey" the mean feature of both
    # (issue #24); "colournorm" each image's channels standardised to its luma's mean and spread (issue #24);
    # "jitter" the mean feature of the square and four fixed recolourings (hue ±30°, saturation ×0.5 / ×1.5);
    # "multicrop" the mean feature of the square, its mirror and its four corner crops (7/8 of the side),
    # at training and test time.
    probe_view: str = "colour"
    # Training views as extra rows (issue #24's "trained together", an augmentation): "grey" adds each training
    # painting's grey square, "jitter" its four fixed recolourings (the jitter view's), "grey+jitter" both, each
    # with the painting's label; test paintings are seen as probe_view only. Pretrained probes only.
    probe_augment: str = "none"
    epochs: int = 50  # ASSUMPTION: upper bound, early stopping on an inner validation split
    batch_size: int = 32  # ASSUMPTION
    optimizer: str = "adam"  # ASSUMPTION: neither paper says
    learning_rate: float = 1e-3  # ASSUMPTION
    val_fraction: float = 0.1  # carved from the training folds only, never the test fold
    patience: int = 8  # ASSUMPTION: early-stopping patience on inner-validation loss
    jit_compile: str = "auto"  # ASSUMPTION: Keras default; auto | true | false


@dataclass
class BackboneConfig:
    """Transfer backbones (deeppainter.models.backbones; REFERENCE.md §3 habits)."""
    weights: str = ""  # local keras.applications "_notop" weights file (cv10 --weights); "" = random init
    fine_tune: bool = True  # False = frozen backbone, head only
    head_epochs: int = 10  # phase 1 (frozen backbone); ASSUMPTION: upper bound, early stopping
    epochs: int = 30  # phase 2 (fine-tune); ASSUMPTION: upper bound, early stopping
    lr_stem: float = 1e-6  # REFERENCE §3: 1e-6 / 1e-5 / 1e-3 from stem to head
    lr_body: float = 1e-5
    lr_head: float = 1e-3
    dropout: float = 0.3  # ASSUMPTION
    spatial_dropout: float = 0.0  # > 0: SpatialDropout2D on the last conv maps ([R21]'s head design)
    # effnet-lite0-finetune: how many of EfficientNet-Lite0's 16 MBConv blocks (from the top) are
    # fine-tuned on cached activations of the rest; 0 = frozen, head only. ASSUMPTION: the last stage
    # (5 blocks at 1/32 resolution); effnet-lite0-finetune's recipe trains 1 on a CPU.
    trainable_blocks: int = 5
    augment: bool = True  # flips, ±10° rotation, colour jitter (REFERENCE §3)
    class_weights: bool = True  # REFERENCE §3: "Keras ResNet-50, class weights, early stop"
    patience: int = 5  # ASSUMPTION


@dataclass
class CVConfig:
    folds: int = 10  # [P16] and [R21]: 10-fold cross validation
    shuffle: bool = True
    bootstrap: int = 1000  # resamples for the 95% CI of accuracy
    # Versions of one work (byte-identical files, or trimmed-bar grey + gradient thumbnails more similar
    # than duplicate_threshold, data/duplicates.py) are kept in one fold (StratifiedGroupKFold). Runs made
    # before this field existed used plain StratifiedKFold; with no duplicates found the folds are the
    # same as theirs; runs made before the trimmed thumbnails used padded grey ones above 0.99.
    group_duplicates: bool = True  # ASSUMPTION: neither paper says how (or whether) duplicates were split
    # ASSUMPTION: the best F1 on 211 labelled same-painter pairs of wikiart14 above the highest score
    # between two painters (experiments/duplicates/: choose_threshold.py, threshold.json); not from [P16]/[R21]
    duplicate_threshold: float = 0.8169


@dataclass
class ServeConfig:
    """The local web page (python -m deeppainter.serve) and the reference set cv10 --save-final-model writes for it."""
    top_k: int = 3  # painters listed per image, as predict's default --top-k
    max_upload_mb: float = 25.0  # ASSUMPTION: per image; a larger file is refused before it is decoded
    max_megapixels: float = 50.0  # ASSUMPTION: read from the file's header; larger images are refused undecoded
    min_side: int = 8  # ASSUMPTION: a smaller image (a 1-pixel file) holds no painting to judge
    max_files: int = 16  # ASSUMPTION: images per upload; the request is refused before reading beyond their size
    occlusion_grid: int = 6  # ASSUMPTION: at most 6×6 cells, 36 covered copies in one batch
    # ASSUMPTION: the occlusion map's share of a 2-s answer on 2 cores; serve times the model once at start and
    # shrinks the grid (down to 2×2) so that grid² copies fit in it.
    heat_seconds: float = 1.0
    neighbours: int = 5  # nearest training paintings shown beside each answer
    thumbnail_size: int = 64  # ASSUMPTION: reference-set thumbnails, pixels a side
    heat_alpha: float = 0.45  # opacity of the heat map over the image, as explain --alpha


# The open-set scores of REFERENCE.md §6 computed from a model's outputs or features (outlier exposure, the
# "background" score, is trust.background).
OPEN_SET_SCORERS = ("msp", "energy", "mahalanobis", "knn")


@dataclass
class TrustConfig:
    """Open-set attribution and calibration (deeppainter.eval.trust; REFERENCE.md §6). Active when cv10 has
    unknown painters (--unknown) or temperature scaling is asked for."""
    # ASSUMPTION: every scorer of REFERENCE.md §6 is evaluated; "energy" needs logits, the feature scorers
    # a feature space — a model without them skips those rows.
    scorers: tuple[str, ...] = OPEN_SET_SCORERS
    keep: float = 0.95  # share of the training folds' known paintings above the threshold (95% TPR)
    # ASSUMPTION: 3 inner folds of the training folds give the out-of-fold outputs that set the threshold
    # and the temperature (each model is fitted 1 + inner_folds times per fold).
    inner_folds: int = 3
    # ASSUMPTION: the unknown painters are dealt into 2 groups; a fold tests one group and may train
    # against the other as a background class.
    unknown_groups: int = 2
    background: bool = False  # outlier exposure: the other group's paintings as one extra class
    knn_k: int = 10  # ASSUMPTION: Sun et al. 2022 use k in the tens for small training sets
    temperature: bool = False  # fit a temperature on the inner folds even without unknown painters
    # The score the final model (predict / evaluate) says "none of the known painters" with.
    final_scorer: str = "msp"


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    cv: CVConfig = field(default_factory=CVConfig)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    trust: TrustConfig = field(default_factory=TrustConfig)


def _replication2021() -> Config:
    return Config()  # the defaults above are [R21]'s Tables I and II


def _paper2016() -> Config:
    cfg = Config()
    cfg.autoencoder.filters = (100, 200)  # [P16] §1: conv 100 → pool → conv 200 → pool
    cfg.autoencoder.decoder_filters = (200, 100)  # [P16] §1: deconv 200 → unpool → deconv 100
    cfg.autoencoder.unpooling = "maxunpool"  # [P16] §1: unpooling with pool switches
    cfg.pretrain.optimizer = "sgd"  # ASSUMPTION: a plain learning rate + decay suggests SGD
    cfg.pretrain.learning_rate = 0.01  # [P16] §1
    cfg.pretrain.lr_decay = 0.98  # [P16] §1: ×0.98 after every epoch
    cfg.pretrain.denoise = "per_epoch"  # [P16] §1: "in each epoch 20% of the pixels are removed"
    cfg.classifier.head = (400, 200)  # [P16] §1: FC 400 → FC 200 → softmax
    return cfg


def _cpu() -> Config:
    cfg = Config()
    # ASSUMPTION: a laptop-sized twin of [R21]: 64 px, 32/64 filters, ~2 min per pre-training epoch
    # on the ~3,800 non-task wikiart14 paintings with 2 cores.
    cfg.data.image_size = 64
    cfg.autoencoder.filters = (32, 64)
    cfg.autoencoder.decoder_filters = (64, 32)
    cfg.pretrain.epochs = 5
    cfg.pretrain.batch_size = 32
    cfg.classifier.head = (128,)
    cfg.classifier.epochs = 60
    return cfg


def _smoke() -> Config:
    cfg = _cpu()
    # Seconds-long runs for tests and CI: everything tiny, same code path.
    cfg.data.image_size = 32
    cfg.data.min_per_class = 3
    cfg.autoencoder.filters = (4, 8)
    cfg.autoencoder.decoder_filters = (8, 4)
    cfg.pretrain.epochs = 2
    cfg.pretrain.batch_size = 16
    cfg.pretrain.patience = 2
    cfg.classifier.head = (16,)
    cfg.classifier.learning_rate = 1e-2  # tiny heads on few images need bigger steps to learn in 15 epochs
    cfg.classifier.epochs = 15
    cfg.classifier.batch_size = 16
    cfg.classifier.patience = 5
    cfg.cv.folds = 3
    cfg.cv.bootstrap = 200
    cfg.backbone.head_epochs = 2
    cfg.backbone.epochs = 1
    return cfg


PRESETS: dict[str, typing.Callable[[], Config]] = {
    "paper2016": _paper2016,
    "replication2021": _replication2021,
    "cpu": _cpu,
    "smoke": _smoke,
}


class ConfigError(UserError):
    """A preset name or override the user typed is wrong; the message says what to type."""


def get_preset(name: str) -> Config:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]()


def valid_keys(cfg: Config) -> list[str]:
    return [f"{section.name}.{f.name}" for section in dataclasses.fields(cfg)
            for f in dataclasses.fields(getattr(cfg, section.name))]


def _parse_value(key: str, text: str, annotation) -> object:
    origin = typing.get_origin(annotation)
    if origin is tuple:
        (item_type, _ellipsis) = typing.get_args(annotation)
        parts = [p.strip() for p in text.split(",") if p.strip()]
        return tuple(_parse_value(key, p, item_type) for p in parts)
    if annotation is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"--set {key}={text}: expected true or false")
    try:
        return annotation(text)
    except ValueError:
        raise ConfigError(f"--set {key}={text}: expected {annotation.__name__}") from None


# Sections renamed since a release: old name → new. ``--set old.key`` and old config.json files still work for one
# release (issue #23: "model" was the autoencoder while ``--model`` is a registry name).
RENAMED_SECTIONS = {"model": "autoencoder"}


def apply_override(cfg: Config, assignment: str) -> None:
    """Apply one ``section.key=value`` override in place, type-checked against the dataclass."""
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected key=value, e.g. autoencoder.filters=32,64")
    key, text = assignment.split("=", 1)
    key = key.strip()
    typed_section, _, field_name = key.partition(".")
    section_name = RENAMED_SECTIONS.get(typed_section, typed_section)
    section = getattr(cfg, section_name, None) if section_name in _section_names(cfg) else None
    hints = typing.get_type_hints(type(section)) if section is not None else {}
    if field_name not in hints:
        raise ConfigError(f"--set: unknown key {key!r}; valid keys: {', '.join(valid_keys(cfg))}")
    if section_name != typed_section:
        key = f"{section_name}.{field_name}"
        _warn_renamed(f"{typed_section}.{field_name}", key)
    setattr(section, field_name, _parse_value(key, text, hints[field_name]))


@functools.cache  # once per key: cv10 builds the config again for each model of a list and each report row
def _warn_renamed(old_key: str, key: str) -> None:
    print(f"warning: --set {old_key} is deprecated and goes in the next release; use --set {key}", file=sys.stderr)


def _section_names(cfg: Config) -> set[str]:
    return {f.name for f in dataclasses.fields(cfg)}


CHOICES = {
    "data.mode": ("pad", "crop", "resize"),
    "autoencoder.unpooling": ("upsample", "maxunpool"),
    "autoencoder.mixed_dtype": ("float16", "bfloat16"),
    "pretrain.optimizer": ("adam", "sgd", "rmsprop"),
    "pretrain.loss": ("mse", "kld"),
    "pretrain.denoise": ("none", "per_batch", "per_epoch"),
    "classifier.pooling": ("flatten", "avg", "meanstd"),
    "classifier.optimizer": ("adam", "sgd", "rmsprop"),
    "classifier.svm_power": ("none", "sqrt", "select"),
    "classifier.probe_view": ("colour", "grey", "colour+grey", "colournorm", "jitter", "multicrop"),
    "classifier.probe_augment": ("none", "grey", "jitter", "grey+jitter"),
    "pretrain.jit_compile": ("auto", "true", "false"),
    "classifier.jit_compile": ("auto", "true", "false"),
    "trust.final_scorer": (*OPEN_SET_SCORERS, "background"),
}


# Valid range of every numeric field: (low, high, low_open, high_open); None = unbounded.
# Tuple fields (e.g. autoencoder.filters) are checked item by item.
_AT_LEAST_0, _AT_LEAST_1, _POSITIVE = (0, None, False, False), (1, None, False, False), (0, None, True, False)
_PROBABILITY = (0, 1, False, True)  # [0, 1)
_VAL_FRACTION = (0, 0.5, False, False)  # more than half leaves too few training images per class
RANGES: dict[str, tuple] = {
    "data.image_size": (8, None, False, False),
    "data.pad_color": (0, 255, False, False),
    "data.min_per_class": _AT_LEAST_1,
    "data.max_per_class": _AT_LEAST_0,  # 0 = no cap
    "autoencoder.filters": _AT_LEAST_1,
    "autoencoder.decoder_filters": _AT_LEAST_1,
    "autoencoder.kernel_size": _AT_LEAST_1,
    "pretrain.epochs": _AT_LEAST_0,  # 0 = no pre-training (random encoder control)
    "pretrain.batch_size": _AT_LEAST_1,
    "pretrain.learning_rate": _POSITIVE,
    "pretrain.lr_decay": (0, 1, True, False),
    "pretrain.denoise_rate": _PROBABILITY,
    "pretrain.val_fraction": _VAL_FRACTION,
    "pretrain.patience": _AT_LEAST_0,
    "pretrain.max_images": _AT_LEAST_0,  # 0 = whole pool
    "classifier.head": _AT_LEAST_1,
    "classifier.spatial_dropout": _PROBABILITY,
    "classifier.dropout": _PROBABILITY,
    "classifier.stack_folds": (2, None, False, False),
    "classifier.feature_scales": _AT_LEAST_1,
    "classifier.epochs": _AT_LEAST_1,
    "classifier.batch_size": _AT_LEAST_1,
    "classifier.learning_rate": _POSITIVE,
    "classifier.val_fraction": _VAL_FRACTION,
    "classifier.patience": _AT_LEAST_0,
    "backbone.head_epochs": _AT_LEAST_1,
    "backbone.epochs": _AT_LEAST_0,  # 0 = no fine-tuning phase
    "backbone.lr_stem": _POSITIVE,
    "backbone.lr_body": _POSITIVE,
    "backbone.lr_head": _POSITIVE,
    "backbone.dropout": _PROBABILITY,
    "backbone.spatial_dropout": _PROBABILITY,
    "backbone.trainable_blocks": (0, 16, False, False),
    "backbone.patience": _AT_LEAST_0,
    "cv.folds": (2, None, False, False),
    "cv.bootstrap": _AT_LEAST_1,
    "cv.duplicate_threshold": (0.0, 1.0, True, False),  # a mean correlation: (0, 1]
    "classifier.probe_c": _POSITIVE,  # inverse regularisation strengths
    "serve.top_k": _AT_LEAST_1,
    "serve.max_upload_mb": _POSITIVE,
    "serve.max_megapixels": _POSITIVE,
    "serve.min_side": _AT_LEAST_1,
    "serve.max_files": _AT_LEAST_1,
    "serve.occlusion_grid": (2, 32, False, False),
    "serve.heat_seconds": _POSITIVE,
    "serve.neighbours": _AT_LEAST_0,  # 0 = no nearest-paintings view
    "serve.thumbnail_size": (8, 512, False, False),
    "serve.heat_alpha": (0, 1, False, False),
    "trust.keep": (0, 1, True, True),
    "trust.inner_folds": (2, None, False, False),
    "trust.unknown_groups": (2, None, False, False),
    "trust.knn_k": _AT_LEAST_1,
}


def describe_range(key: str) -> str:
    low, high, low_open, high_open = RANGES[key]
    if high is None:
        return f"> {low}" if low_open else f"≥ {low}"
    return f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"


def _in_range(value, low, high, low_open, high_open) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:  # NaN
        return False
    if low is not None and (value <= low if low_open else value < low):
        return False
    return high is None or (value < high if high_open else value <= high)


def _check_ranges(cfg: Config) -> None:
    for key, limits in RANGES.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        values = value if isinstance(value, tuple) else (value,)
        if not all(_in_range(v, *limits) for v in values):
            shown = ",".join(map(str, values)) if isinstance(value, tuple) else value
            what = "every entry" if isinstance(value, tuple) else "it"
            raise ConfigError(f"{key}={shown} is out of range: {what} must be {describe_range(key)}")


def validate(cfg: Config) -> None:
    """Reject values no code path can run, with the key to change."""
    _check_ranges(cfg)
    for key, allowed in CHOICES.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value not in allowed:
            raise ConfigError(f"{key}={value!r} is not one of: {', '.join(allowed)}")
    stages = len(cfg.autoencoder.filters)
    if cfg.data.image_size % (2 ** stages):
        raise ConfigError(f"data.image_size={cfg.data.image_size} must be divisible by {2 ** stages} "
                          f"(one 2×2 pooling per encoder stage); try {cfg.data.image_size // 2 ** stages * 2 ** stages or 2 ** stages * 8}")
    if len(cfg.autoencoder.decoder_filters) != stages:
        raise ConfigError(f"autoencoder.decoder_filters needs {stages} entries, one per encoder stage")
    # Below: what RANGES (one value at a time) cannot say — counts, repeats, values that depend on each other.
    if len(cfg.data.pad_color) != 3:
        raise ConfigError("data.pad_color must be three integers in 0..255, e.g. 0,0,0")
    members = cfg.classifier.stack_members
    if len(members) < 2 or len(set(members)) < len(members):
        # which models can be members is the registry's to say (models.registry.stack_member)
        raise ConfigError(f"classifier.stack_members={','.join(members)}: give two or more different registered "
                          f"featurizer + head models, e.g. features-svm,effnet-lite0-logreg")
    scales = cfg.classifier.feature_scales
    if not scales or len(set(scales)) < len(scales) or cfg.data.image_size // max(scales) < 8:
        raise ConfigError(f"classifier.feature_scales={','.join(map(str, scales))}: give distinct integers ≥ 1 "
                          f"that leave at least 8 pixels of data.image_size={cfg.data.image_size}, e.g. 1,2")
    if not cfg.classifier.probe_c:
        raise ConfigError("classifier.probe_c must be one or more positive numbers, e.g. 0.01,0.1,1")
    unknown_scorers = set(cfg.trust.scorers) - set(OPEN_SET_SCORERS)
    if not cfg.trust.scorers or unknown_scorers:
        raise ConfigError(f"trust.scorers={','.join(cfg.trust.scorers)}: choose from {', '.join(OPEN_SET_SCORERS)} "
                          f"(outlier exposure is trust.background=true)")


def build_config(preset: str, overrides: typing.Iterable[str] = ()) -> Config:
    cfg = get_preset(preset)
    for assignment in overrides:
        apply_override(cfg, assignment)
    validate(cfg)
    return cfg


def to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def changes_from_preset(cfg: Config, preset: str) -> dict[str, object]:
    """``{"section.key": value}`` for every value that differs from the named preset.

    This is a run's identity: fields added to the code later (at their defaults) do not change it.
    """
    return changes_between(cfg, get_preset(preset))


def changes_between(cfg: Config, base_cfg: Config) -> dict[str, object]:
    """``{"section.key": value}`` for every value of ``cfg`` that differs from ``base_cfg``."""
    base, current = to_dict(base_cfg), to_dict(cfg)
    return {f"{section}.{key}": value for section, values in current.items()
            for key, value in values.items() if base[section].get(key) != value}


def from_dict(data: dict, preset: str | None = None) -> Config:
    """Rebuild a Config from ``config.json`` (lists back to tuples); missing fields come from ``preset``."""
    cfg = get_preset(preset) if preset else Config()
    for section_name, values in data.items():
        section_name = RENAMED_SECTIONS.get(section_name, section_name)  # run folders made before the rename
        if section_name not in _section_names(cfg):
            continue
        section = getattr(cfg, section_name)
        hints = typing.get_type_hints(type(section))
        for name, value in values.items():
            if name in hints:
                setattr(section, name, tuple(value) if isinstance(value, list) else value)
    return cfg
