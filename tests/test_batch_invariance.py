"""A row's result does not depend on the batch it is computed in.

The forward product C = X W picks its path by the batch size and the share of zeros in X
(small-m, row-vector, blocked, sparse-row, and the transposed product for narrow layers), but
every path sums each element of C in the same order over the same depth blocks, so row i of
gemm(X) is bit-identical to gemm(X[i:i+1]) and predict(x)[i] to predict(x[i:i+1]), for float32
and float64, dense and mostly-zero inputs, and any thread count.
"""

import numpy as np
import pytest

import lamina as lm
from lamina import _core

DTYPES = (np.float32, np.float64)
# (n, k): narrow layers (the transposed product), one micro-tile, one row-vector block, wide;
# k below, at and past one depth block (256) and Fashion-MNIST's 784.
SHAPES = [(1, 7), (10, 512), (16, 257), (17, 100), (64, 784), (70, 255), (200, 513)]
BATCHES = (1, 2, 5, 6, 16, 17, 40, 300)


def bits(a):
    """The array's raw bits, so that equality means bit-identity (signed zeros, NaN payloads)."""
    a = np.ascontiguousarray(a)
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


def inputs(rng, m, k, dtype, sparse):
    x = rng.standard_normal((m, k)).astype(dtype)
    if sparse:  # mostly zero, like images: most rows take the sparse-row path at m >= 8
        x[rng.random(x.shape) < 0.7] = 0
        x[3, :] = 0  # an all-zero row
    return x


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n,k", SHAPES)
def test_gemm_row_is_bit_identical_whatever_the_batch(n, k, dtype, sparse, threads, rng, restore_threads):
    lm.set_num_threads(threads)
    x = inputs(rng, max(BATCHES), k, dtype, sparse)
    w = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(dtype)
    full = np.empty((x.shape[0], n), dtype)
    _core.gemm(False, False, 1.0, x, w, 0.0, full)
    for m in BATCHES:
        for start in (0, x.shape[0] - m):
            c = np.full((m, n), np.nan, dtype)
            _core.gemm(False, False, 1.0, x[start:start + m], w, 0.0, c)
            assert np.array_equal(bits(c), bits(full[start:start + m])), (m, start)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_gemm_row_is_bit_identical_whatever_the_batch_with_alpha_and_beta(dtype, rng):
    # The blocks combine as C = alpha s_0 + beta C, then C + alpha s_b: the same in every path.
    k, n = 600, 40
    x = inputs(rng, 100, k, dtype, sparse=False)
    w = rng.standard_normal((k, n)).astype(dtype)
    c0 = rng.standard_normal((100, n)).astype(dtype)
    full = c0.copy()
    _core.gemm(False, False, 0.5, x, w, -1.5, full)
    for i in (0, 7, 99):
        c = c0[i:i + 1].copy()
        _core.gemm(False, False, 0.5, x[i:i + 1], w, -1.5, c)
        assert np.array_equal(bits(c), bits(full[i:i + 1])), i


def _model(dtype, inputs_, outputs, activation):
    model = lm.Sequential([lm.layers.Dense(48, activation="relu", input_shape=(inputs_,)),
                           lm.layers.Dense(33, activation="tanh"),
                           lm.layers.Dense(outputs, activation=activation)], seed=3, dtype=dtype)
    model.compile(optimizer="sgd", loss="mse")
    return model


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("outputs,activation", [(10, "softmax"), (1, None), (70, "linear")])
def test_predict_row_is_bit_identical_whatever_the_batch(outputs, activation, dtype, sparse, threads, rng,
                                                        restore_threads):
    lm.set_num_threads(threads)
    x = inputs(rng, 260, 300, np.dtype(dtype).type, sparse)
    model = _model(dtype, 300, outputs, activation)
    full = model.predict(x)
    for i in (0, 3, 5, 17, 259):
        assert np.array_equal(bits(model.predict(x[i:i + 1])), bits(full[i:i + 1])), i
    for m in (2, 7, 16, 20, 100):
        assert np.array_equal(bits(model.predict(x[-m:])), bits(full[-m:])), m
