"""``python -m deeppainter.bench``: how fast the pipeline runs here, as ratios measured side by side.

Rows: the standardiser against the bare JPEG decode bound and a naive Pillow pipeline; cv10 with
cached frozen-encoder features against recomputing the encoder every epoch (same folds, epochs and
initial weights; the predictions must agree) beside the most the cache can give; autoencoder
training against its input pipeline alone, with achieved FLOP/s and MFU from the analytic FLOP
count; the paper-size rows: autoencoder and 246 M-weight head training steps at 256 px in float32
and bfloat16, each in a fresh process (images/s, MFU, peak memory), and which oneDNN kernels
TensorFlow runs in bfloat16. MFU is taken against cores × clock × FLOP per cycle on a CPU and
against the backend's own matrix product in the same dtype (keras.ops.matmul, best of several) on
an accelerator, or ``--peak-tflops``; the measured product is shown beside it. Prints one markdown table, writes
it to ``--report`` (results/bench.md) and a run folder (metrics.json, env.json). ``--smoke``
shrinks everything to seconds for CI.
"""
from __future__ import annotations

import os
import subprocess
import sys
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
GOALS = {"bound": 0.8, "naive": 2.0, "tolerance": 1e-4}
COLUMNS = ("measurement", "value", "reference", "ratio", "goal")
PAPER_PRESETS = ("replication2021", "paper2016")
HEAD_PRESET = "replication2021"  # its Dense 300 on 819,200 inputs: 245,760,300 weights
DTYPES = ("float32", "bfloat16")


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

def compiled_autoencoder(cfg: Config):
    """The autoencoder as pre-training builds and compiles it (optimizer, loss, XLA option of the config)."""
    from deeppainter.models.autoencoder import build_autoencoder
    from deeppainter.models.classifier import make_optimizer
    from deeppainter.train.distribute import jit_compile_option

    autoencoder, _ = build_autoencoder(cfg.autoencoder, cfg.data.image_size)
    autoencoder.compile(optimizer=make_optimizer(cfg.pretrain.optimizer, cfg.pretrain.learning_rate), loss="mse",
                        jit_compile=jit_compile_option(cfg.pretrain.jit_compile))
    return autoencoder


def cae_training(cfg: Config, images: np.ndarray, steps: int, seed: int, peak_flops: float) -> dict:
    import keras

    from deeppainter.data.batches import DenoisingBatches
    from deeppainter.tools import flops
    from deeppainter.train.distribute import options

    train_cfg = cfg.pretrain
    with options(cfg.autoencoder.mixed_precision, mixed_dtype=cfg.autoencoder.mixed_dtype):
        batches = DenoisingBatches(images, np.arange(len(images)), train_cfg.batch_size, train_cfg.denoise,
                                   train_cfg.denoise_rate, seed=seed)
        steps = max(1, min(steps, len(batches)))
        autoencoder = compiled_autoencoder(cfg)
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


# --- peak reference: the backend's own matrix product ---------------------------------------------------------

def accelerator() -> str:
    """What the Keras backend computes on: "gpu", "tpu" or "cpu"."""
    import keras

    kinds = {device.split(":")[0].lower() for device in keras.distribution.list_devices()}
    return next((kind for kind in ("gpu", "cuda", "tpu") if kind in kinds), "cpu")


def matmul_peak(dtype: str, sizes: tuple[int, ...], repeats: int = 5, products: int = 1) -> dict:
    """The backend's practical peak in ``dtype``: the best of ``repeats`` timings of ``products`` n×n matrix
    products (keras.ops.matmul, the kernels a Dense layer runs) for each n in ``sizes``, after one untimed."""
    from keras import ops

    rng = np.random.default_rng(0)
    best = {"flops": 0.0, "size": 0, "dtype": dtype}
    for n in sizes:
        a, b = (ops.convert_to_tensor(rng.uniform(-1, 1, (n, n)).astype("float32"), dtype=dtype) for _ in range(2))

        def multiply():
            results = [ops.matmul(a, b) for _ in range(products)]
            # Reading one element of the last product waits for all of them (asynchronous devices).
            return ops.convert_to_numpy(ops.cast(results[-1][0, 0], "float32"))

        multiply()
        for _ in range(repeats):
            rate = 2 * n ** 3 * products / timed(multiply)[0]
            if rate > best["flops"]:
                best = {"flops": rate, "size": n, "dtype": dtype}
    return best


