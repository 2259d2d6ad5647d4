"""sample_weight and class_weight, Keras's semantics: each sample's loss times its weight, a batch's
loss the weighted sum over its number of samples; computed in the core, checked before anything
changes. References: float64 numpy (values and central differences), repeated rows, PyTorch."""

import numpy as np
import pytest
from conftest import DTYPES, close
from test_losses import NAMES, _problem, _sigmoid, _softmax, reference

import lamina as lm
from lamina import _core

EPS = 1e-7


# ----------------------------------------------------------------------------- the kernels
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", NAMES)
def test_weighted_loss_kernel_is_each_row_times_its_weight(name, dtype, rng):
    p, y = _problem(name, rng, dtype)
    w = rng.uniform(0.0, 3.0, p.shape[0]).astype(dtype)
    w[2] = 0.0
    rows, grad = reference(name, p, y)
    value, dp = _core.loss(_core.Loss[name], p, y, 1.0, 0.25, sample_weight=w)
    close(value, (w.astype(np.float64) * rows).sum(), dtype)
    close(dp, 0.25 * w.astype(np.float64)[:, None] * grad, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", ["binary_crossentropy", "categorical_crossentropy",
                                  "sparse_categorical_crossentropy"])
def test_weighted_fused_loss_is_each_row_times_its_weight(name, dtype, rng):
    z = (rng.standard_normal((6, 4)) * 2).astype(dtype)
    _, y = _problem(name, rng, dtype)
    w = rng.uniform(0.0, 3.0, 6).astype(dtype)
    _, plain_dz = _core.fused_loss(_core.Loss[name], z, y, 0.5)
    rows = [_core.fused_loss(_core.Loss[name], z[i:i + 1], y[i:i + 1], 1.0)[0] for i in range(6)]
    value, dz = _core.fused_loss(_core.Loss[name], z, y, 0.5, sample_weight=w)
    close(value, float(np.dot(w.astype(np.float64), rows)), dtype)
    close(dz, w.astype(np.float64)[:, None] * plain_dz, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", NAMES)
def test_unit_weights_change_no_bit_of_the_loss_kernels(name, dtype, rng):
    p, y = _problem(name, rng, dtype)
    ones = np.ones(p.shape[0], dtype)
    plain = _core.loss(_core.Loss[name], p, y, 1.0, 1.0 / 6)
    weighted = _core.loss(_core.Loss[name], p, y, 1.0, 1.0 / 6, sample_weight=ones)
    assert plain[0] == weighted[0] and np.array_equal(plain[1], weighted[1])


def test_loss_kernel_refuses_bad_weights(rng):
    p, y = _problem("mean_squared_error", rng, np.float64)
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(6,\)"):
        _core.loss(_core.Loss.mean_squared_error, p, y, sample_weight=np.ones(5))
    with pytest.raises(ValueError, match="finite and non-negative, received -1.0* at row 3"):
        _core.loss(_core.Loss.mean_squared_error, p, y, sample_weight=np.array([1, 1, 1, -1.0, 1, 1]))


# ----------------------------------------------------------------------------- the model's loss and gradient
# (loss name, output activation, from_logits, units): every output-gradient path of the core.
CASES = [
    ("mean_squared_error", "linear", False, 3),
    ("mean_absolute_error", "linear", False, 3),
    ("huber", "tanh", False, 3),
    ("binary_crossentropy", "sigmoid", False, 2),       # fused on the pre-activation
    ("binary_crossentropy", "linear", True, 2),         # fused on logits
    ("binary_crossentropy", "softplus", False, 1),      # generic (probabilities from another activation)
    ("categorical_crossentropy", "softmax", False, 3),
    ("categorical_crossentropy", "linear", True, 3),
    ("sparse_categorical_crossentropy", "softmax", False, 3),
    ("sparse_categorical_crossentropy", "linear", True, 3),
]


def _model(loss, activation, from_logits, units, dtype, seed=3, l2=0.0):
    reg = lm.regularizers.L2(l2) if l2 else None
    model = lm.Sequential([lm.layers.Dense(5, activation="tanh", input_shape=(4,), kernel_regularizer=reg),
                           lm.layers.Dense(units, activation=activation)], seed=seed, dtype=dtype)
    loss_obj = lm.losses.get(loss)
    if from_logits:
        loss_obj = type(loss_obj)(from_logits=True)
    model.compile(optimizer="sgd", loss=loss_obj)
    return model


def _targets(loss, activation, units, rng, n):
    if loss.startswith("sparse"):
        return rng.integers(0, units, n)
    if loss == "categorical_crossentropy":
        return np.eye(units)[rng.integers(0, units, n)]
    if loss == "binary_crossentropy":
        return rng.integers(0, 2, (n, units)).astype(np.float64)
    return rng.standard_normal((n, units))


def _numpy_loss(loss, activation, from_logits, theta, shapes, x, y, w, l2=0.0):
    """float64 numpy: sum_i w_i l_i / n + penalty, the model's loss at parameters theta."""
    offset, parts = 0, []
    for shape in shapes:
        size = int(np.prod(shape))
        parts.append(theta[offset:offset + size].reshape(shape))
        offset += size
    W1, b1, W2, b2 = parts
    z = np.tanh(x @ W1 + b1) @ W2 + b2
    act = {"linear": lambda v: v, "tanh": np.tanh, "sigmoid": _sigmoid, "softmax": _softmax,
           "softplus": lambda v: np.logaddexp(0.0, v)}[activation]
    if from_logits:
        if loss == "binary_crossentropy":  # exact log-sigmoid form on logits
            rows = (np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))).mean(axis=1)
        elif loss.startswith("sparse"):
            lse = np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1)
            rows = lse - z[np.arange(len(y)), y.astype(int)]
        else:
            lse = np.log(np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True)) + z.max(1, keepdims=True)
            rows = (y * (lse - z)).sum(axis=1)
    else:
        p = act(z)
        yy = y.reshape(-1, 1).astype(np.float64) if loss.startswith("sparse") else y
        rows, _ = reference(loss, p, yy)
    return float((w * rows).sum() / len(x) + l2 * (W1 ** 2).sum())


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("loss,activation,from_logits,units", CASES)
def test_weighted_loss_and_gradient_match_a_float64_numpy_reference(loss, activation, from_logits, units, dtype, rng):
    n = 7
    x = rng.standard_normal((n, 4))
    y = _targets(loss, activation, units, rng, n)
    w = rng.uniform(0.0, 2.5, n)
    w[1] = 0.0
    model = _model(loss, activation, from_logits, units, dtype, l2=0.01)
    net = model._net
    theta = net.parameters().astype(np.float64)
    shapes = [s for _, s in model._weight_shapes()]
    xs, ys = model._dataset(x.astype(dtype), y)
    got = net.loss_and_gradient(xs, ys, sample_weight=w.astype(dtype))
    grad = net.gradients().astype(np.float64)

    def J(t):
        return _numpy_loss(loss, activation, from_logits, t, shapes, xs.astype(np.float64), ys_ref, w, l2=0.01)

    ys_ref = ys[:, 0] if loss.startswith("sparse") else ys.astype(np.float64)
    close(got, J(theta), dtype, rtol_scale=10)
    h = 1e-6
    numeric = np.array([(J(theta + h * e) - J(theta - h * e)) / (2 * h) for e in np.eye(theta.size)])
    np.testing.assert_allclose(grad, numeric, rtol=1e-4 if dtype == np.float32 else 1e-6,
                               atol=1e-5 if dtype == np.float32 else 1e-8)


