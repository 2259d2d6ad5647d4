"""dense_forward / dense_backward against numpy: z = x @ W + b; dW = x.T @ dz, db = dz.sum(0), dx = dz @ W.T."""

import numpy as np
import pytest

from lamina import _core

DTYPES = (np.float32, np.float64)
SHAPES = [(1, 1, 1), (6, 3, 2), (10, 7, 17), (64, 33, 10), (150, 70, 145)]  # (batch, inputs, units)


def _tolerance(dtype, k):
    return dict(rtol=(k + 2) * np.finfo(dtype).eps * 4, atol=(k + 2) * np.finfo(dtype).eps * 4)


def _data(rng, batch, inputs, units, dtype):
    x = rng.standard_normal((batch, inputs)).astype(dtype)
    W = rng.standard_normal((inputs, units)).astype(dtype)
    b = rng.standard_normal(units).astype(dtype)
    return x, W, b


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("batch,inputs,units", SHAPES)
def test_dense_forward_is_x_at_w_plus_b(batch, inputs, units, dtype, rng):
    x, W, b = _data(rng, batch, inputs, units, dtype)
    x64, W64 = x.astype(np.float64), W.astype(np.float64)
    z = _core.dense_forward(x, W, b)
    assert z.dtype == dtype and z.shape == (batch, units)
    # Scale-aware check: error relative to |x| @ |W| + |b|.
    bound = np.abs(x64) @ np.abs(W64) + np.abs(b)
    err = np.abs(z - (x64 @ W64 + b))
    assert np.all(err <= (inputs + 2) * np.finfo(dtype).eps * bound + np.finfo(dtype).tiny)
    z_nobias = _core.dense_forward(x, W)
    err = np.abs(z_nobias - x64 @ W64)
    assert np.all(err <= (inputs + 2) * np.finfo(dtype).eps * (np.abs(x64) @ np.abs(W64)) + np.finfo(dtype).tiny)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("batch,inputs,units", SHAPES)
def test_dense_backward_gives_dx_dw_db_like_numpy(batch, inputs, units, dtype, rng):
    x, W, _ = _data(rng, batch, inputs, units, dtype)
    dz = rng.standard_normal((batch, units)).astype(dtype)
    x64, W64, dz64 = x.astype(np.float64), W.astype(np.float64), dz.astype(np.float64)
    dx, dW, db = _core.dense_backward(dz, x, W)
    assert dx.shape == x.shape and dW.shape == W.shape and db.shape == (units,)
    assert dx.dtype == dW.dtype == db.dtype == dtype
    eps = np.finfo(dtype).eps
    assert np.all(np.abs(dx - dz64 @ W64.T) <= (units + 2) * eps * (np.abs(dz64) @ np.abs(W64.T)) + 1e-30)
    assert np.all(np.abs(dW - x64.T @ dz64) <= (batch + 2) * eps * (np.abs(x64.T) @ np.abs(dz64)) + 1e-30)
    assert np.all(np.abs(db - dz64.sum(axis=0)) <= (batch + 2) * eps * np.abs(dz64).sum(axis=0) + 1e-30)


def test_dense_backward_does_not_depend_on_earlier_calls(rng):
    # The outputs are fresh arrays: nothing left over from a previous call may leak in.
    x, W, _ = _data(rng, 9, 5, 4, np.float64)
    dz = rng.standard_normal((9, 4))
    first = _core.dense_backward(dz, x, W)
    for _ in range(3):
        _core.dense_backward(dz * 100, x, W)
        again = _core.dense_backward(dz, x, W)
        for a, b in zip(first, again):
            np.testing.assert_array_equal(a, b)


def test_dense_forward_and_backward_match_finite_differences_in_float64(rng):
    x, W, b = _data(rng, 4, 3, 2, np.float64)
    g = rng.standard_normal((4, 2))  # J = sum(g * (x @ W + b))
    dx, dW, db = _core.dense_backward(g, x, W)
    h = 1e-6

    def J(x_, W_, b_):
        return float(np.sum(g * _core.dense_forward(x_, W_, b_)))

    for arr, grad in ((x, dx), (W, dW), (b, db)):
        num = np.zeros_like(arr)
        for idx in np.ndindex(*arr.shape):
            old = arr[idx]
            arr[idx] = old + h
            up = J(x, W, b)
            arr[idx] = old - h
            down = J(x, W, b)
            arr[idx] = old
            num[idx] = (up - down) / (2 * h)
        np.testing.assert_allclose(grad, num, rtol=1e-7, atol=1e-9)


