"""End-to-end training: the course's tiny regression descends by gradient descent; XOR is learned."""

import numpy as np
import pytest

import lamina as lm


def _course_data():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 1.0, (10, 2))
    y = (2.0 * x[:, 0] + x[:, 1] + 0.5).reshape(-1, 1)
    return x, y


def _course_model(lr=0.05, dtype="float64", seed=1):
    model = lm.Sequential([lm.layers.Dense(2, activation="relu", input_shape=(2,)),
                           lm.layers.Dense(1, activation="relu")], seed=seed, dtype=dtype)
    model.compile(optimizer=lm.optimizers.SGD(learning_rate=lr), loss="mse")
    model.build()
    # Start from weights where both hidden units and the output unit are active on every row.
    model.set_weights([np.array([[0.5, 0.2], [0.3, 0.6]]), np.array([0.1, 0.1]),
                       np.array([[0.4], [0.7]]), np.array([0.2])])
    return model


def _course_forward_backward(weights, x, y):
    W1, b1, W2, b2 = weights
    z1 = x @ W1 + b1
    h = np.maximum(z1, 0)
    z2 = h @ W2 + b2
    p = np.maximum(z2, 0)
    loss = np.mean((p - y) ** 2)
    dz2 = 2 * (p - y) / len(x) * (z2 > 0)
    dh = dz2 @ W2.T
    dz1 = dh * (z1 > 0)
    return loss, [x.T @ dz1, dz1.sum(0), h.T @ dz2, dz2.sum(0)]


def test_course_regression_first_step_is_exactly_one_gradient_descent_step():
    x, y = _course_data()
    model = _course_model()
    before = model.get_weights()
    loss0, grads = _course_forward_backward(before, x, y)
    assert model.evaluate(x, y) == pytest.approx(loss0, rel=1e-12)
    model.fit(x, y, batch_size=10, epochs=1, shuffle=False, verbose=0)
    for b, a, g in zip(before, model.get_weights(), grads):
        np.testing.assert_allclose(a, b - 0.05 * g, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_course_regression_trains_to_a_lower_loss_by_gradient_descent(dtype):
    x, y = _course_data()
    model = _course_model(dtype=dtype)
    start = model.evaluate(x, y)
    history = model.fit(x, y, batch_size=10, epochs=200, shuffle=False, verbose=0)
    losses = history.history["loss"]
    assert len(losses) == 200
    # Full-batch descent with a small step: the loss never goes up, and ends far lower.
    assert all(b <= a * (1 + 1e-6) for a, b in zip(losses, losses[1:]))
    end = model.evaluate(x, y)
    assert end < 0.05 * start
    np.testing.assert_allclose(model.predict(x), y, atol=0.25)


def test_minibatch_sgd_on_the_course_regression_also_lowers_the_loss():
    x, y = _course_data()
    model = _course_model(lr=0.02)
    start = model.evaluate(x, y)
    model.fit(x, y, batch_size=3, epochs=100, verbose=0)
    assert model.evaluate(x, y) < 0.1 * start


def test_xor_is_learned_by_a_2_4_1_network_to_full_accuracy():
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([0, 1, 1, 0], dtype=np.float32)
    model = lm.Sequential([lm.layers.Dense(4, activation="tanh", input_shape=(2,)),
                           lm.layers.Dense(1, activation="sigmoid")], seed=0)
    model.compile(optimizer=lm.optimizers.Adam(learning_rate=0.05), loss="binary_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, batch_size=4, epochs=500, verbose=0)
    loss, accuracy = model.evaluate(x, y)
    assert accuracy == 1.0
    assert loss < 0.1 < history.history["loss"][0]
    np.testing.assert_array_equal((model.predict(x)[:, 0] > 0.5).astype(int), [0, 1, 1, 0])


def test_softmax_classifier_separates_gaussian_blobs(rng):
    centers = np.array([[3, 0, 0], [0, 3, 0], [0, 0, 3]], dtype=np.float64)
    labels = rng.integers(0, 3, 300)
    x = centers[labels] + rng.standard_normal((300, 3))
    model = lm.Sequential([lm.layers.Dense(16, activation="relu", input_shape=(3,)),
                           lm.layers.Dropout(0.2),
                           lm.layers.Dense(3, activation="softmax")], seed=3)
    model.compile(optimizer=lm.optimizers.Adam(learning_rate=0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, labels, batch_size=32, epochs=30, validation_split=0.2, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["val_accuracy"][-1] > 0.9
    probs = model.predict(x)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert np.mean(probs.argmax(axis=1) == labels) > 0.9


def test_dropout_drops_at_its_rate_and_scales_survivors_by_one_over_keep_probability():
    # x = 1 everywhere, kernel = 1, y = 0, one SGD step on one row: a kept input i has
    # a_i = 1 / (1 - rate), p = sum a_i, and its weight moves by lr * 2p * a_i; a dropped one stays.
    features, rate, lr = 4000, 0.25, 1e-7
    model = lm.Sequential([lm.layers.Dropout(rate, input_shape=(features,)),
                           lm.layers.Dense(1, use_bias=False, kernel_initializer="ones")], seed=5, dtype="float64")
    model.compile(optimizer=lm.optimizers.SGD(learning_rate=lr), loss="mse")
    model.build()
    x = np.ones((1, features))
    np.testing.assert_array_equal(model.predict(x), [[features]])  # no dropout in predict
    model.fit(x, np.zeros((1, 1)), batch_size=1, epochs=1, verbose=0)
    w = model.get_weights()[0][:, 0]
    kept = w != 1.0
    assert kept.mean() == pytest.approx(1 - rate, abs=0.03)
    scale = 1 / (1 - rate)
    p = scale * kept.sum()
    np.testing.assert_allclose(1.0 - w[kept], lr * 2 * p * scale, rtol=1e-9)


def test_dropout_rate_zero_is_the_identity_during_training(rng):
    x = rng.standard_normal((20, 3))
    y = rng.standard_normal((20, 1))

    start = None

    def run(with_dropout):
        nonlocal start
        layers = [lm.layers.Dense(4, activation="tanh", input_shape=(3,))]
        if with_dropout:
            layers.append(lm.layers.Dropout(0.0))
        layers.append(lm.layers.Dense(1))
        model = lm.Sequential(layers, seed=2, dtype="float64")
        model.compile(optimizer="sgd", loss="mse")
        if start is None:
            start = model.get_weights()
        model.set_weights(start)  # a Dropout layer may shift the layers' random streams
        model.fit(x, y, batch_size=5, epochs=2, verbose=0)
        return model.get_weights()

    for a, b in zip(run(True), run(False)):
        np.testing.assert_array_equal(a, b)