@pytest.mark.parametrize("loss,activation,from_logits,units", CASES)
def test_integer_weights_act_as_repeated_rows_in_the_sum_of_sample_losses(loss, activation, from_logits, units, rng):
    # Sum-over-batch: the weighted loss over n rows is (sum_i k_i l_i) / n; repeating each row
    # k_i times gives the same sum over sum(k) rows. So loss * n and gradient * n agree.
    n = 6
    x = rng.standard_normal((n, 4))
    y = _targets(loss, activation, units, rng, n)
    k = np.array([1, 3, 0, 2, 1, 4])
    model = _model(loss, activation, from_logits, units, "float64")
    xs, ys = model._dataset(x, y)
    weighted = model._net.loss_and_gradient(xs, ys, sample_weight=k.astype(np.float64)) * n
    g_weighted = model._net.gradients().copy() * n
    xr, yr = model._dataset(np.repeat(x, k, axis=0), np.repeat(y, k, axis=0))
    repeated = model._net.loss_and_gradient(xr, yr) * k.sum()
    g_repeated = model._net.gradients().copy() * k.sum()
    np.testing.assert_allclose(weighted, repeated, rtol=1e-12)
    np.testing.assert_allclose(g_weighted, g_repeated, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("loss,activation,from_logits,units", CASES[:4] + CASES[6:7] + CASES[8:9])
def test_weighted_gradients_match_pytorch_autograd(loss, activation, from_logits, units, rng):
    torch = pytest.importorskip("torch")
    n = 7
    x = rng.standard_normal((n, 4))
    y = _targets(loss, activation, units, rng, n)
    w = rng.uniform(0.0, 2.0, n)
    model = _model(loss, activation, from_logits, units, "float64")
    xs, ys = model._dataset(x, y)
    model._net.loss_and_gradient(xs, ys, sample_weight=w)
    ours = model._net.gradients().copy()
    W1, b1, W2, b2 = (torch.tensor(v, requires_grad=True) for v in model.get_weights())
    z = torch.tanh(torch.tensor(xs) @ W1 + b1) @ W2 + b2
    t = torch.tensor(ys)
    act = {"linear": lambda v: v, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
           "softmax": lambda v: torch.softmax(v, 1)}[activation]
    p = act(z)
    if loss == "mean_squared_error":
        rows = ((p - t) ** 2).mean(1)
    elif loss == "mean_absolute_error":
        rows = (p - t).abs().mean(1)
    elif loss == "huber":
        rows = torch.nn.functional.huber_loss(p, t, reduction="none", delta=1.0).mean(1)
    elif loss == "binary_crossentropy":
        rows = torch.nn.functional.binary_cross_entropy(p, t, reduction="none").mean(1)
    elif loss == "categorical_crossentropy":
        rows = -(t * torch.log(p)).sum(1)
    else:
        rows = -torch.log(p[torch.arange(n), t[:, 0].long()])
    (torch.tensor(w) * rows).sum().div(n).backward()
    theirs = np.concatenate([v.grad.numpy().ravel() for v in (W1, b1, W2, b2)])
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------------- fit and evaluate
def _classifier(dtype="float32", seed=5, units=3, loss="sparse_categorical_crossentropy", activation="softmax"):
    model = lm.Sequential([lm.layers.Dense(8, activation="relu", input_shape=(4,)),
                           lm.layers.Dense(units, activation=activation)], seed=seed, dtype=dtype)
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"], weighted_metrics=["accuracy"])
    return model


@pytest.fixture
def blobs(rng):
    x = rng.standard_normal((90, 4))
    y = rng.integers(0, 3, 90)
    x[:, 0] += y
    return x, y


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_unit_sample_weights_train_bit_identically_to_no_weights(dtype, blobs):
    x, y = blobs
    a, b = _classifier(dtype), _classifier(dtype)
    ha = a.fit(x, y, batch_size=16, epochs=2, verbose=0)
    hb = b.fit(x, y, batch_size=16, epochs=2, verbose=0, sample_weight=np.ones(len(x)))
    assert all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights()))
    assert ha.history["loss"] == hb.history["loss"]


