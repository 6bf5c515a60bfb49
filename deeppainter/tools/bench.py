"""``python -m deeppainter.bench``: how fast the pipeline runs here, as ratios measured side by side.

Rows: the standardiser against the bare JPEG decode bound and a naive Pillow pipeline; cv10 with
cached frozen-encoder features against recomputing the encoder every epoch (same folds, epochs and
initial weights; the predictions must agree); autoencoder training against its input pipeline
alone, with achieved FLOP/s and MFU from the analytic FLOP count; the dense head's memory at paper
size. Prints one markdown table, writes it to ``--report`` (results/bench.md) and a run folder
(metrics.json, env.json). ``--smoke`` shrinks everything to seconds for CI.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from deeppainter.config import Config, build_config, get_preset
from deeppainter.data.datasets import (
    list_labelled,
    load_images,
    resolve_classes,
    sample_dir,
)
from deeppainter.errors import UserError

SHARED_DATA = Path("../shared/data/wikiart14")
PAPER_CLASSES = ("vincent-van-gogh", "rembrandt", "pierre-auguste-renoir")
GIB, GB = 2 ** 30, 10 ** 9
RAM_LIMIT, GPU_LIMIT = 24 * GIB, 80 * GB
GOALS = {"bound": 0.8, "naive": 2.0, "cache": 10.0, "tolerance": 1e-4}
COLUMNS = ("measurement", "value", "reference", "ratio", "goal")




def bench_config(args) -> Config:
    cfg = build_config(args.preset, args.overrides)
    cfg.cv.folds = 2 if args.smoke else 3
    cfg.classifier.epochs = args.epochs
    cfg.classifier.patience = 10 ** 6  # no early stopping: both paths run exactly the same epochs
    return cfg


def timed(function, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


# --- standardiser ---------------------------------------------------------------------------------------

def standardiser_rates(paths: list[str], size: int, repeats: int = 3) -> dict[str, float]:
    """Images/s of three ways to read the same files, interleaved and best of ``repeats`` (noise)."""
    from PIL import Image

    from deeppainter.data.standardize import load_standardized

    def bare(path):
        with Image.open(path) as image:
            image.load()

    def naive(path):
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.LANCZOS))

    def standardiser(path):
        return load_standardized(path, size)

    methods = {"bare": bare, "naive": naive, "standardiser": standardiser}
    best = dict.fromkeys(methods, 0.0)
    for round_ in range(repeats):
        names = list(methods)[round_ % 3:] + list(methods)[:round_ % 3]  # rotate the order each round
        for name in names:
            seconds, _ = timed(lambda: [methods[name](p) for p in paths])
            best[name] = max(best[name], len(paths) / seconds)
    return best


# --- cv10: cached features vs encoder every epoch ---------------------------------------------------------

def cv_cache_comparison(cfg: Config, images: np.ndarray, labels: np.ndarray, encoder_path: Path,
                        cache_root: Path, seed: int, repeats: int = 2) -> dict:
    """Both paths ``repeats`` times in the order cached, uncached, uncached, cached, … (the first
    run of a process also pays TensorFlow's warm-up); each path's best time counts, and the
    predictions of every run must agree. Each cached run encodes the images afresh (its own folder)."""
    from deeppainter.data.splits import make_folds
    from deeppainter.train.cae_model import EncoderHeadModel

    folds = make_folds(labels, cfg.cv.folds, seed)

    def run_folds(use_cache: bool, cache_dir: Path):  # the cached path's one-off encoding is timed too
        model = EncoderHeadModel(encoder_path, cfg, images, int(labels.max()) + 1, seed, cache_dir,
                                 use_cache=use_cache)
        return model, np.concatenate([model.fit_predict(k, train, test, labels)[0]
                                      for k, (train, test) in enumerate(folds)])

    seconds, probabilities, models = {True: [], False: []}, {True: [], False: []}, {}
    order = [(True, False) if r % 2 == 0 else (False, True) for r in range(repeats)]
    for round_, paths in enumerate(order):
        for use_cache in paths:
            cache_dir = cache_root / f"{'cached' if use_cache else 'uncached'}{round_}"
            elapsed, (models[use_cache], predicted) = timed(run_folds, use_cache, cache_dir)
            seconds[use_cache].append(elapsed)
            probabilities[use_cache].append(predicted)
    test_order = np.concatenate([test for _, test in folds])
    correct = {key: float((probs[0].argmax(1) == labels[test_order]).mean()) for key, probs in probabilities.items()}
    best = {key: min(times) for key, times in seconds.items()}
    return {"cached_seconds": best[True], "uncached_seconds": best[False], "repeats": repeats,
            "speedup": best[False] / best[True],
            "max_abs_prob_diff": max(float(np.abs(probs - probabilities[True][0]).max())
                                     for runs in probabilities.values() for probs in runs),
            "accuracy_cached": correct[True], "accuracy_uncached": correct[False],
            "abs_accuracy_diff": abs(correct[True] - correct[False]),
            "folds": cfg.cv.folds, "epochs": cfg.classifier.epochs, "images": len(labels),
            **step_bound(models, labels, cfg.classifier.batch_size)}


def step_bound(models: dict, labels: np.ndarray, batch_size: int, repeats: int = 20) -> dict:
    """The most the cache can give: one training step on cached features vs one through the encoder.

    Whatever the per-epoch overhead, a cached fold cannot be cheaper than its head steps: the ratio
    of the two step times bounds the cv10 speed-up (the FLOP ratio ignores the memory-bound
    optimizer update of the head's large first Dense layer, hence the measured one beside it).
    """
    from deeppainter.tools import flops

    rows = np.arange(min(batch_size, len(labels)))
    y = labels[rows]
    best = {}
    for use_cache, fold_model in models.items():
        array, scale = fold_model.inputs
        x = np.asarray(array[rows], dtype="float32") * (scale or 1.0)
        keras_model = fold_model.compiled().model
        keras_model.train_on_batch(x, y)  # trace outside the timing
        best[use_cache] = min(timed(keras_model.train_on_batch, x, y)[0] for _ in range(repeats))
    cached = models[True]
    head_flops = flops.train_flops(cached.compiled().head)
    encoder_flops = flops.forward_flops(cached.load_encoder())
    return {"cached_step_seconds": best[True], "uncached_step_seconds": best[False],
            "step_bound": best[False] / best[True], "flop_bound": (encoder_flops + head_flops) / head_flops}


# --- frozen feature extraction: the CAE encoder beside the pretrained networks ---------------------------------

def extraction_rates(images: np.ndarray, encoder_path: Path, names: tuple[str, ...], batch_size: int = 32) -> dict:
    """Images per second through each frozen feature extractor, on the same images, after one warm-up batch."""
    import keras

    from deeppainter.models import pretrained

    encoder = keras.models.load_model(encoder_path, compile=False)
    floats = images.astype("float32") / 255.0
    encoder.predict(floats[:batch_size], verbose=0)
    seconds, _ = timed(encoder.predict, floats, batch_size=batch_size, verbose=0)
    rates = {"cae-encoder": len(images) / seconds}
    for name in names:
        try:
            pretrained.extract_features(name, images[:batch_size], batch_size=batch_size)
        except UserError as exc:  # the optional extra is not installed: say so in the table
            rates[name] = str(exc)
            continue
        seconds, _ = timed(pretrained.extract_features, name, images, batch_size=batch_size)
        rates[name] = len(images) / seconds
    return rates


# --- autoencoder training -----------------------------------------------------------------------------------

def cae_training(cfg: Config, images: np.ndarray, steps: int, seed: int, peak_flops: float) -> dict:
    import keras

    from deeppainter.data.batches import DenoisingBatches
    from deeppainter.models.autoencoder import build_autoencoder
    from deeppainter.models.classifier import make_optimizer
    from deeppainter.tools import flops
    from deeppainter.train.distribute import jit_compile_option, options

    train_cfg = cfg.pretrain
    with options(cfg.model.mixed_precision):
        batches = DenoisingBatches(images, np.arange(len(images)), train_cfg.batch_size, train_cfg.denoise,
                                   train_cfg.denoise_rate, seed=seed)
        steps = max(1, min(steps, len(batches)))
        autoencoder, _ = build_autoencoder(cfg.model, cfg.data.image_size)
        autoencoder.compile(optimizer=make_optimizer(train_cfg.optimizer, train_cfg.learning_rate), loss="mse",
                            jit_compile=jit_compile_option(train_cfg.jit_compile))
        autoencoder.fit(batches, epochs=1, steps_per_epoch=1, verbose=0)  # compile outside the timing
        train_seconds, _ = timed(autoencoder.fit, batches, epochs=1, steps_per_epoch=steps, verbose=0)
        pipeline_seconds, _ = timed(lambda: [batches[i % len(batches)] for i in range(steps)])
    timed_images = steps * train_cfg.batch_size
    train_flops = flops.train_flops(autoencoder)
    keras.backend.clear_session()
    rate = timed_images / train_seconds
    return {"train_images_per_s": rate, "pipeline_images_per_s": timed_images / pipeline_seconds,
            "train_flops_per_image": train_flops, "achieved_flops": rate * train_flops,
            "mfu": rate * train_flops / peak_flops, "steps": steps, "batch_size": train_cfg.batch_size}


def matmul_flops(n: int = 1024, repeats: int = 5) -> float:
    """This machine's practical fp32 peak: the best of a few n×n matrix products."""
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    return max(2 * n ** 3 / timed(np.matmul, a, a)[0] for _ in range(repeats))


# --- memory at paper size -------------------------------------------------------------------------------------

def paper_memory(num_classes: int = 3) -> dict:
    """Dense-head and autoencoder training state of the replication2021 preset, from shapes alone."""
    import keras

    from deeppainter.models.autoencoder import build_autoencoder
    from deeppainter.tools import flops

    cfg = get_preset("replication2021")
    side = cfg.data.image_size // 2 ** len(cfg.model.filters)
    features = side * side * cfg.model.filters[-1]
    first_dense = features * cfg.classifier.head[0] + cfg.classifier.head[0]
    head_params = flops.dense_stack_params(features, (*cfg.classifier.head, num_classes))
    autoencoder, _ = build_autoencoder(cfg.model, cfg.data.image_size)  # symbolic: 3 M weights, no compute
    activations = flops.activation_elements(autoencoder) * flops.FP32_BYTES * cfg.pretrain.batch_size
    cae_bytes = autoencoder.count_params() * flops.TRAIN_STEP_BYTES + 2 * activations  # outputs + their grads
    keras.backend.clear_session()
    head_bytes = head_params * flops.TRAIN_STEP_BYTES + cfg.classifier.batch_size * features * flops.FP32_BYTES
    peak = max(head_bytes, cae_bytes)
    return {"features": features, "first_dense_weights": first_dense, "head_params": head_params,
            "head_weights_adam_bytes": head_params * flops.ADAM_STATE_BYTES, "head_train_bytes": head_bytes,
            "cae_train_bytes": cae_bytes, "peak_bytes": peak,
            "fits_24GiB_ram": peak < RAM_LIMIT, "fits_80GB_gpu": peak < GPU_LIMIT}


# --- report -----------------------------------------------------------------------------------------------------

def _ratio(value: float, goal: float | None = None) -> str:
    text = f"{value:.2f}×"
    return f"{text} {'✓' if value >= goal else '✗'}" if goal is not None else text


def table_rows(m: dict, size: int) -> list[tuple[str, ...]]:
    std, cv, cae, mem = m["standardiser"], m["cv10"], m["cae"], m["memory"]
    fits = {True: "fits", False: "does not fit"}
    rates = m.get("extraction", {})
    cae_rate = rates.get("cae-encoder")
    extraction = [(f"frozen features: {name}", f"{rate:.1f} img/s" if isinstance(rate, float) else rate,
                   f"{cae_rate:.0f} img/s CAE encoder ({m['image_size']} px)",
                   f"{rate / cae_rate:.3f}×" if isinstance(rate, float) else "—", "—")
                  for name, rate in rates.items() if name != "cae-encoder"]
    return [
        ("standardiser vs decode bound", f"{std['standardiser']:.0f} img/s ({size} px)",
         f"{std['bare']:.0f} img/s PIL open+load", _ratio(std["standardiser"] / std["bare"], GOALS["bound"]),
         f"≥ {GOALS['bound']}×"),
        ("standardiser vs naive", f"{std['standardiser']:.0f} img/s",
         f"{std['naive']:.0f} img/s open→convert→resize", _ratio(std["standardiser"] / std["naive"], GOALS["naive"]),
         f"≥ {GOALS['naive']:.0f}×"),
        ("cv10 cached features vs encoder every epoch",
         f"{cv['cached_seconds']:.1f} s cached", f"{cv['uncached_seconds']:.1f} s uncached "
         f"({cv['folds']} folds × {cv['epochs']} epochs, {cv['images']} images; best of {cv.get('repeats', 1)})",
         _ratio(cv["speedup"], GOALS["cache"]), f"≥ {GOALS['cache']:.0f}×"),
        ("cv10 cache speed-up bound: one training step",
         f"{1e3 * cv['cached_step_seconds']:.1f} ms on cached features",
         f"{1e3 * cv['uncached_step_seconds']:.1f} ms through the encoder (FLOP ratio {cv['flop_bound']:.1f}×)",
         _ratio(cv["step_bound"]), "— (most the cache can give)"),
        ("cv10 cached vs uncached agreement", f"max abs Δprob {cv['max_abs_prob_diff']:.1e}",
         f"abs Δaccuracy {cv['abs_accuracy_diff']:.3f}",
         "✓" if cv["max_abs_prob_diff"] <= GOALS["tolerance"] else "✗", f"≤ {GOALS['tolerance']:.0e}"),
        ("CAE training vs input pipeline", f"{cae['train_images_per_s']:.0f} img/s training",
         f"{cae['pipeline_images_per_s']:.0f} img/s DenoisingBatches alone",
         _ratio(cae["pipeline_images_per_s"] / cae["train_images_per_s"], 1.0), "pipeline ≥ 1× training"),
        ("CAE achieved FLOP/s (MFU)", f"{cae['achieved_flops'] / 1e9:.1f} GFLOP/s "
         f"({cae['train_flops_per_image'] / 1e6:.0f} MFLOP/img train)",
         f"{m['peak_flops'] / 1e12:.3f} TFLOP/s peak ({m['peak_source']})", f"{100 * cae['mfu']:.1f}% MFU", "—"),
        ("dense head at paper size (replication2021)",
         f"{mem['first_dense_weights']:,} weights in Dense 300 on {mem['features']:,} inputs",
         f"{mem['head_weights_adam_bytes'] / GB:.2f} GB weights + Adam (fp32)",
         f"{mem['head_params']:,} head params", "—"),
        ("replication2021 training memory", f"{mem['peak_bytes'] / GB:.1f} GB peak estimate "
         f"(head {mem['head_train_bytes'] / GB:.1f}, CAE {mem['cae_train_bytes'] / GB:.1f})",
         f"24 GiB RAM: {fits[mem['fits_24GiB_ram']]}; 80 GB GPU: {fits[mem['fits_80GB_gpu']]}",
         f"{mem['peak_bytes'] / RAM_LIMIT:.2f}× of 24 GiB", "fits both"),
        *extraction,
    ]


def markdown_table(rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows]) + "\n"


# --- command ------------------------------------------------------------------------------------------------------

def default_data() -> Path:
    return SHARED_DATA if SHARED_DATA.is_dir() else sample_dir()


def labelled_images(data: Path, cfg: Config, per_class: int, seed: int):
    available = set(list_labelled(data)["label"])
    classes = PAPER_CLASSES if set(PAPER_CLASSES) <= available else resolve_classes(data, "largest:3")
    table = list_labelled(data, classes, min_per_class=cfg.cv.folds, max_per_class=per_class, seed=seed)
    images, ok = load_images(list(table["path"]), cfg.data, progress=False)
    names = sorted(table["label"].unique())
    from deeppainter.data.splits import label_indices

    labels = label_indices(table["label"][ok], names)
    return images, labels
