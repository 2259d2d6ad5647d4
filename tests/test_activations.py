"""Activation kernels, forward and backward, against float64 numpy references and finite differences."""

import math

import numpy as np
import pytest
from conftest import DTYPES, close

from lamina import _core

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


FORWARD = {
    "linear": lambda z: z,
    "relu": lambda z: np.maximum(z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.2 * z),
    "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0.0))),
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "softmax": _softmax,
    "softplus": lambda z: np.logaddexp(0.0, z),
    "gelu": lambda z: 0.5 * z * (1.0 + _erf(z / math.sqrt(2.0))),
}

# Analytic derivatives f'(z) of the elementwise ones (softmax is handled as a Jacobian product).
DERIVATIVE = {
    "linear": lambda z: np.ones_like(z),
    "relu": lambda z: (z > 0).astype(np.float64),
    "leaky_relu": lambda z: np.where(z > 0, 1.0, 0.2),
    "elu": lambda z: np.where(z > 0, 1.0, np.exp(np.minimum(z, 0.0))),
    "sigmoid": lambda z: _sigmoid(z) * (1.0 - _sigmoid(z)),
    "tanh": lambda z: 1.0 - np.tanh(z) ** 2,
    "softplus": _sigmoid,
    "gelu": lambda z: 0.5 * (1.0 + _erf(z / math.sqrt(2.0))) + z * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi),
}

NAMES = list(FORWARD)


def _reference_backward(name, da, z):
    if name == "softmax":
        a = _softmax(z)
        return a * (da - (da * a).sum(axis=1, keepdims=True))
    return da * DERIVATIVE[name](z)


def _inputs(rng, dtype, rows=7, cols=11, scale=3.0):
    z = rng.standard_normal((rows, cols)) * scale
    z[np.abs(z) < 1e-3] = 0.5  # stay off the kinks of relu / leaky_relu / elu
    return z.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", NAMES)
def test_activation_forward_matches_numpy_float64_reference(name, dtype, rng):
    z = _inputs(rng, dtype)
    a = _core.activation_forward(_core.Activation[name], z)
    assert a.dtype == dtype and a.shape == z.shape
    close(a, FORWARD[name](z.astype(np.float64)), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", NAMES)
def test_activation_backward_matches_numpy_analytic_derivative(name, dtype, rng):
    z = _inputs(rng, dtype)
    da = rng.standard_normal(z.shape).astype(dtype)
    a = _core.activation_forward(_core.Activation[name], z)
    dz = _core.activation_backward(_core.Activation[name], da, z, a)
    assert dz.dtype == dtype and dz.shape == z.shape
    close(dz, _reference_backward(name, da.astype(np.float64), z.astype(np.float64)), dtype, rtol_scale=5)


@pytest.mark.parametrize("name", NAMES)
def test_activation_backward_matches_finite_differences_in_float64(name, rng):
    z = _inputs(rng, np.float64, rows=4, cols=5, scale=2.0)
    da = rng.standard_normal(z.shape)
    dz = _core.activation_backward(_core.Activation[name], da, z, _core.activation_forward(_core.Activation[name], z))
    h = 1e-6
    numeric = np.zeros_like(z)
    for idx in np.ndindex(*z.shape):  # d/dz_idx of sum(da * f(z))
        zp, zm = z.copy(), z.copy()
        zp[idx] += h
        zm[idx] -= h
        numeric[idx] = (np.sum(da * _core.activation_forward(_core.Activation[name], zp))
                        - np.sum(da * _core.activation_forward(_core.Activation[name], zm))) / (2 * h)
    np.testing.assert_allclose(dz, numeric, rtol=1e-6, atol=1e-8)


def test_softmax_rows_sum_to_one_and_are_shift_invariant(rng):
    z = rng.standard_normal((5, 9)) * 4
    a = _core.activation_forward(_core.Activation.softmax, z)
    np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(_core.activation_forward(_core.Activation.softmax, z + 123.0), a, rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", NAMES)
def test_activation_stays_finite_and_correct_for_huge_inputs(name, dtype):
    z = np.array([[-1e4, -100.0, -30.0, 0.0, 30.0, 100.0, 1e4]], dtype=dtype)
    a = _core.activation_forward(_core.Activation[name], z)
    assert np.all(np.isfinite(a)), a
    close(a, FORWARD[name](z.astype(np.float64)), dtype)
    dz = _core.activation_backward(_core.Activation[name], np.ones_like(z), z, a)
    assert np.all(np.isfinite(dz)), dz


def test_relu_and_leaky_relu_derivative_at_zero_follows_keras_convention():
    # Keras (and TF) take the left derivative at 0: relu'(0) = 0, leaky_relu'(0) = slope.
    z = np.zeros((1, 3))
    da = np.ones((1, 3))
    np.testing.assert_array_equal(_core.activation_backward(_core.Activation.relu, da, z, _core.activation_forward(_core.Activation.relu, z)), 0.0)
    np.testing.assert_array_equal(
        _core.activation_backward(_core.Activation.leaky_relu, da, z, _core.activation_forward(_core.Activation.leaky_relu, z)), 0.2)


def test_core_activation_entry_takes_the_typed_enum_not_a_name():
    with pytest.raises(TypeError):
        _core.activation_forward("relu", np.zeros((2, 2)))
    assert not hasattr(_core.Activation, "swish")


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "elu", "sigmoid", "tanh", "softplus", "gelu", "linear"])
def test_nan_passes_through_every_elementwise_activation_so_divergence_stays_visible(name):
    z = np.array([[np.nan, -1.0, 2.0]])
    a = _core.activation_forward(_core.Activation[name], z)
    assert np.isnan(a[0, 0]) and np.isfinite(a[0, 1:]).all()
