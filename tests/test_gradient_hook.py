"""The training step in phases: the gradient hook sees (and may change) each step's whole
gradient block before clipping and the update, the fused small-batch sink and the storing sink
give the same bits, and grads() is never stale after a fused step."""

import numpy as np
import pytest

import lamina as lm

BATCHES = [1, 8, 16, 17, 64]
OPTIMIZERS = {
    "rmsprop": lambda: lm.optimizers.RMSprop(1e-3),  # float32: the batch-1 row kernel, zero-row skips
    "adam": lambda: lm.optimizers.Adam(1e-3),
    "sgd": lambda: lm.optimizers.SGD(0.05),
    "sgd_momentum": lambda: lm.optimizers.SGD(0.05, momentum=0.9),
}


def _data(dtype="float32", rows=64):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, 12))
    x[rng.random(x.shape) < 0.5] = 0.0
    x[:, 3] = 0.0  # an input that is always zero: its kernel row is skipped by the fused sink
    return x.astype(dtype), rng.standard_normal((rows, 3)).astype(dtype)


def _model(optimizer, dtype="float32"):
    model = lm.Sequential([lm.layers.Dense(70, activation="relu", input_shape=(12,)),
                           lm.layers.Dense(3)], seed=2, dtype=dtype)
    model.compile(optimizer(), "mse")
    return model


def _numpy_gradient(weights, x, y):
    W1, b1, W2, b2 = (w.astype(np.float64) for w in weights)
    x, y = x.astype(np.float64), y.astype(np.float64)
    z = x @ W1 + b1
    h = np.maximum(z, 0.0)
    out = h @ W2 + b2
    dout = 2.0 * (out - y) / y.size  # mean over rows and outputs
    dz = (dout @ W2.T) * (z > 0)
    return np.concatenate([(x.T @ dz).ravel(), dz.sum(0), (h.T @ dout).ravel(), dout.sum(0)])


def test_recorder_hook_sees_the_float64_reference_gradient_and_what_grads_holds_afterwards():
    x, y = _data("float64", rows=8)
    model = _model(OPTIMIZERS["sgd"], "float64")
    seen = []
    model.set_gradient_hook(lambda g, step: seen.append((g.copy(), step)))
    weights = model.get_weights()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert [s for _, s in seen] == [0]
    np.testing.assert_allclose(seen[0][0], _numpy_gradient(weights, x, y), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(seen[0][0], model._net.gradients())


def test_hook_scaling_the_gradient_by_zero_leaves_sgd_weights_bit_unchanged():
    x, y = _data()
    model = _model(OPTIMIZERS["sgd"])
    before = model.get_weights()
    model.set_gradient_hook(lambda g, step: g.__imul__(0))
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    for got, want in zip(model.get_weights(), before):
        np.testing.assert_array_equal(got, want)
    assert model.optimizer.iterations == 16


@pytest.mark.parametrize("batch_size", BATCHES)
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_and_storing_steps_give_identical_bits_with_and_without_a_no_op_hook(name, batch_size, dtype):
    x, y = _data(dtype)
    runs = []
    for hook in (None, lambda g, step: None):
        model = _model(OPTIMIZERS[name], dtype)
        model.set_gradient_hook(hook)
        model.fit(x, y, batch_size=batch_size, epochs=2, verbose=0)
        runs.append((model.get_weights(), model._net.optimizer_slots(), model._net.gradients().copy()))
    (w0, s0, g0), (w1, s1, g1) = runs
    for a, b in zip(w0 + s0, w1 + s1):
        np.testing.assert_array_equal(a, b)
    # grads() after a fused step is formed on demand: the same block the storing step kept.
    np.testing.assert_array_equal(g0, g1)


def test_exception_in_the_hook_propagates_and_leaves_that_step_undone():
    x, y = _data()
    reference = _model(OPTIMIZERS["adam"])
    reference.fit(x[:8], y[:8], batch_size=4, epochs=1, shuffle=False, verbose=0)  # two steps

    model = _model(OPTIMIZERS["adam"])

    def fail_on_third_step(g, step):
        if step == 2:
            raise RuntimeError("hook refused step 2")

    model.set_gradient_hook(fail_on_third_step)
    with pytest.raises(RuntimeError, match="hook refused step 2"):
        model.fit(x[:12], y[:12], batch_size=4, epochs=1, shuffle=False, verbose=0)
    for got, want in zip(model.get_weights() + model._net.optimizer_slots(),
                         reference.get_weights() + reference._net.optimizer_slots()):
        np.testing.assert_array_equal(got, want)
    assert model.optimizer.iterations == 2 and model._net.steps == 2


def test_hook_must_be_callable_and_none_removes_it():
    model = _model(OPTIMIZERS["sgd"])
    with pytest.raises(TypeError, match="hook must be callable"):
        model.set_gradient_hook(3)
    calls = []
    model.set_gradient_hook(lambda g, step: calls.append(step))
    model.set_gradient_hook(None)
    x, y = _data()
    model.fit(x, y, batch_size=32, verbose=0)
    assert calls == []


def test_hook_set_before_build_is_installed_when_the_network_is_built():
    model = lm.Sequential([lm.layers.Dense(3)], seed=1)
    calls = []
    model.set_gradient_hook(lambda g, step: calls.append(g.size))
    model.compile("sgd", "mse")
    x, y = _data()
    model.fit(x, y, batch_size=32, verbose=0)
    assert calls == [12 * 3 + 3] * 2


@pytest.mark.parametrize("frozen", [False, True])
@pytest.mark.parametrize("batch_size", [1, 4])
def test_regularized_kernels_fuse_with_the_same_bits_and_leave_grads_current(batch_size, frozen):
    x, y = _data()
    runs = []
    for hook in (None, lambda g, step: None):
        model = lm.Sequential([lm.layers.Dense(70, activation="relu", input_shape=(12,),
                                               kernel_regularizer=lm.regularizers.L1L2(l1=1e-3, l2=1e-2)),
                               lm.layers.Dense(3, kernel_regularizer="l2")], seed=2)
        model.compile(lm.optimizers.Adam(1e-3), "mse")
        model.layers[0].trainable = not frozen
        model.set_gradient_hook(hook)
        model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
        runs.append(model.get_weights() + model._net.optimizer_slots() + [model._net.gradients().copy()])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