@pytest.mark.parametrize("batch_size", [8, 32])  # 8: the fused small-batch update; 32: the stored one
def test_zero_weight_rows_never_count_so_shuffling_moves_weights_with_their_rows(batch_size, blobs, rng):
    x, y = blobs
    w = rng.uniform(0.5, 2.0, len(x))
    ignored = rng.random(len(x)) < 0.3
    w[ignored] = 0.0
    other_y = np.where(ignored, (y + 1) % 3, y)  # different labels only where the weight is zero
    a, b = _classifier(), _classifier()
    a.fit(x, y, batch_size=batch_size, epochs=3, verbose=0, sample_weight=w)
    b.fit(x, other_y, batch_size=batch_size, epochs=3, verbose=0, sample_weight=w)
    assert all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights()))
    c = _classifier()
    c.fit(x, other_y, batch_size=batch_size, epochs=3, verbose=0)
    assert not np.array_equal(a.get_weights()[0], c.get_weights()[0])


@pytest.mark.parametrize("kind", ["sparse", "onehot", "binary"])
def test_class_weight_trains_exactly_as_the_equivalent_sample_weight(kind, blobs):
    x, labels = blobs
    if kind == "binary":
        labels = (labels > 0).astype(int)
        make = lambda: _classifier(units=1, loss="binary_crossentropy", activation="sigmoid")
        y, cw = labels, {0: 0.5, 1: 2.0}
    elif kind == "onehot":
        make = lambda: _classifier(loss="categorical_crossentropy")
        y, cw = np.eye(3)[labels], {0: 0.5, 2: 3.0}  # class 1 left out: weight 1, as in Keras
    else:
        make = _classifier
        y, cw = labels, {0: 0.5, 1: 1.0, 2: 3.0}
    table = np.array([cw.get(c, 1.0) for c in range(max(2, labels.max() + 1))])
    a, b = make(), make()
    ha = a.fit(x, y, batch_size=16, epochs=2, verbose=0, class_weight=cw)
    hb = b.fit(x, y, batch_size=16, epochs=2, verbose=0, sample_weight=table[labels])
    assert all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights()))
    assert ha.history == hb.history


