"""Shared helpers for the core tests: seeded generators, dtype tolerances, tiny models."""

import numpy as np
import pytest

import lamina as lm

DTYPES = (np.float32, np.float64)
# Tolerances for a kernel computed in `dtype` against a float64 numpy reference.
RTOL = {np.float32: 2e-5, np.float64: 1e-12}
ATOL = {np.float32: 1e-6, np.float64: 1e-13}


def close(got, want, dtype, rtol_scale=1.0):
    """assert_allclose with the tolerance of `dtype` (want is a float64 reference)."""
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), want,
                               rtol=RTOL[dtype] * rtol_scale, atol=ATOL[dtype] * rtol_scale)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def restore_threads():
    """Puts the core's thread count back after a test that changes it."""
    before = lm.get_num_threads()
    yield
    lm.set_num_threads(before)


def small_regression_model(seed=0, dtype="float32", optimizer="sgd", units=4, inputs=3, outputs=2):
    model = lm.Sequential([lm.layers.Dense(units, activation="tanh", input_shape=(inputs,)),
                           lm.layers.Dense(outputs)], seed=seed, dtype=dtype)
    model.compile(optimizer=optimizer, loss="mse")
    return model