def nominal_cpu_peak() -> dict[str, dict] | None:
    """cores × clock × FLOP per cycle for float32 and bfloat16, from /proc/cpuinfo (None where it is absent).

    ASSUMPTION: two vector FMA pipes per core, 512 bits wide with AVX-512 (16 float32 lanes × 2 FLOP × 2 pipes
    = 64 FLOP per cycle), 256 with AVX2 + FMA (32); AVX512-BF16's dot product does twice the float32 work per
    instruction (128), and without it bfloat16 runs at the float32 rate. The clock is the one /proc/cpuinfo
    reports (the nominal one in a virtual machine); a core that boosts above it can exceed this "peak".
    """
    info = Path("/proc/cpuinfo")
    if not info.exists():
        return None
    text = info.read_text()
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))
    clocks = [float(line.split(":", 1)[1]) for line in text.splitlines() if line.startswith("cpu MHz")]
    if not clocks:
        return None
    cores, hertz = len(os.sched_getaffinity(0)), max(clocks) * 1e6
    per_cycle = 64 if "avx512f" in flags else 32 if {"avx2", "fma"} <= flags else 8
    per_cycle_bf16 = 2 * per_cycle if "avx512_bf16" in flags else per_cycle
    source = (f"nominal: {cores} cores × {hertz / 1e9:.2f} GHz × {per_cycle} float32 / {per_cycle_bf16} bfloat16 "
              f"FLOP per cycle")
    return {dtype: {"flops": cores * hertz * cycle, "size": 0, "dtype": dtype, "source": source}
            for dtype, cycle in (("float32", per_cycle), ("bfloat16", per_cycle_bf16))}


# --- paper size: training steps at 256 px, each measurement in its own process ---------------------------------

def peak_rss_bytes() -> int:
    """This process's peak resident memory. Linux: VmHWM, which starts afresh in a new program (getrusage's
    ru_maxrss survives exec, so a spawned child would report its parent's peak)."""
    status = Path("/proc/self/status")
    if status.exists():
        (line,) = [line for line in status.read_text().splitlines() if line.startswith("VmHWM:")]
        return int(line.split()[1]) * 1024  # kB
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS


def accelerator_peak_bytes() -> int | None:
    """Peak bytes in use on the first accelerator (JAX or TensorFlow GPU); None on a CPU or without Keras."""
    if "keras" not in sys.modules:  # nothing ran on an accelerator
        return None
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return (jax.devices()[0].memory_stats() or {}).get("peak_bytes_in_use")
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            return tf.config.experimental.get_memory_info("GPU:0")["peak"]
    return None


def measured(function, kwargs: dict) -> dict:
    """``function(**kwargs)``'s result with this process's peak memory added."""
    return {**function(**kwargs), "peak_rss_bytes": peak_rss_bytes(), "device_peak_bytes": accelerator_peak_bytes()}


def isolated(function, kwargs: dict, initializer=None) -> dict:
    """:func:`measured` in a fresh process (``initializer`` runs first there): the peak memory is this
    measurement's own, not the high-water mark of everything measured before it."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=initializer) as pool:
        return pool.submit(measured, function, kwargs).result()


def step_rate(model, x: np.ndarray, y: np.ndarray, steps: int) -> float:
    """Examples per second of ``model.train_on_batch(x, y)``: the median of ``steps`` timed steps, after
    one untimed (tracing, compilation, allocation). train_on_batch returns the loss, so each step is done."""
    model.train_on_batch(x, y)
    return len(x) / float(np.median([timed(model.train_on_batch, x, y)[0] for _ in range(steps)]))


def paper_cae_step(preset: str, dtype: str, batch_size: int, steps: int, seed: int) -> dict:
    """Autoencoder training at the preset's size, in ``dtype`` (float32, or the mixed policy's compute dtype),
    on random pixels (the cost of a step does not depend on them; the input pipeline is its own row)."""
    import keras

    from deeppainter.tools import flops
    from deeppainter.train.distribute import options

    cfg = get_preset(preset)
    keras.utils.set_random_seed(seed)
    with options(dtype != "float32", mixed_dtype=dtype):
        autoencoder = compiled_autoencoder(cfg)
        x = np.random.default_rng(seed).random((batch_size, *autoencoder.input_shape[1:]), dtype=np.float32)
        rate = step_rate(autoencoder, x, x, steps)
    result = {"images_per_s": rate, "train_flops_per_image": flops.train_flops(autoencoder),
              "params": autoencoder.count_params(), "image_size": cfg.data.image_size}
    keras.backend.clear_session()
    return result


def paper_head_step(preset: str, dtype: str, batch_size: int, steps: int, seed: int, num_classes: int = 3) -> dict:
    """The cv10 head on cached encoder features at the preset's size (for replication2021: Dense 300 on
    819,200 inputs), trained in ``dtype`` with the preset's optimizer, on random features."""
    import keras

    from deeppainter.models.classifier import build_head, make_optimizer
    from deeppainter.tools import flops
    from deeppainter.train.distribute import jit_compile_option, options

    cfg = get_preset(preset)
    side = cfg.data.image_size // 2 ** len(cfg.autoencoder.filters)
    shape = (side, side, cfg.autoencoder.filters[-1])
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    with options(dtype != "float32", mixed_dtype=dtype):
        head = build_head(shape, cfg.classifier, num_classes)
        head.compile(optimizer=make_optimizer(cfg.classifier.optimizer, cfg.classifier.learning_rate),
                     loss="sparse_categorical_crossentropy",
                     jit_compile=jit_compile_option(cfg.classifier.jit_compile))
        x = rng.random((batch_size, *shape), dtype=np.float32)
        rate = step_rate(head, x, rng.integers(0, num_classes, batch_size), steps)
    result = {"images_per_s": rate, "train_flops_per_image": flops.train_flops(head), "params": head.count_params(),
              "features": int(np.prod(shape))}
    keras.backend.clear_session()
    return result


