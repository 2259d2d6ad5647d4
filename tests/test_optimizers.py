"""Optimizers: golden values of the first steps against numpy float64 versions of the rules in
python/lamina/optimizers.py, gradient clipping, and the step counter through a model."""

import math

import numpy as np
import pytest

import lamina as lm
from lamina import _core


class Reference:
    """The update rules of optimizers.py's docstrings, in float64 numpy."""

    def __init__(self, kind, config, size):
        self.kind, self.c, self.t = kind, dict(config), 0
        self.m = np.zeros(size)
        self.v = np.zeros(size)
        self.a = np.zeros(size)
        self.vhat = np.zeros(size)
        if kind == "adagrad":
            self.v[:] = self.c.get("initial_accumulator_value", 0.1)

    def clip(self, g, spans):
        c = self.c
        if "clipvalue" in c:
            g = np.clip(g, -c["clipvalue"], c["clipvalue"])
        if "clipnorm" in c:
            g = g.copy()
            for s in spans:
                norm = np.linalg.norm(g[s])
                if norm > c["clipnorm"]:
                    g[s] *= c["clipnorm"] / norm
        if "global_clipnorm" in c:
            norm = np.linalg.norm(g)
            if norm > c["global_clipnorm"]:
                g = g * (c["global_clipnorm"] / norm)
        return g

    def step(self, w, g, spans=None):
        c, kind = self.c, self.kind
        g = self.clip(np.asarray(g, dtype=np.float64), spans or [slice(0, len(g))])
        w = w.astype(np.float64).copy()
        self.t += 1
        lr = c["learning_rate"]
        if kind == "sgd":
            mu = c.get("momentum", 0.0)
            if mu == 0:
                return w - lr * g
            self.m = mu * self.m - lr * g
            return w + (mu * self.m - lr * g if c.get("nesterov") else self.m)
        if kind == "rmsprop":
            rho, mu, eps = c.get("rho", 0.9), c.get("momentum", 0.0), c.get("epsilon", 1e-7)
            self.v = rho * self.v + (1 - rho) * g * g
            denom = self.v
            if c.get("centered"):
                self.a = rho * self.a + (1 - rho) * g
                denom = self.v - self.a ** 2
            step = lr * g / np.sqrt(denom + eps)
            if mu > 0:
                self.m = mu * self.m + step
                return w - self.m
            return w - step
        if kind == "adagrad":
            self.v = self.v + g * g
            return w - lr * g / np.sqrt(self.v + c.get("epsilon", 1e-7))
        if kind in ("adam", "adamw"):
            b1, b2, eps = c.get("beta_1", 0.9), c.get("beta_2", 0.999), c.get("epsilon", 1e-7)
            if kind == "adamw":
                w = w - lr * c.get("weight_decay", 0.004) * w
            alpha = lr * math.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
            self.m = self.m + (g - self.m) * (1 - b1)
            self.v = self.v + (g * g - self.v) * (1 - b2)
            v = self.v
            if c.get("amsgrad"):
                self.vhat = np.maximum(self.vhat, self.v)
                v = self.vhat
            return w - alpha * self.m / (np.sqrt(v) + eps)
        raise AssertionError(kind)


CASES = {
    "sgd_plain": ("sgd", {"learning_rate": 0.1}),
    "sgd_momentum": ("sgd", {"learning_rate": 0.1, "momentum": 0.9}),
    "sgd_nesterov": ("sgd", {"learning_rate": 0.1, "momentum": 0.8, "nesterov": True}),
    "rmsprop_plain": ("rmsprop", {"learning_rate": 0.01, "rho": 0.8, "epsilon": 1e-3}),
    "rmsprop_momentum": ("rmsprop", {"learning_rate": 0.01, "rho": 0.9, "momentum": 0.7, "epsilon": 1e-7}),
    "rmsprop_centered": ("rmsprop", {"learning_rate": 0.01, "rho": 0.85, "centered": True, "epsilon": 1e-3}),
    "rmsprop_centered_momentum": ("rmsprop", {"learning_rate": 0.01, "rho": 0.9, "momentum": 0.5,
                                              "centered": True, "epsilon": 1e-3}),
    "adagrad": ("adagrad", {"learning_rate": 0.05, "initial_accumulator_value": 0.2, "epsilon": 1e-4}),
    "adam": ("adam", {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.95, "epsilon": 1e-4}),
    "adam_amsgrad": ("adam", {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.95, "epsilon": 1e-4, "amsgrad": True}),
    "adamw": ("adamw", {"learning_rate": 0.01, "weight_decay": 0.1, "beta_1": 0.9, "beta_2": 0.99, "epsilon": 1e-6}),
}


