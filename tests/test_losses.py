"""Loss kernels (value and gradient) against Keras's definitions, written out in float64 numpy.

`_core.loss(_core.Loss[name], p, y, delta, scale)` returns (sum over rows of the per-sample loss,
scale * d(sum)/dp). Per-sample loss: mean over outputs for mse / mae / huber / bce, sum over
classes for the categorical cross-entropies. `_core.fused_loss` works on logits.
"""

import numpy as np
import pytest
from conftest import DTYPES, close

from lamina import _core

EPS = 1e-7  # Keras's backend epsilon: probabilities are clipped to [EPS, 1 - EPS]


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def reference(name, p, y, delta=1.0):
    """(per-row losses, d(sum of rows)/dp) in float64, Keras's formulas."""
    p, y = p.astype(np.float64), y.astype(np.float64)
    cols = p.shape[1]
    e = p - y if name not in ("sparse_categorical_crossentropy",) else None
    if name == "mean_squared_error":
        return (e ** 2).mean(axis=1), 2.0 * e / cols
    if name == "mean_absolute_error":
        return np.abs(e).mean(axis=1), np.sign(e) / cols
    if name == "huber":
        a = np.abs(e)
        rows = np.where(a <= delta, 0.5 * e ** 2, delta * a - 0.5 * delta ** 2).mean(axis=1)
        return rows, np.clip(e, -delta, delta) / cols
    if name == "binary_crossentropy":
        q = np.clip(p, EPS, 1 - EPS)
        rows = -(y * np.log(q) + (1 - y) * np.log(1 - q)).mean(axis=1)
        inside = (p >= EPS) & (p <= 1 - EPS)
        return rows, np.where(inside, (q - y) / (q * (1 - q)), 0.0) / cols
    if name == "categorical_crossentropy":
        q = np.clip(p, EPS, 1 - EPS)
        return -(y * np.log(q)).sum(axis=1), np.where((p >= EPS) & (p <= 1 - EPS), -y / q, 0.0)
    if name == "sparse_categorical_crossentropy":
        labels = y[:, 0].astype(int)
        q = np.clip(p, EPS, 1 - EPS)
        rows = -np.log(q[np.arange(len(labels)), labels])
        grad = np.zeros_like(p)
        grad[np.arange(len(labels)), labels] = -1.0 / q[np.arange(len(labels)), labels]
        return rows, grad
    raise AssertionError(name)


def _problem(name, rng, dtype, rows=6, cols=4):
    if name in ("mean_squared_error", "mean_absolute_error", "huber"):
        p = rng.standard_normal((rows, cols)) * 1.5
        y = rng.standard_normal((rows, cols))
    elif name == "binary_crossentropy":
        p = rng.uniform(0.02, 0.98, (rows, cols))
        y = rng.uniform(0.0, 1.0, (rows, cols))
        y[0] = np.round(y[0])
    elif name == "categorical_crossentropy":
        p = _softmax(rng.standard_normal((rows, cols)))
        y = np.eye(cols)[rng.integers(0, cols, rows)]
        y[1] = _softmax(rng.standard_normal((1, cols)))  # soft targets are allowed too
    else:
        p = _softmax(rng.standard_normal((rows, cols)))
        y = rng.integers(0, cols, (rows, 1)).astype(np.float64)
    return p.astype(dtype), y.astype(dtype)


NAMES = ["mean_squared_error", "mean_absolute_error", "huber", "binary_crossentropy",
         "categorical_crossentropy", "sparse_categorical_crossentropy"]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", NAMES)
def test_loss_value_and_scaled_gradient_match_keras_definition(name, dtype, rng):
    p, y = _problem(name, rng, dtype)
    delta = 0.7
    scale = 1.0 / p.shape[0]
    value, grad = _core.loss(_core.Loss[name], p, y, delta=delta, scale=scale)
    rows, dref = reference(name, p, y, delta)
    assert grad.dtype == dtype and grad.shape == p.shape
    np.testing.assert_allclose(value, rows.sum(), rtol=1e-5 if dtype == np.float32 else 1e-12)
    close(grad, scale * dref, dtype, rtol_scale=5)