def paper_size(presets: tuple[str, ...], head_preset: str, dtypes: tuple[str, ...], cae_batch: int,
               head_batch: int, steps: int, seed: int, isolate: bool = True, initializer=None) -> list[dict]:
    """One record per (model, preset, dtype): the step measurement and the process's peak memory. A batch
    size of 0 is the preset's own (pre-training's for the autoencoder, the classifier's for the head)."""
    jobs = [("cae", paper_cae_step, preset, cae_batch or get_preset(preset).pretrain.batch_size) for preset in presets]
    jobs.append(("head", paper_head_step, head_preset, head_batch or get_preset(head_preset).classifier.batch_size))
    records = []
    for part, function, preset, batch_size in jobs:
        for dtype in dtypes:
            kwargs = {"preset": preset, "dtype": dtype, "batch_size": batch_size, "steps": steps, "seed": seed}
            result = isolated(function, kwargs, initializer) if isolate else measured(function, kwargs)
            records.append({"part": part, "preset": preset, "dtype": dtype, "batch_size": batch_size,
                            "steps": steps, "isolated": isolate, **result})
    return records


def bf16_workload() -> None:
    """One bfloat16 training step of a small conv + dense model: the kernels :func:`onednn_kernels` lists."""
    import keras

    keras.config.set_dtype_policy("mixed_bfloat16")
    inputs = keras.Input((32, 32, 16))
    x = keras.layers.Conv2D(32, 5, padding="same")(inputs)
    x = keras.layers.Dense(64)(keras.layers.Flatten()(x))
    model = keras.Model(inputs, keras.layers.Dense(3, dtype="float32")(x))
    model.compile(optimizer="adam", loss="mse")
    model.train_on_batch(np.ones((4, 32, 32, 16), "float32"), np.ones((4, 3), "float32"))


def onednn_kernels() -> dict:
    """The oneDNN kernels TensorFlow runs on bfloat16 data, read from ONEDNN_VERBOSE=1 in a child process:
    ``{"isa": ..., "kernels": {primitive: [implementation, ...]}}`` (``avx512_core_bf16`` = the AVX512-BF16 ones)."""
    root = Path(__file__).resolve().parent.parent.parent
    env = {**os.environ, "ONEDNN_VERBOSE": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", "from deeppainter.tools.bench import bf16_workload; bf16_workload()"],
                          env=env, capture_output=True, text=True, timeout=600, check=False)
    isa, kernels = "", {}
    for line in done.stdout.splitlines():
        fields = line.split(",")
        if line.startswith("onednn_verbose") and "isa:" in line:
            isa = line.split("isa:", 1)[1].strip()
        elif line.startswith("onednn_verbose") and fields[2:5] == ["primitive", "exec", "cpu"] and "bf16" in line \
                and fields[5] != "reorder":
            kernels.setdefault(fields[5], set()).add(fields[6])
    return {"isa": isa, "kernels": {kind: sorted(names) for kind, names in sorted(kernels.items())},
            "returncode": done.returncode}


# --- memory at paper size -------------------------------------------------------------------------------------

def paper_memory(num_classes: int = 3) -> dict:
    """Dense-head and autoencoder training state of the replication2021 preset, from shapes alone."""
    import keras

    from deeppainter.models.autoencoder import build_autoencoder
    from deeppainter.tools import flops

    cfg = get_preset("replication2021")
    side = cfg.data.image_size // 2 ** len(cfg.autoencoder.filters)
    features = side * side * cfg.autoencoder.filters[-1]
    first_dense = features * cfg.classifier.head[0] + cfg.classifier.head[0]
    head_params = flops.dense_stack_params(features, (*cfg.classifier.head, num_classes))
    autoencoder, _ = build_autoencoder(cfg.autoencoder, cfg.data.image_size)  # symbolic: 3 M weights, no compute
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