def _core_config(kind, config):
    # The typed config the Python optimizer sends, so its defaults are the only ones.
    return lm.optimizers.get(dict(config, name=kind))._core_config()


def _gradients(rng, size, steps=3):
    gs = [rng.standard_normal(size) for _ in range(steps)]
    gs[2][:3] = gs[1][:3] * 0.1  # shrinking gradients make amsgrad's max(v_hat, v) matter
    return gs


@pytest.mark.parametrize("case", sorted(CASES))
def test_optimizer_first_three_steps_match_numpy_golden_values(case, rng):
    kind, config = CASES[case]
    size = 11
    w0 = rng.standard_normal(size)
    grads = _gradients(rng, size)
    ref = Reference(kind, config, size)
    expected, w = [], w0.copy()
    for g in grads:
        w = ref.step(w, g)
        expected.append(w)
    for cls, dtype, rtol in ((_core.Optimizer64, np.float64, 1e-12), (_core.Optimizer32, np.float32, 2e-5)):
        opt = cls(_core_config(kind, config), size)
        assert opt.iterations == 0
        params = w0.astype(dtype)
        for i, g in enumerate(grads):
            opt.step(params, g.astype(dtype).copy())
            assert opt.iterations == i + 1
            np.testing.assert_allclose(params, expected[i], rtol=rtol, atol=rtol * 1e-2,
                                       err_msg=f"{case} {dtype.__name__} step {i + 1}")


def test_adam_first_step_moves_every_weight_by_about_the_learning_rate():
    # With bias correction folded into alpha, step 1 is lr * g / (|g| + eps') for every g.
    opt = _core.Optimizer64(_core_config("adam", {"learning_rate": 0.01}), 4)
    w = np.zeros(4)
    opt.step(w, np.array([0.05, -5.0, 200.0, -0.2]))
    np.testing.assert_allclose(np.abs(w), 0.01, rtol=1e-3)
    np.testing.assert_array_equal(np.sign(w), [-1, 1, -1, 1])


@pytest.mark.parametrize("clip", [{"clipvalue": 0.3}, {"clipnorm": 0.5}, {"global_clipnorm": 0.5},
                                  {"clipnorm": 100.0}, {"global_clipnorm": 100.0}])
def test_standalone_clipping_rescales_or_clips_the_gradient_before_the_update(clip, rng):
    size = 9
    w0 = rng.standard_normal(size)
    g = rng.standard_normal(size) * 2
    opt = _core.Optimizer64(_core_config("sgd", dict(clip, learning_rate=1.0)), size)
    w = w0.copy()
    opt.step(w, g.copy())
    (key, value), = clip.items()
    if key == "clipvalue":
        want = np.clip(g, -value, value)
    else:
        want = g * min(1.0, value / np.linalg.norm(g))
    np.testing.assert_allclose(w0 - w, want, rtol=1e-12)
    if key != "clipvalue" and value < np.linalg.norm(g):
        assert np.linalg.norm(w0 - w) == pytest.approx(value, rel=1e-12)


# --- through a model ------------------------------------------------------------------------------

def _two_layer(seed=0, optimizer="sgd", dtype="float64"):
    model = lm.Sequential([lm.layers.Dense(4, activation="tanh", input_shape=(3,)), lm.layers.Dense(2)],
                          seed=seed, dtype=dtype)
    model.compile(optimizer=optimizer, loss="mse")
    model.build()
    return model


def _numpy_gradient(weights, x, y):
    """Gradient of mean-over-samples of mean-over-outputs squared error for tanh -> linear."""
    W1, b1, W2, b2 = weights
    h = np.tanh(x @ W1 + b1)
    p = h @ W2 + b2
    dp = 2 * (p - y) / (p.size)
    dW2, db2 = h.T @ dp, dp.sum(0)
    dz = (dp @ W2.T) * (1 - h * h)
    return [x.T @ dz, dz.sum(0), dW2, db2]


def _flat(arrays):
    return np.concatenate([a.ravel() for a in arrays])