@pytest.mark.parametrize("name", ["mean_squared_error", "huber", "binary_crossentropy",
                                  "categorical_crossentropy", "sparse_categorical_crossentropy"])
def test_loss_gradient_matches_finite_differences_of_its_value(name, rng):
    p, y = _problem(name, rng, np.float64, rows=3, cols=3)
    _, grad = _core.loss(_core.Loss[name], p, y, delta=0.7, scale=1.0)
    h = 1e-6
    numeric = np.zeros_like(p)
    for idx in np.ndindex(*p.shape):
        pp, pm = p.copy(), p.copy()
        pp[idx] += h
        pm[idx] -= h
        numeric[idx] = (_core.loss(_core.Loss[name], pp, y, delta=0.7)[0] - _core.loss(_core.Loss[name], pm, y, delta=0.7)[0]) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


def test_huber_is_quadratic_inside_delta_and_linear_outside():
    p = np.array([[0.1, -0.5, 3.0, -4.0]])
    y = np.zeros_like(p)
    value, grad = _core.loss(_core.Loss.huber, p, y, delta=1.0)
    np.testing.assert_allclose(value, np.mean([0.005, 0.125, 2.5, 3.5]), rtol=1e-14)
    np.testing.assert_allclose(grad, [[0.1 / 4, -0.5 / 4, 1 / 4, -1 / 4]], rtol=1e-14)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_binary_crossentropy_clips_probabilities_at_1e_minus_7(dtype):
    p = np.array([[0.0, 1.0, 0.0, 1.0]], dtype=dtype)
    y = np.array([[1.0, 0.0, 0.0, 1.0]], dtype=dtype)
    value, grad = _core.loss(_core.Loss.binary_crossentropy, p, y)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    q = np.clip(p.astype(np.float64), EPS, 1 - EPS)
    if dtype == np.float32:  # 1 - 1e-7 is not representable: the clip happens in float32
        q = np.clip(p, np.float32(EPS), np.float32(1) - np.float32(EPS)).astype(np.float64)
    want = -(y * np.log(q) + (1 - y) * np.log(1 - q)).mean()
    np.testing.assert_allclose(value, want, rtol=1e-5)
    np.testing.assert_allclose(value, 2 * -np.log(EPS) / 4, rtol=2e-2)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_categorical_crossentropies_clip_zero_probabilities(dtype):
    p = np.array([[0.0, 1.0, 0.0]], dtype=dtype)
    value, grad = _core.loss(_core.Loss.categorical_crossentropy, p, np.array([[1.0, 0.0, 0.0]], dtype=dtype))
    np.testing.assert_allclose(value, -np.log(EPS), rtol=1e-5)
    assert np.all(np.isfinite(grad))
    value, grad = _core.loss(_core.Loss.sparse_categorical_crossentropy, p, np.array([[2.0]], dtype=dtype))
    np.testing.assert_allclose(value, -np.log(EPS), rtol=1e-5)
    assert np.all(np.isfinite(grad))


