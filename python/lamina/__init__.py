"""lamina: train dense neural networks fast on the CPU.

A C++17 core (blocked GEMM kernels, activations, losses, optimizers and the minibatch loop,
parallelized with OpenMP) under a small Keras-like API.

>>> import lamina as lm
>>> model = lm.Sequential([lm.layers.Dense(8, activation="relu", input_shape=(4,)),
...                        lm.layers.Dense(1, activation="sigmoid")], seed=0)
>>> model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
"""

from __future__ import annotations

import os
from typing import Any, Dict

# GNU OpenMP's idle threads spin for ~300k iterations before sleeping. When the cores are shared
# with other busy processes, a spinning thread waits on a descheduled partner and training slows
# many times over (bench/RESULTS.md, "Figures behind code comments"). A short spin costs nothing
# measurable on an idle machine. It must be set before libgomp loads, and the
# user's own OMP_WAIT_POLICY / GOMP_SPINCOUNT win.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "1000")

from lamina import (
    _core,
    activations,
    callbacks,
    data,
    datasets,
    distributed,
    dtype_policies,
    initializers,
    layers,
    losses,
    metrics,
    onnx,
    optimizers,
    regularizers,
    utils,
)

# isort: off
from lamina import augmentation  # after layers: its classes subclass layers.Layer, and layers re-exports them
from lamina import normalization
# isort: on
from lamina._validation import positive_int
from lamina.gradcheck import GradientCheckReport, gradient_check
from lamina.models import Sequential, load_model
from lamina.saving import save_model

__version__: str = _core.__version__

__all__ = [
    "Sequential", "load_model", "save_model", "gradient_check", "GradientCheckReport", "set_num_threads", "get_num_threads", "max_threads",
    "set_flush_denormals", "get_flush_denormals", "build_info", "activations", "augmentation", "normalization", "callbacks", "data", "datasets",
    "initializers", "layers", "losses", "metrics", "onnx", "optimizers", "regularizers", "utils", "distributed", "dtype_policies", "__version__",
]


def set_num_threads(n: int) -> None:
    """Threads the core uses (OpenMP), for calls made from every Python thread; ``n`` is at
    most ``lm.max_threads()``. Results are identical for any number of threads.

    ``OMP_NUM_THREADS`` sets the starting value. numpy's own BLAS threads are separate; see the
    README for keeping both from oversubscribing the cores.

    >>> previous = lm.get_num_threads()
    >>> lm.set_num_threads(2)
    >>> lm.get_num_threads()
    2
    >>> lm.set_num_threads(previous)
    """
    n = positive_int(n, "n")
    if n > _core.max_threads():
        raise ValueError(f"n must be at most lm.max_threads() = {_core.max_threads()} (more threads than that "
                         f"cannot run usefully on this machine), received n={n}")
    _core.set_num_threads(n)


def max_threads() -> int:
    """The most threads ``set_num_threads`` accepts: four per core, and at least 256.

    >>> lm.max_threads() >= 256
    True
    """
    return int(_core.max_threads())


def get_num_threads() -> int:
    """Threads the core uses.

    >>> lm.get_num_threads() >= 1
    True
    """
    return int(_core.get_num_threads())


def set_flush_denormals(on: bool) -> None:
    """Whether training runs with flush-to-zero (on by default, as TensorFlow runs Keras).

    Subnormal floats (below ~1.2e-38 in float32) take a slow path in x86 cores, and training
    makes many: RMSprop's running average of squared gradients decays through that range for
    inputs and units that are rarely active (a third of it in a batch-1 Fashion-MNIST fit, which
    trained ~18 % slower). With this on, ``fit`` / ``train_on_batch`` treat subnormals as zero,
    only inside the core's training loop: predict, evaluate, gradient checking, numpy and the
    rest of the process keep IEEE arithmetic. Results stay deterministic either way; they differ
    from the IEEE run only through values that small. A no-op on non-x86 CPUs.

    >>> lm.get_flush_denormals()
    True
    >>> lm.set_flush_denormals(False)
    >>> lm.get_flush_denormals()
    False
    >>> lm.set_flush_denormals(True)
    """
    if not isinstance(on, bool):
        raise TypeError(f"on must be a bool, received {on!r}")
    _core.set_flush_denormals(on)


def get_flush_denormals() -> bool:
    """Whether training runs with flush-to-zero (see ``set_flush_denormals``).

    >>> isinstance(lm.get_flush_denormals(), bool)
    True
    """
    return bool(_core.flush_denormals())


def build_info() -> Dict[str, Any]:
    """How this build runs: version, the GEMM kernel in use, the bfloat16 tile kernel of
    ``dtype="mixed_bfloat16"`` (``amx``, ``avx512_bf16`` or ``portable``), OpenMP on/off, thread count,
    whether training flushes subnormals to zero, and ``distributed``: None, or after
    ``lm.distributed.init()`` this process's rank, size, ranks on its host and threads per rank.

    >>> sorted(build_info())
    ['bf16_kernel', 'distributed', 'flush_denormals', 'gemm_kernel', 'openmp', 'threads', 'version']
    """
    return {
        "version": __version__,
        "gemm_kernel": _core.gemm_kernel_name(),
        "bf16_kernel": _core.bf16_gemm_kernel(),
        "openmp": bool(_core.openmp_enabled()),
        "threads": get_num_threads(),
        "flush_denormals": get_flush_denormals(),
        "distributed": distributed.info(),
    }