def _spans(weights):
    out, start = [], 0
    for w in weights:
        out.append(slice(start, start + w.size))
        start += w.size
    return out


@pytest.mark.parametrize("case", ["sgd_momentum", "rmsprop_centered", "adagrad", "adam", "adam_amsgrad", "adamw"])
def test_optimizer_through_a_model_follows_the_rule_with_one_step_counter_per_batch(case, rng):
    kind, config = CASES[case]
    model = _two_layer(optimizer=lm.optimizers.get(dict(config, name=kind)))
    x = rng.standard_normal((8, 3))
    y = rng.standard_normal((8, 2))
    weights = model.get_weights()
    ref = Reference(kind, config, sum(w.size for w in weights))
    for epoch in range(3):
        g = _flat(_numpy_gradient(weights, x, y))
        flat = ref.step(_flat(weights), g, _spans(weights))
        weights = [flat[s].reshape(w.shape) for s, w in zip(_spans(weights), weights)]
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        assert model.optimizer.iterations == epoch + 1
        for got, want in zip(model.get_weights(), weights):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, err_msg=f"{case} step {epoch + 1}")


@pytest.mark.parametrize("clip", [{"clipnorm": 0.05}, {"global_clipnorm": 0.05}, {"clipvalue": 0.02}])
def test_model_clipnorm_is_per_weight_tensor_and_global_clipnorm_is_over_all(clip, rng):
    opt = lm.optimizers.SGD(learning_rate=1.0, **clip)
    model = _two_layer(optimizer=opt)
    x = rng.standard_normal((8, 3)) * 3
    y = rng.standard_normal((8, 2)) * 3
    before = model.get_weights()
    grads = _numpy_gradient(before, x, y)
    (key, value), = clip.items()
    if key == "clipnorm":
        assert all(np.linalg.norm(g) > value for g in grads)
        want = [g * value / np.linalg.norm(g) for g in grads]
    elif key == "global_clipnorm":
        total = np.linalg.norm(_flat(grads))
        want = [g * value / total for g in grads]
    else:
        want = [np.clip(g, -value, value) for g in grads]
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for b, a, w in zip(before, model.get_weights(), want):
        np.testing.assert_allclose(b - a, w, rtol=1e-10, atol=1e-14)


def test_model_iterations_advance_once_per_batch_including_the_last_partial_one(rng):
    model = _two_layer(optimizer="adam")
    x = rng.standard_normal((10, 3))
    y = rng.standard_normal((10, 2))
    assert model.optimizer.iterations == 0
    model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    assert model.optimizer.iterations == 6
    model.fit(x, y, batch_size=10, epochs=1, verbose=0)
    assert model.optimizer.iterations == 7
    model.compile(optimizer="adam", loss="mse")  # compiling again starts the optimizer afresh
    assert model.optimizer.iterations == 0


def test_changing_the_learning_rate_of_a_compiled_model_changes_the_next_step(rng):
    model = _two_layer(optimizer=lm.optimizers.SGD(learning_rate=0.1))
    x = rng.standard_normal((6, 3))
    y = rng.standard_normal((6, 2))
    before = model.get_weights()
    grads = _numpy_gradient(before, x, y)
    model.optimizer.learning_rate = 0.5
    assert model.optimizer.learning_rate == 0.5
    model.fit(x, y, batch_size=6, epochs=1, shuffle=False, verbose=0)
    for b, a, g in zip(before, model.get_weights(), grads):
        np.testing.assert_allclose(b - a, 0.5 * g, rtol=1e-10, atol=1e-14)


def test_optimizer_objects_expose_keras_defaults():
    assert lm.optimizers.get("sgd").learning_rate == 0.01
    adam = lm.optimizers.get("adam")
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon) == (0.001, 0.9, 0.999, 1e-7)
    rms = lm.optimizers.get("rmsprop")
    assert (rms.learning_rate, rms.rho, rms.momentum, rms.epsilon, rms.centered) == (0.001, 0.9, 0.0, 1e-7, False)
    ada = lm.optimizers.get("adagrad")
    assert (ada.learning_rate, ada.initial_accumulator_value, ada.epsilon) == (0.001, 0.1, 1e-7)
    assert lm.optimizers.get("adamw").weight_decay == 0.004
    with pytest.raises(ValueError, match="at most one"):
        lm.optimizers.SGD(clipnorm=1.0, clipvalue=1.0)


