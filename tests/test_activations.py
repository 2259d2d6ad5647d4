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


def _float32_sample():
    """Every 512th float32 bit pattern that is finite: both signs, subnormals, 0 and the extremes."""
    x = np.arange(0, 2**32, 2**9, dtype=np.uint64).astype(np.uint32).view(np.float32)
    return x[np.isfinite(x)].reshape(1, -1)


def _ulp_error(got, want):
    """|got - want| in units of the float32 spacing at want (the subnormal spacing at least)."""
    spacing = np.spacing(np.abs(want.astype(np.float32))).astype(np.float64)
    spacing = np.maximum(spacing, float(np.finfo(np.float32).smallest_subnormal))
    return np.abs(got.astype(np.float64) - want) / spacing


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "elu"])
def test_float32_tanh_sigmoid_elu_are_within_3_ulp_of_float64_over_the_whole_float_range(name):
    # float32 runs them through branchless exponentials (branchless_math.h), which vectorize; the
    # bound is what that method gives, where libm's scalar calls gave 1 ulp.
    x = _float32_sample()
    z = x.astype(np.float64)
    e = np.exp(-np.abs(z))  # never overflows
    want = {"tanh": np.tanh(z), "sigmoid": np.where(z >= 0, 1 / (1 + e), e / (1 + e)),
            "elu": np.where(z > 0, z, np.expm1(np.minimum(z, 0.0)))}[name]
    got = _core.activation_forward(_core.Activation[name], x)
    err = _ulp_error(got, want)
    worst = int(np.argmax(err))
    assert err.max() <= 3.0, (x[0, worst], got[0, worst], want[0, worst])


def test_float32_tanh_keeps_the_sign_of_zero_and_saturates_to_exactly_one():
    z = np.array([[-0.0, 0.0, 9.0, -9.0, 20.0, -1e30, 3e38]], dtype=np.float32)
    a = _core.activation_forward(_core.Activation.tanh, z)
    assert np.signbit(a[0, 0]) and not np.signbit(a[0, 1])
    np.testing.assert_array_equal(a[0, 2:], [1, -1, 1, -1, 1])


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "elu", "softplus"])
def test_float32_activation_of_a_value_has_the_same_bits_alone_and_inside_a_long_array(name, rng):
    # A long array runs through the vector loop, a single value through its scalar remainder: the
    # two must agree bit for bit, or a row's prediction would depend on the batch around it.
    z = (rng.standard_normal((1, 1029)) * 4).astype(np.float32)
    act = _core.Activation[name]
    together = _core.activation_forward(act, z)
    alone = np.array([_core.activation_forward(act, z[:, i:i + 1])[0, 0] for i in range(z.shape[1])])
    np.testing.assert_array_equal(together[0], alone)
    da = np.ones_like(z)
    together_back = _core.activation_backward(act, da, z, together)
    alone_back = np.array([_core.activation_backward(act, da[:, i:i + 1], z[:, i:i + 1], together[:, i:i + 1])[0, 0]
                           for i in range(z.shape[1])])
    np.testing.assert_array_equal(together_back[0], alone_back)