def test_evaluate_weighted_loss_and_metrics_follow_keras(blobs, rng):
    x, y = blobs
    model = _classifier("float64")
    model.fit(x, y, epochs=2, verbose=0)
    w = rng.uniform(0.0, 3.0, len(x))
    logs = model.evaluate(x, y, sample_weight=w, return_dict=True, batch_size=32)
    p = model.predict(x)
    rows = -np.log(np.clip(p[np.arange(len(y)), y], EPS, 1 - EPS))
    correct = p.argmax(1) == y
    np.testing.assert_allclose(logs["loss"], (w * rows).sum() / len(x), rtol=1e-12)  # sum over batch size
    assert logs["accuracy"] == pytest.approx(correct.mean(), abs=1e-15)            # metrics: unweighted
    assert logs["weighted_accuracy"] == pytest.approx((w * correct).sum() / w.sum(), rel=1e-12)
    plain = model.evaluate(x, y, return_dict=True)
    assert plain["weighted_accuracy"] == plain["accuracy"]  # no weights: the plain value


def test_weighted_regression_metrics_are_weighted_means():
    model = lm.Sequential([lm.layers.Dense(2, kernel_initializer="zeros", input_shape=(1,))], dtype="float64")
    model.compile(optimizer="sgd", loss="mse", weighted_metrics=["mae", "mse"])
    y = np.array([[1.0, 3.0], [2.0, 0.0], [4.0, 4.0]])
    w = np.array([1.0, 0.0, 3.0])
    logs = model.evaluate(np.zeros((3, 1)), y, sample_weight=w, return_dict=True)
    assert logs["mean_absolute_error"] == pytest.approx((1 * 2 + 3 * 4) / 4)
    assert logs["mean_squared_error"] == pytest.approx((1 * 5 + 3 * 16) / 4)
    assert logs["loss"] == pytest.approx((1 * 5 + 3 * 16) / 3)


def test_validation_data_triple_and_validation_split_carry_weights(blobs, rng):
    x, y = blobs
    w = rng.uniform(0.5, 2.0, len(x))
    model = _classifier("float64")
    h = model.fit(x[:60], y[:60], epochs=1, verbose=0, sample_weight=w[:60], validation_data=(x[60:], y[60:], w[60:]))
    want = model.evaluate(x[60:], y[60:], sample_weight=w[60:], return_dict=True, batch_size=256)
    assert h.history["val_loss"][0] == want["loss"]
    assert h.history["val_weighted_accuracy"][0] == want["weighted_accuracy"]
    split = _classifier("float64")
    hs = split.fit(x, y, epochs=1, verbose=0, sample_weight=w, validation_split=1 / 3, batch_size=32)
    fresh = _classifier("float64")
    hf = fresh.fit(x[:60], y[:60], epochs=1, verbose=0, sample_weight=w[:60], validation_data=(x[60:], y[60:], w[60:]),
                   batch_size=32)
    assert hs.history == hf.history


def test_weighted_metrics_and_their_names_survive_save_and_load(tmp_path, blobs):
    x, y = blobs
    model = _classifier()
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.lamina")
    again = lm.load_model(tmp_path / "m.lamina")
    assert again.evaluate(x, y, return_dict=True) == model.evaluate(x, y, return_dict=True)
    assert "weighted_accuracy" in again.evaluate(x, y, return_dict=True)


# ----------------------------------------------------------------------------- errors
BAD_SAMPLE_WEIGHTS = [
    (lambda n: -np.ones(n), r"sample_weight must not be negative, received sample_weight\[0\]=-1.0"),
    (lambda n: np.r_[np.ones(n - 1), np.nan], r"sample_weight must be finite, received sample_weight\[89\]=nan"),
    (lambda n: np.r_[np.inf, np.ones(n - 1)], r"sample_weight must be finite, received sample_weight\[0\]=inf"),
    (lambda n: np.ones(n - 1), r"sample_weight must have shape \(90,\), one weight per sample, received shape \(89,\)"),
    (lambda n: np.ones((n, 2)), r"must have shape \(90,\).*received shape \(90, 2\)"),
    (lambda n: np.array(["1"] * n), "sample_weight must hold real numbers, received sample_weight of dtype <U1"),
    (lambda n: np.ones(n, bool), "sample_weight must hold real numbers, received sample_weight of dtype bool"),
    (lambda n: np.zeros(n), "sample_weight is all zero"),
    (lambda n: np.full(n, 1e300), "sample_weight holds values too large for float32"),
]