# --- sparse inputs through the fused small-batch path --------------------------------------------
# Batches of <= 16 rows fuse the kernel gradient with the update, and kernel rows whose input is
# zero in every sample of the batch skip the gradient (Optimizer::zero_gradient_effect). These
# prove the skipped rows still follow each rule exactly as a full update with g = 0 would.

@pytest.mark.parametrize("batch_size", [1, 3, 8])
@pytest.mark.parametrize("case", sorted(CASES))
def test_sparse_inputs_in_small_batches_follow_every_rule_as_the_dense_reference(case, batch_size, rng):
    kind, config = CASES[case]
    model = _two_layer(optimizer=lm.optimizers.get(dict(config, name=kind)))
    x = rng.standard_normal((24, 3))
    x[:, 1] = 0.0             # an input that is always zero
    x[rng.random(x.shape) < 0.3] = 0.0  # and scattered zeros, so some batches have all-zero rows
    y = rng.standard_normal((24, 2))
    weights = model.get_weights()
    ref = Reference(kind, config, sum(w.size for w in weights))
    for start in range(0, 24, batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        g = _flat(_numpy_gradient(weights, xb, yb))
        flat = ref.step(_flat(weights), g, _spans(weights))
        weights = [flat[s].reshape(w.shape) for s, w in zip(_spans(weights), weights)]
    model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
    for got, want in zip(model.get_weights(), weights):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, err_msg=case)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_rmsprop_rows_with_zero_input_keep_their_weights_bit_for_bit_and_decay_state_by_exactly_rho(dtype):
    model = lm.Sequential([lm.layers.Dense(70, activation="relu", input_shape=(20,)), lm.layers.Dense(3)],
                          seed=1, dtype=dtype)
    model.compile(optimizer=lm.optimizers.RMSprop(learning_rate=0.01, rho=0.8), loss="mse")
    rng = np.random.default_rng(3)
    warm = rng.standard_normal((16, 20)).astype(dtype)
    model.fit(warm, rng.standard_normal((16, 3)).astype(dtype), batch_size=4, verbose=0)  # v > 0 everywhere
    x = rng.standard_normal((1, 20)).astype(dtype)
    zero = np.array([0, 5, 6, 7, 19])
    x[0, zero] = 0.0
    kernel_before = model.get_weights()[0].copy()
    v_before = model._net.optimizer_slots()[0].copy()
    model.fit(x, rng.standard_normal((1, 3)).astype(dtype), batch_size=1, verbose=0)
    kernel_after = model.get_weights()[0]
    v_after = model._net.optimizer_slots()[0]
    np.testing.assert_array_equal(kernel_after[zero], kernel_before[zero])
    rows = v_before[: 20 * 70].reshape(20, 70)[zero], v_after[: 20 * 70].reshape(20, 70)[zero]
    np.testing.assert_array_equal(rows[1], rows[0] * np.asarray(0.8, dtype=dtype))
    live = np.setdiff1d(np.arange(20), zero)
    assert (kernel_after[live] != kernel_before[live]).any(axis=1).all()


@pytest.mark.parametrize("batch_size", [1, 2])
def test_float32_rmsprop_on_sparse_inputs_in_the_fused_path_follows_the_float64_reference(batch_size, rng):
    # float32 RMSprop at batch 1 forms each kernel row's gradient in registers inside the
    # optimizer's AVX2 kernel; batch 2 goes through rank_n_rows. Both must follow the rule.
    kind, config = CASES["rmsprop_plain"]
    model = _two_layer(optimizer=lm.optimizers.get(dict(config, name=kind)), dtype="float32")
    x = rng.standard_normal((12, 3)).astype(np.float32)
    x[:, 1] = 0.0
    x[rng.random(x.shape) < 0.3] = 0.0
    y = rng.standard_normal((12, 2)).astype(np.float32)
    weights = [w.astype(np.float64) for w in model.get_weights()]
    ref = Reference(kind, config, sum(w.size for w in weights))
    for start in range(0, 12, batch_size):
        g = _flat(_numpy_gradient(weights, x[start:start + batch_size].astype(np.float64),
                                  y[start:start + batch_size].astype(np.float64)))
        flat = ref.step(_flat(weights), g, _spans(weights))
        weights = [flat[s].reshape(w.shape) for s, w in zip(_spans(weights), weights)]
    model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
    for got, want in zip(model.get_weights(), weights):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)