def test_dense_kernels_check_shapes():
    with pytest.raises(ValueError, match="W must have x.shape\\[1\\] rows"):
        _core.dense_forward(np.zeros((2, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="b must have shape"):
        _core.dense_forward(np.zeros((2, 3)), np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError):
        _core.dense_backward(np.zeros((2, 2)), np.zeros((3, 3)), np.zeros((3, 2)))


# --- bias and activation in the GEMM's tile epilogue ----------------------------------------------
# Batches above 16 rows go through the blocked GEMM, which applies bias and activation to each
# tile as it finishes; smaller ones apply them once after the product. Both must give z = x W + b
# and a = f(z) exactly as the whole-array activation kernel computes f.

ELEMENTWISE = ["linear", "relu", "leaky_relu", "elu", "sigmoid", "tanh", "softplus", "gelu"]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("batch,inputs,units", [(1, 5, 3), (16, 9, 70), (17, 33, 21), (150, 70, 145), (300, 260, 40)])
@pytest.mark.parametrize("activation", ELEMENTWISE)
def test_dense_forward_epilogue_gives_z_and_activation_of_z_on_every_gemm_path(activation, batch, inputs, units,
                                                                               dtype, rng):
    x, W, b = _data(rng, batch, inputs, units, dtype)
    z, a = _core.dense_forward(x, W, b, activation=_core.Activation[activation])
    np.testing.assert_array_equal(z, _core.dense_forward(x, W, b))
    np.testing.assert_array_equal(a, _core.activation_forward(_core.Activation[activation], z))
    x64, W64 = x.astype(np.float64), W.astype(np.float64)
    bound = np.abs(x64) @ np.abs(W64) + np.abs(b)
    assert np.all(np.abs(z - (x64 @ W64 + b)) <= (inputs + 2) * np.finfo(dtype).eps * bound + np.finfo(dtype).tiny)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("activation", ELEMENTWISE)
def test_dense_forward_epilogue_on_the_sparse_row_path(activation, dtype, rng):
    # Mostly-zero inputs (like images) of 8 rows or more are multiplied row by row from their
    # nonzeros; the epilogue then runs per chunk of rows and 64-column panel (ragged last one).
    x, W, b = _data(rng, 300, 260, 140, dtype)
    x[rng.random(x.shape) < 0.7] = 0
    z, a = _core.dense_forward(x, W, b, activation=_core.Activation[activation])
    np.testing.assert_array_equal(z, _core.dense_forward(x, W, b))
    np.testing.assert_array_equal(a, _core.activation_forward(_core.Activation[activation], z))
    x64, W64 = x.astype(np.float64), W.astype(np.float64)
    bound = np.abs(x64) @ np.abs(W64) + np.abs(b)
    assert np.all(np.abs(z - (x64 @ W64 + b)) <= 262 * np.finfo(dtype).eps * bound + np.finfo(dtype).tiny)


def test_dense_forward_epilogue_refuses_softmax_and_untyped_names():
    x, W = np.ones((20, 3)), np.ones((3, 4))
    with pytest.raises(ValueError, match="elementwise.*softmax"):
        _core.dense_forward(x, W, None, activation=_core.Activation.softmax)
    with pytest.raises(TypeError):
        _core.dense_forward(x, W, None, activation="relu")


def test_dense_forward_epilogue_without_bias_only_applies_the_activation(rng):
    x, W, _ = _data(rng, 40, 30, 50, np.float32)
    z, a = _core.dense_forward(x, W, None, activation=_core.Activation.relu)
    np.testing.assert_array_equal(z, _core.dense_forward(x, W))
    np.testing.assert_array_equal(a, np.maximum(z, 0))
