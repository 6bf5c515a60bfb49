"""Per-run training options: data parallelism over every visible device, and the precision policy.

``training_scope`` wraps a training function: while it runs, Keras' global dtype policy follows
``autoencoder.mixed_precision`` (compute dtype ``autoencoder.mixed_dtype``) and, on the JAX backend with more than one device visible (GPUs, or CPU
devices forced with ``XLA_FLAGS=--xla_force_host_platform_device_count=N``), the global
distribution is ``keras.distribution.DataParallel`` over all of them: every batch is split across
the devices and the weights are replicated. Both globals are restored afterwards, so one run's
options never leak into the next (tests, cv10 after pre-training, the bench).
"""
from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import keras

from deeppainter.runs import atomic_write_json

DISTRIBUTION_FILE = "distribution.json"


def jit_compile_option(value: str):
    """``auto`` | ``true`` | ``false`` (config text) → the value ``Model.compile(jit_compile=...)`` takes."""
    return {"true": True, "false": False}.get(str(value).lower(), "auto")


class RaggedDataParallel(keras.distribution.DataParallel):
    """``DataParallel`` that also accepts a batch the devices cannot split evenly (an epoch's last one).

    Keras shards every batch along its first axis, and JAX refuses a batch of 9 on 2 devices. Such a
    batch is replicated instead: every device computes all of it, same result, once per epoch.
    """

    def get_data_layout(self, data_shape):
        devices = self.device_mesh.devices.size
        if data_shape and data_shape[0] is not None and data_shape[0] % devices:
            return keras.distribution.TensorLayout([None] * len(data_shape), self.device_mesh)
        return super().get_data_layout(data_shape)


def choose_distribution():
    """``DataParallel`` over every device when the backend can shard batches (JAX) and there are several."""
    if keras.backend.backend() != "jax":
        return None
    devices = keras.distribution.list_devices()
    return RaggedDataParallel(devices=devices) if len(devices) > 1 else None


def describe(distribution) -> dict:
    devices = keras.distribution.list_devices() if keras.backend.backend() == "jax" else []
    return {"backend": keras.backend.backend(),
            "strategy": "DataParallel" if distribution is not None else "single-device",
            "device_count": int(distribution.device_mesh.devices.size) if distribution is not None else 1,
            "devices": [str(d) for d in devices],
            "dtype_policy": keras.config.dtype_policy().name}


@contextlib.contextmanager
def options(mixed_precision: bool, run_dir: Path | None = None, mixed_dtype: str = "float16"):
    """Set the run's dtype policy and distribution; record them in ``run_dir/distribution.json``."""
    previous_policy = keras.config.dtype_policy()
    previous_distribution = keras.distribution.distribution()
    distribution = choose_distribution()
    # Mixed precision halves memory traffic on GPUs. On CPUs float16 only slows things down; bfloat16 runs
    # oneDNN's AVX512-BF16 kernels where the CPU has them (results/bench.md: 1.6-2.1× for the 256 px autoencoders).
    keras.config.set_dtype_policy(f"mixed_{mixed_dtype}" if mixed_precision else "float32")
    if distribution is not None:
        keras.distribution.set_distribution(distribution)
    try:
        info = describe(distribution)
        if distribution is not None:
            print(f"data parallel: {info['strategy']} over {info['device_count']} devices")
        if run_dir is not None:
            atomic_write_json(Path(run_dir) / DISTRIBUTION_FILE, info)
        yield info
    finally:
        keras.config.set_dtype_policy(previous_policy)
        keras.distribution.set_distribution(previous_distribution)


def training_scope(config_of=lambda cfg, *args, **kwargs: cfg, run_dir_of=lambda *args, **kwargs: None):
    """Decorator: run the wrapped training function inside ``options`` for its config."""

    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            cfg = config_of(*args, **kwargs)
            with options(cfg.autoencoder.mixed_precision, run_dir_of(*args, **kwargs), cfg.autoencoder.mixed_dtype):
                return function(*args, **kwargs)

        return wrapper

    return decorate
