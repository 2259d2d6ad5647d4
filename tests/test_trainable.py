"""layer.trainable = False (Keras's freeze): no optimizer moves a frozen layer's kernel or bias,
in the fused small-batch sink or the storing path, while gradients still flow through it to the
layers below; the change takes effect on the next step without recompiling."""

import numpy as np
import pytest

import lamina as lm


def _data(rows=32):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((rows, 6))
    x[rng.random(x.shape) < 0.3] = 0.0
    return x, rng.standard_normal((rows, 2))


def _model(optimizer, dtype="float64"):
    model = lm.Sequential([lm.layers.Dense(70, activation="relu", input_shape=(6,)),
                           lm.layers.Dense(2)], seed=4, dtype=dtype)
    model.compile(optimizer, "mse")
    return model


def _reference_sgd_momentum(weights, x, y, batch_size, lr, mu, frozen):
    """float64 SGD with momentum, mse; layers in `frozen` keep their weights and get no update."""
    W1, b1, W2, b2 = (w.astype(np.float64).copy() for w in weights)
    moments = [np.zeros_like(w) for w in (W1, b1, W2, b2)]
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        z = xb @ W1 + b1
        h = np.maximum(z, 0.0)
        dout = 2.0 * (h @ W2 + b2 - yb) / yb.size
        dz = (dout @ W2.T) * (z > 0)  # through the (possibly frozen) second layer
        grads = [xb.T @ dz, dz.sum(0), h.T @ dout, dout.sum(0)]
        for i, (w, g) in enumerate(zip((W1, b1, W2, b2), grads)):
            if i // 2 in frozen:
                continue
            moments[i] = mu * moments[i] - lr * g
            w += moments[i]
    return [W1, b1, W2, b2]


@pytest.mark.parametrize("batch_size", [4, 32])  # the fused sink, the storing path
@pytest.mark.parametrize("frozen", [0, 1])
def test_frozen_layer_is_bit_unchanged_and_the_others_follow_a_reference_that_ignores_its_gradient(frozen, batch_size):
    x, y = _data()
    model = _model(lm.optimizers.SGD(0.05, momentum=0.9))
    model.layers[frozen].trainable = False
    before = model.get_weights()
    model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
    after = model.get_weights()
    for w0, w1 in zip(before[2 * frozen:2 * frozen + 2], after[2 * frozen:2 * frozen + 2]):
        np.testing.assert_array_equal(w0, w1)
    want = _reference_sgd_momentum(before, x, y, batch_size, 0.05, 0.9, {frozen})
    for got, ref in zip(after, want):
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("batch_size", [1, 4, 32])
@pytest.mark.parametrize("optimizer", [lambda: lm.optimizers.Adam(1e-2), lambda: lm.optimizers.AdamW(1e-2, weight_decay=0.1),
                                       lambda: lm.optimizers.RMSprop(1e-2), lambda: lm.optimizers.SGD(0.1, clipnorm=0.5),
                                       lambda: lm.optimizers.Adam(1e-2, global_clipnorm=0.1)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_no_optimizer_moves_a_frozen_layer_or_its_state(optimizer, batch_size, dtype):
    x, y = _data()
    model = _model(optimizer(), dtype)
    model.layers[0].trainable = False
    model.fit(x[:8].astype(dtype), y[:8].astype(dtype), batch_size=batch_size, verbose=0)  # warm state elsewhere
    before = model.get_weights()
    model.fit(x.astype(dtype), y.astype(dtype), batch_size=batch_size, epochs=2, verbose=0)
    after = model.get_weights()
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])
    assert not np.array_equal(before[2], after[2])
    n_frozen = before[0].size + before[1].size
    for slot in model._net.optimizer_slots():
        if slot.size:  # the frozen span's state never left its initial value
            assert np.all(slot[:n_frozen] == slot[0])


def test_global_clipnorm_counts_only_the_trainable_gradients():
    x, y = _data()
    clipped, free = _model(lm.optimizers.SGD(0.1, global_clipnorm=1e-3)), _model(lm.optimizers.SGD(0.1))
    seen = []
    free.set_gradient_hook(lambda g, step: seen.append(g.copy()))
    clipped.layers[0].trainable = free.layers[0].trainable = False
    before = clipped.get_weights()
    clipped.fit(x, y, batch_size=32, verbose=0)
    free.fit(x, y, batch_size=32, verbose=0)
    g = seen[0][before[0].size + before[1].size:]
    scale = min(1.0, 1e-3 / np.sqrt(np.sum(g * g)))
    np.testing.assert_allclose(clipped.get_weights()[2], before[2] - 0.1 * scale * g[:before[2].size].reshape(before[2].shape),
                               rtol=1e-12)


def test_trainable_change_after_compile_takes_effect_on_the_next_step_and_unfreezing_resumes():
    x, y = _data()
    model = _model(lm.optimizers.Adam(1e-2))
    model.fit(x, y, batch_size=8, verbose=0)
    model.layers[1].trainable = False
    frozen = model.get_weights()[2].copy()
    model.fit(x, y, batch_size=8, verbose=0)
    np.testing.assert_array_equal(model.get_weights()[2], frozen)
    model.layers[1].trainable = True
    model.fit(x, y, batch_size=8, verbose=0)
    assert not np.array_equal(model.get_weights()[2], frozen)


def test_trainable_before_build_survives_the_build_and_weights_split_as_in_keras():
    model = lm.Sequential([lm.layers.Dense(3, input_shape=(6,)), lm.layers.Dropout(0.1), lm.layers.Dense(2)])
    model.layers[2].trainable = False
    model.compile("sgd", "mse")
    assert [w.shape for w in model.trainable_weights] == [(6, 3), (3,)]
    assert [w.shape for w in model.non_trainable_weights] == [(3, 2), (2,)]
    before = model.get_weights()
    x, y = _data()
    model.fit(x, y, batch_size=4, verbose=0)
    np.testing.assert_array_equal(model.get_weights()[2], before[2])
    with pytest.raises(TypeError, match="trainable must be True or False"):
        model.layers[0].trainable = "no"