# --- fused forms on logits -----------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", ["categorical_crossentropy", "sparse_categorical_crossentropy"])
def test_fused_softmax_crossentropy_value_equals_unfused_and_gradient_is_p_minus_y(name, dtype, rng):
    rows, cols = 7, 5
    z = (rng.standard_normal((rows, cols)) * 2).astype(dtype)
    labels = rng.integers(0, cols, rows)
    onehot = np.eye(cols)[labels]
    y = (onehot if name == "categorical_crossentropy" else labels[:, None].astype(np.float64)).astype(dtype)
    scale = 1.0 / rows
    value, dz = _core.fused_loss(_core.Loss[name], z, y, scale=scale)
    p = _softmax(z.astype(np.float64))
    unfused, _ = _core.loss(_core.Loss[name], p.astype(dtype), y)
    np.testing.assert_allclose(value, -np.log(p[np.arange(rows), labels]).sum(), rtol=1e-5 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(value, unfused, rtol=1e-5 if dtype == np.float32 else 1e-12)
    close(dz, (p - onehot) * scale, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_fused_softmax_crossentropy_with_soft_targets_has_gradient_p_sum_y_minus_y(dtype, rng):
    z = rng.standard_normal((4, 3)).astype(dtype)
    y = rng.uniform(0, 1, (4, 3)).astype(dtype)  # rows need not sum to 1
    value, dz = _core.fused_loss(_core.Loss.categorical_crossentropy, z, y, scale=0.5)
    z64, y64 = z.astype(np.float64), y.astype(np.float64)
    p = _softmax(z64)
    np.testing.assert_allclose(value, -(y64 * np.log(p)).sum(), rtol=1e-5 if dtype == np.float32 else 1e-12)
    close(dz, 0.5 * (p * y64.sum(axis=1, keepdims=True) - y64), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_fused_sigmoid_binary_crossentropy_value_equals_unfused_and_gradient_is_p_minus_y(dtype, rng):
    rows, cols = 6, 3
    z = (rng.standard_normal((rows, cols)) * 2).astype(dtype)
    y = rng.uniform(0, 1, (rows, cols)).astype(dtype)
    value, dz = _core.fused_loss(_core.Loss.binary_crossentropy, z, y, scale=0.25)
    p = _sigmoid(z.astype(np.float64))
    y64 = y.astype(np.float64)
    want = -(y64 * np.log(p) + (1 - y64) * np.log(1 - p)).mean(axis=1).sum()
    np.testing.assert_allclose(value, want, rtol=1e-5 if dtype == np.float32 else 1e-12)
    unfused, _ = _core.loss(_core.Loss.binary_crossentropy, p.astype(dtype), y)
    np.testing.assert_allclose(value, unfused, rtol=1e-4 if dtype == np.float32 else 1e-12)
    close(dz, 0.25 * (p - y64) / cols, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_fused_losses_stay_finite_and_exact_for_huge_logits(dtype):
    z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, -1e4], [1e4, 1e4, -1e4]], dtype=dtype)
    labels = np.array([1, 1, 2])
    onehot = np.eye(3)[labels]
    for name, y in (("categorical_crossentropy", onehot), ("sparse_categorical_crossentropy", labels[:, None])):
        value, dz = _core.fused_loss(_core.Loss[name], z, y.astype(dtype), scale=1.0)
        z64 = z.astype(np.float64)
        lse = z64.max(axis=1) + np.log(np.exp(z64 - z64.max(axis=1, keepdims=True)).sum(axis=1))
        want = (lse - z64[np.arange(3), labels]).sum()
        assert np.isfinite(value) and np.all(np.isfinite(dz))
        np.testing.assert_allclose(value, want, rtol=1e-6)
        close(dz, _softmax(z64) - onehot, dtype)
    yb = np.array([[0, 1, 1], [1, 1, 0], [1, 0, 0]], dtype=dtype)
    value, dz = _core.fused_loss(_core.Loss.binary_crossentropy, z, yb, scale=1.0)
    z64 = z.astype(np.float64)
    want = (np.maximum(z64, 0) - z64 * yb + np.log1p(np.exp(-np.abs(z64)))).mean(axis=1).sum()
    assert np.isfinite(value) and np.all(np.isfinite(dz))
    np.testing.assert_allclose(value, want, rtol=1e-6)
    close(dz, (_sigmoid(z64) - yb) / 3, dtype)


def test_fused_loss_refuses_regression_losses_and_core_refuses_bad_labels():
    with pytest.raises(ValueError, match="mean_squared_error"):
        _core.fused_loss(_core.Loss.mean_squared_error, np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="label out of range"):
        _core.loss(_core.Loss.sparse_categorical_crossentropy, np.full((2, 3), 1 / 3), np.array([[0.0], [3.0]]))
    with pytest.raises(TypeError):  # the core takes the typed enum only
        _core.loss("mean_squared_error", np.zeros((2, 2)), np.zeros((2, 2)))