def peak_text(peak: dict) -> str:
    return f"{peak['flops'] / 1e12:.3f} TFLOP/s {peak['dtype']} peak ({peak['source']})"


def pipeline_rows(m: dict, size: int) -> list[tuple[str, ...]]:
    """The rows of the cpu-preset pipeline: standardiser, cv10 cache, 64 px CAE, memory estimate, extractors."""
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
         _ratio(cv["speedup"]), f"— (at most the bound below: {cv['step_bound']:.2f}×)"),
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
         f"({cae['train_flops_per_image'] / 1e6:.0f} MFLOP/img train, {m['image_size']} px)",
         peak_text(m["peak"]["float32"]), f"{100 * cae['mfu']:.1f}% MFU", "—"),
        ("dense head at paper size (replication2021)",
         f"{mem['first_dense_weights']:,} weights in Dense 300 on {mem['features']:,} inputs",
         f"{mem['head_weights_adam_bytes'] / GB:.2f} GB weights + Adam (fp32)",
         f"{mem['head_params']:,} head params", "—"),
        ("replication2021 training memory", f"{mem['peak_bytes'] / GB:.1f} GB peak estimate at batch 32 "
         f"(head {mem['head_train_bytes'] / GB:.1f}, CAE {mem['cae_train_bytes'] / GB:.1f})",
         f"24 GiB RAM: {fits[mem['fits_24GiB_ram']]}; 80 GB GPU: {fits[mem['fits_80GB_gpu']]}",
         f"{mem['peak_bytes'] / RAM_LIMIT:.2f}× of 24 GiB", "fits both"),
        *extraction,
    ]


def peak_row(m: dict) -> tuple[str, ...]:
    """The MFU denominator per dtype, and beside it the backend's measured matrix product."""
    peak, matmul = m["peak"], m["matmul"]
    shown = ", ".join(f"{peak[dtype]['flops'] / 1e12:.3f} TFLOP/s {dtype}" for dtype in peak)
    measured = ", ".join(f"{matmul[dtype]['flops'] / 1e12:.3f} {dtype} (n={matmul[dtype]['size']})" for dtype in matmul)
    sources = "; ".join(dict.fromkeys(p["source"] for p in peak.values()))
    ratio = ", ".join(f"{100 * matmul[dtype]['flops'] / peak[dtype]['flops']:.0f}% {dtype}" for dtype in peak)
    return ("peak reference (MFU denominator)", shown, f"{sources}; measured {matmul['float32']['source']}: {measured} "
            f"TFLOP/s", f"matmul at {ratio}", "—")


def paper_rows(m: dict) -> list[tuple[str, ...]]:
    """The paper-size rows: one per (model, preset, dtype), bfloat16 beside its float32 twin, then the kernels."""
    rows, float32_rate = [], {}
    for record in m["paper_size"]:
        key = (record["part"], record["preset"])
        what = "CAE training" if record["part"] == "cae" else f"head training ({record['params'] / 1e6:.0f} M weights)"
        peak = m["peak"][record["dtype"]]
        achieved = record["images_per_s"] * record["train_flops_per_image"]
        memory = f"peak RSS {record['peak_rss_bytes'] / GB:.1f} GB"
        if record.get("device_peak_bytes"):
            memory += f", device peak {record['device_peak_bytes'] / GB:.1f} GB"
        if not record["isolated"]:
            memory += " (whole process)"
        if record["dtype"] == "float32":
            float32_rate[key] = record["images_per_s"]
        speedup = (f"; {record['images_per_s'] / float32_rate[key]:.2f}× float32"
                   if record["dtype"] != "float32" and key in float32_rate else "")
        rows.append((f"paper size: {what}, {record['preset']}, {record['dtype']}",
                     f"{record['images_per_s']:.2f} img/s (batch {record['batch_size']}, median of {record['steps']} "
                     f"steps; {record['train_flops_per_image'] / 1e9:.1f} GFLOP/img)",
                     memory, f"{100 * achieved / peak['flops']:.1f}% MFU{speedup}",
                     f"— (of {peak['flops'] / 1e12:.3f} TFLOP/s {peak['dtype']})"))
    kernels = m.get("onednn")
    if kernels:
        found = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in kernels["kernels"].items()) or "none"
        native = [kind for kind, names in kernels["kernels"].items() if any("bf16" in name for name in names)]
        other = [kind for kind in kernels["kernels"] if kind not in native]
        verdict = (f"bf16 kernels for {', '.join(native) or 'nothing'}"
                   + (f"; not for {', '.join(other)}" if other else ""))
        rows.append(("oneDNN kernels on bfloat16 data (ONEDNN_VERBOSE)", found, f"ISA: {kernels['isa'] or '?'}",
                     verdict, "—"))
    return rows


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
