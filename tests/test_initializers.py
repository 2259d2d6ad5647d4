"""Initializers: Keras's formulas (statistics and bounds), determinism by (seed, stream)."""

import math

import numpy as np
import pytest

import lamina as lm
from lamina import _core

N = 200_000
FAN_IN, FAN_OUT = 120, 280
TRUNC_STD = 0.87962566103423978  # std of a unit normal truncated to [-2, 2]

# name -> variance Keras's VarianceScaling aims at
VARIANCE = {
    "glorot_uniform": 2.0 / (FAN_IN + FAN_OUT),
    "glorot_normal": 2.0 / (FAN_IN + FAN_OUT),
    "he_uniform": 2.0 / FAN_IN,
    "he_normal": 2.0 / FAN_IN,
    "lecun_uniform": 1.0 / FAN_IN,
    "lecun_normal": 1.0 / FAN_IN,
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(VARIANCE))
def test_variance_scaling_initializer_has_keras_mean_variance_and_bounds(name, dtype):
    w = _core.initialize(_core.InitKind[name], N, FAN_IN, FAN_OUT, seed=3, stream=1, dtype=dtype).astype(np.float64)
    assert w.shape == (N,) and np.all(np.isfinite(w))
    var = VARIANCE[name]
    std = math.sqrt(var)
    assert abs(w.mean()) < 5 * std / math.sqrt(N)
    assert w.var() == pytest.approx(var, rel=0.02)
    if name.endswith("uniform"):
        limit = math.sqrt(3 * var)  # e.g. glorot_uniform: sqrt(6 / (fan_in + fan_out))
        if name == "glorot_uniform":
            assert limit == pytest.approx(math.sqrt(6 / (FAN_IN + FAN_OUT)))
        assert np.abs(w).max() <= limit * (1 + 1e-6)
        assert np.abs(w).max() > 0.999 * limit  # the whole interval is used
        hist, _ = np.histogram(w, bins=10, range=(-limit, limit))
        assert hist.min() > 0.9 * N / 10  # flat
    else:
        # Truncated normal: stddev sqrt(var) / 0.8796, cut at two of those stddevs.
        cut = 2 * std / TRUNC_STD
        assert np.abs(w).max() <= cut * (1 + 1e-6)
        assert np.abs(w).max() > 0.99 * cut
        assert np.mean(np.abs(w) < std / TRUNC_STD) == pytest.approx(0.6827 / 0.9545, abs=0.01)


@pytest.mark.parametrize("name,value,expected", [("zeros", 0.0, 0.0), ("ones", 0.0, 1.0), ("constant", -0.25, -0.25)])
def test_constant_initializers_fill_every_element(name, value, expected):
    for dtype in ("float32", "float64"):
        w = _core.initialize(_core.InitKind[name], 1000, 10, 100, value=value, seed=1, dtype=dtype)
        assert w.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(w, expected)


def test_same_seed_and_stream_give_the_same_numbers_other_streams_or_seeds_do_not():
    a = _core.initialize(_core.InitKind.he_normal, 5000, 50, 10, seed=42, stream=3)
    np.testing.assert_array_equal(a, _core.initialize(_core.InitKind.he_normal, 5000, 50, 10, seed=42, stream=3))
    other_stream = _core.initialize(_core.InitKind.he_normal, 5000, 50, 10, seed=42, stream=4)
    other_seed = _core.initialize(_core.InitKind.he_normal, 5000, 50, 10, seed=43, stream=3)
    assert np.mean(a == other_stream) < 0.01
    assert np.mean(a == other_seed) < 0.01
    # A prefix does not depend on how many numbers are drawn (counter-based).
    np.testing.assert_array_equal(_core.initialize(_core.InitKind.he_normal, 100, 50, 10, seed=42, stream=3), a[:100])


def test_float32_draws_are_the_float64_draws_rounded():
    a64 = _core.initialize(_core.InitKind.glorot_uniform, 1000, 7, 9, seed=5, stream=2, dtype="float64")
    a32 = _core.initialize(_core.InitKind.glorot_uniform, 1000, 7, 9, seed=5, stream=2, dtype="float32")
    np.testing.assert_array_equal(a32, a64.astype(np.float32))


def test_model_layers_use_the_requested_initializers_and_distinct_streams():
    model = lm.Sequential([
        lm.layers.Dense(300, kernel_initializer="he_normal", bias_initializer=lm.initializers.Constant(0.5),
                        input_shape=(200,)),
        lm.layers.Dense(300, kernel_initializer="glorot_uniform", bias_initializer="ones"),
        lm.layers.Dense(300, kernel_initializer="glorot_uniform"),
    ], seed=11, dtype="float64")
    model.build()
    first, second, third = model.layers
    assert first.kernel.var() == pytest.approx(2.0 / 200, rel=0.03)
    assert np.abs(first.kernel).max() <= 2 * math.sqrt(2.0 / 200) / TRUNC_STD * (1 + 1e-9)
    np.testing.assert_array_equal(first.bias, 0.5)
    limit = math.sqrt(6 / 600)
    assert np.abs(second.kernel).max() <= limit and second.kernel.var() == pytest.approx(limit ** 2 / 3, rel=0.03)
    np.testing.assert_array_equal(second.bias, 1.0)
    np.testing.assert_array_equal(third.bias, 0.0)
    # Same shapes and initializer, different layers: different numbers.
    assert np.mean(second.kernel == third.kernel) < 0.01
    twin = lm.Sequential([lm.layers.Dense(300, kernel_initializer="he_normal", input_shape=(200,))], seed=11,
                         dtype="float64")
    twin.build()
    np.testing.assert_array_equal(twin.layers[0].kernel, first.kernel)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fixed_scale_initializers_draw_from_their_documented_distributions(dtype):
    n = 200_000
    normal = lm._core.initialize(_core.InitKind.random_normal, n, 10, 10, value=0.5, value2=2.0, seed=3, dtype=dtype)
    assert normal.mean() == pytest.approx(0.5, abs=0.02) and normal.std() == pytest.approx(2.0, rel=0.01)
    uniform = lm._core.initialize(_core.InitKind.random_uniform, n, 10, 10, value=-3.0, value2=1.0, seed=3, dtype=dtype)
    assert uniform.min() >= -3.0 and uniform.max() < 1.0 and uniform.mean() == pytest.approx(-1.0, abs=0.02)
    truncated = lm._core.initialize(_core.InitKind.truncated_normal, n, 10, 10, value=0.0, value2=1.0, seed=3, dtype=dtype)
    assert np.abs(truncated).max() <= 2.0 and truncated.std() == pytest.approx(0.8796, rel=0.01)


def test_fixed_scale_initializer_objects_reach_the_layer():
    model = lm.Sequential([lm.layers.Dense(400, input_shape=(300,),
                                           kernel_initializer=lm.initializers.RandomNormal(stddev=1.0),
                                           bias_initializer=lm.initializers.RandomUniform(2.0, 3.0))], seed=0)
    kernel, bias = model.get_weights()
    assert kernel.std() == pytest.approx(1.0, rel=0.02)
    assert bias.min() >= 2.0 and bias.max() < 3.0
    with pytest.raises(ValueError, match="maxval"):
        lm.initializers.RandomUniform(1.0, 0.0)