@pytest.mark.parametrize("make,match", BAD_SAMPLE_WEIGHTS)
def test_bad_sample_weight_is_a_value_error_before_any_change(make, match, blobs):
    x, y = blobs
    model = _classifier()
    model.fit(x, y, epochs=1, verbose=0)
    before = model.get_state()
    for call in (lambda: model.fit(x, y, verbose=0, sample_weight=make(len(x))),
                 lambda: model.evaluate(x, y, sample_weight=make(len(x))),
                 lambda: model.train_on_batch(x, y, sample_weight=make(len(x)))):
        with pytest.raises(ValueError, match=match):
            call()
    after = model.get_state()
    assert np.array_equal(before["params"], after["params"]) and before["iterations"] == after["iterations"]
    assert model.epochs_trained == 1


@pytest.mark.parametrize("class_weight,match", [
    ({3: 1.0}, "class_weight names class 3, but the model's classes are the integers 0 to 2"),
    ({-1: 1.0}, "class_weight names class -1"),
    ({"a": 1.0}, "class_weight names class 'a'"),
    ({True: 1.0}, "class_weight names class True"),
    ({0: -2.0}, r"class_weight\[0\] must be a finite, non-negative number, received -2.0"),
    ({0: float("nan")}, r"class_weight\[0\] must be a finite, non-negative number, received nan"),
    ({0: 0.0, 1: 0.0, 2: 0.0}, "gives every sample weight 0"),
    ([1.0, 2.0, 3.0], r"class_weight must be a dict \{class index: weight\}, received class_weight=\[1.0, 2.0, 3.0\]"),
])
def test_bad_class_weight_is_a_value_error_before_any_change(class_weight, match, blobs):
    x, y = blobs
    model = _classifier()
    before = model.get_weights()
    with pytest.raises(ValueError, match=match):
        model.fit(x, y, verbose=0, class_weight=class_weight)
    assert all(np.array_equal(u, v) for u, v in zip(before, model.get_weights()))
    assert model.epochs_trained == 0


def test_sample_weight_and_class_weight_together_are_refused(blobs):
    x, y = blobs
    with pytest.raises(ValueError, match="pass sample_weight or class_weight, not both"):
        _classifier().fit(x, y, verbose=0, sample_weight=np.ones(len(x)), class_weight={0: 2.0})


def test_bad_validation_weights_are_refused(blobs):
    x, y = blobs
    with pytest.raises(ValueError, match=r"validation_data\[2\] must not be negative"):
        _classifier().fit(x, y, verbose=0, validation_data=(x, y, -np.ones(len(x))))


def test_the_core_checks_the_weights_it_is_given(blobs):
    x, y = blobs
    model = _classifier("float64")
    xs, ys = model._dataset(x, y)
    net, stats = model._net, _core.BatchStats()
    before = net.parameters().copy()
    bad = np.ones(len(x))
    bad[40] = -1.0
    with pytest.raises(ValueError, match="sample weights must be finite and non-negative, received -1.0* at row 40"):
        net.train_batches(stats, xs, ys, None, 0, 16, 6, bad)
    bad[40] = np.nan
    with pytest.raises(ValueError, match="at row 40"):
        net.evaluate(stats, xs, ys, 16, bad)
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(90,\)"):
        net.train_batches(stats, xs, ys, None, 0, 16, 6, np.ones(89))
    assert np.array_equal(before, net.parameters()) and net.iterations == 0


def test_class_weight_on_a_regression_target_weighs_rounded_classes_and_others_one():
    model = lm.Sequential([lm.layers.Dense(1, kernel_initializer="zeros", input_shape=(1,))], dtype="float64")
    model.compile(optimizer="sgd", loss="mse")
    y = np.array([0.2, 0.9, 3.0, -2.0])  # rounds to classes 0, 1, and two outside [0, 2)
    weights = model._weights(None, {0: 2.0, 1: 5.0}, model._targets(y, 4))
    assert weights.tolist() == [2.0, 5.0, 1.0, 1.0]


@pytest.mark.parametrize("loss,activation,from_logits,units", CASES)
def test_gradient_check_passes_on_the_weighted_loss(loss, activation, from_logits, units, rng):
    x = rng.standard_normal((6, 4))
    y = _targets(loss, activation, units, rng, 6)
    w = rng.uniform(0.0, 3.0, 6)
    model = _model(loss, activation, from_logits, units, "float64", l2=0.01)
    report = lm.gradient_check(model, x, y, epsilon=1e-6, sample_weight=w)
    assert report.passed, report
    with pytest.raises(ValueError, match="sample_weight must not be negative"):
        lm.gradient_check(model, x, y, sample_weight=-w)
