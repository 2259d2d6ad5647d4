"""lamina: train dense neural networks fast on the CPU.

A C++17 core (blocked GEMM kernels, activations, losses, optimizers and the minibatch loop,
parallelized with OpenMP) under a small Keras-like API.

>>> import lamina as lm
>>> model = lm.Sequential([lm.layers.Dense(8, activation="relu", input_shape=(4,)),
...                        lm.layers.Dense(1, activation="sigmoid")], seed=0)
>>> model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
"""

from __future__ import annotations

from typing import Any, Dict

from lamina import _core
from lamina import (activations, callbacks, data, datasets, initializers, layers, losses, metrics,
                    onnx, optimizers, regularizers, utils)
from lamina._validation import positive_int
from lamina.gradcheck import GradientCheckReport, gradient_check
from lamina.io import load_model, save_model
from lamina.models import Sequential

__version__: str = _core.__version__

__all__ = [
    "Sequential", "load_model", "save_model", "gradient_check", "GradientCheckReport", "set_num_threads", "get_num_threads",
    "build_info", "activations", "callbacks", "data", "datasets", "initializers", "layers", "losses",
    "metrics", "onnx", "optimizers", "regularizers", "utils", "__version__",
]


def set_num_threads(n: int) -> None:
    """Threads the core uses (OpenMP). Results are identical for any number of threads.

    ``OMP_NUM_THREADS`` sets the starting value. numpy's own BLAS threads are separate; see the
    README for keeping both from oversubscribing the cores.

    >>> previous = lm.get_num_threads()
    >>> lm.set_num_threads(2)
    >>> lm.get_num_threads()
    2
    >>> lm.set_num_threads(previous)
    """
    _core.set_num_threads(positive_int(n, "n"))


def get_num_threads() -> int:
    """Threads the core uses.

    >>> lm.get_num_threads() >= 1
    True
    """
    return int(_core.get_num_threads())


def build_info() -> Dict[str, Any]:
    """How this build runs: version, the GEMM kernel in use, OpenMP on/off, thread count.

    >>> sorted(build_info())
    ['gemm_kernel', 'openmp', 'threads', 'version']
    """
    return {
        "version": __version__,
        "gemm_kernel": _core.gemm_kernel_name(),
        "openmp": bool(_core.openmp_enabled()),
        "threads": get_num_threads(),
    }
