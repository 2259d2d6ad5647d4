"""gradient_check: backprop agrees with two-sided differences (< 1e-7) for every activation and
loss pairing, with regularizers and dropout; and the check does flag a gradient that is wrong."""

import numpy as np
import pytest

import lamina as lm

HIDDEN = ["linear", "relu", "leaky_relu", "elu", "sigmoid", "tanh", "softplus", "gelu"]
# (output activation, loss, target kind): losses with kinks (mae, huber) are used where the
# errors are far from them compared with the finite-difference step.
OUTPUTS = [
    ("linear", "mse", "real"),
    ("tanh", "mse", "real"),
    ("elu", lm.losses.Huber(delta=0.5), "real"),
    ("softplus", "mae", "real"),
    ("sigmoid", "binary_crossentropy", "binary"),
    ("softmax", "categorical_crossentropy", "onehot"),
    ("softmax", "sparse_categorical_crossentropy", "sparse"),
    ("linear", lm.losses.CategoricalCrossentropy(from_logits=True), "onehot"),
    ("linear", lm.losses.SparseCategoricalCrossentropy(from_logits=True), "sparse"),
    ("linear", lm.losses.BinaryCrossentropy(from_logits=True), "binary"),
]


def _targets(kind, rng, rows, units):
    if kind == "real":
        return rng.standard_normal((rows, units))
    if kind == "binary":
        return rng.uniform(0, 1, (rows, units))
    labels = rng.integers(0, units, rows)
    return np.eye(units)[labels] if kind == "onehot" else labels


def _model(hidden, depth, out_act, loss, seed=0, dtype="float64", regularizer=None, dropout=None, units=3,
           inputs=4, outputs=3):
    layers = []
    for i in range(depth):
        kw = {"input_shape": (inputs,)} if i == 0 else {}
        layers.append(lm.layers.Dense(units, activation=hidden, kernel_regularizer=regularizer,
                                      bias_initializer=lm.initializers.Constant(0.1), **kw))
        if dropout and i == 0:
            layers.append(lm.layers.Dropout(dropout))
    layers.append(lm.layers.Dense(outputs, activation=out_act, kernel_regularizer=regularizer))
    model = lm.Sequential(layers, seed=seed, dtype=dtype)
    model.compile(optimizer="sgd", loss=loss)
    model.build()
    return model


def _id(value):
    return value if isinstance(value, str) else repr(value)


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("out_act,loss,kind", OUTPUTS, ids=[f"{a}-{_id(l)}" for a, l, _ in OUTPUTS])
@pytest.mark.parametrize("hidden", HIDDEN)
def test_gradient_check_passes_for_every_activation_and_loss(hidden, out_act, loss, kind, depth):
    rng = np.random.default_rng(depth * 100 + HIDDEN.index(hidden))
    model = _model(hidden, depth, out_act, loss, seed=depth)
    x = rng.standard_normal((6, 4))
    y = _targets(kind, rng, 6, 3)
    report = lm.gradient_check(model, x, y)
    assert report.checked == report.total == model.count_params()
    assert report.difference < 1e-7, report
    assert report.passed


@pytest.mark.parametrize("regularizer", [lm.regularizers.L2(0.05), lm.regularizers.L1(0.05),
                                         lm.regularizers.L1L2(l1=0.02, l2=0.03)], ids=["l2", "l1", "l1l2"])
def test_gradient_check_includes_regularization_penalty_in_j(regularizer, rng):
    model = _model("tanh", 2, "softmax", "categorical_crossentropy", regularizer=regularizer, seed=4)
    x = rng.standard_normal((6, 4))
    y = _targets("onehot", rng, 6, 3)
    report = lm.gradient_check(model, x, y)
    assert report.passed, report
    # J really contains the penalty: evaluate() reports it and it is positive.
    plain = _model("tanh", 2, "softmax", "categorical_crossentropy", seed=4)
    penalty = model.evaluate(x, y) - plain.evaluate(x, y)
    kernels = [l.kernel for l in model.layers]
    want = sum(regularizer.l1 * np.abs(k).sum() + regularizer.l2 * (k ** 2).sum() for k in kernels)
    assert penalty == pytest.approx(want, rel=1e-9)


def test_gradient_check_passes_with_dropout_which_it_turns_off(rng):
    model = _model("relu", 2, "linear", "mse", dropout=0.5, seed=2)
    assert any(isinstance(l, lm.layers.Dropout) for l in model.layers)
    x = rng.standard_normal((6, 4))
    y = rng.standard_normal((6, 3))
    report = lm.gradient_check(model, x, y)
    assert report.passed, report


@pytest.mark.parametrize("out_act,loss,kind", [("softmax", "sparse_categorical_crossentropy", "sparse"),
                                               ("sigmoid", "binary_crossentropy", "binary"),
                                               ("linear", "mse", "real")])
def test_gradient_check_of_a_float32_model_runs_on_a_float64_copy(out_act, loss, kind, rng):
    model = _model("gelu", 2, out_act, loss, dtype="float32", seed=6)
    before = model.get_weights()
    x = rng.standard_normal((6, 4)).astype(np.float32)
    y = _targets(kind, rng, 6, 3)
    report = lm.gradient_check(model, x, y)
    assert report.difference < 1e-7, report
    for a, b in zip(before, model.get_weights()):  # the model itself is untouched
        np.testing.assert_array_equal(a, b)


def test_gradient_check_on_a_random_subset_checks_that_many_parameters(rng):
    model = _model("tanh", 2, "linear", "mse", seed=1)
    report = lm.gradient_check(model, rng.standard_normal((6, 4)), rng.standard_normal((6, 3)), max_params=7)
    assert report.checked == 7 and report.total == model.count_params()
    assert report.passed


class _OneWrongPartial:
    """A float64 network whose backprop reports one wrong partial derivative (kernel[0, 0] of layer 1)."""

    def __init__(self, net):
        self._net = net

    def __getattr__(self, name):
        return getattr(self._net, name)

    def loss_and_gradient(self, x, y, sample_weight=None, training=False):
        value = self._net.loss_and_gradient(x, y, sample_weight=sample_weight, training=training)
        self._net.gradients()[0] += 0.05
        return value


def test_gradient_check_fails_and_names_the_parameter_when_a_gradient_is_wrong(monkeypatch, rng):
    model = _model("tanh", 1, "linear", "mse", seed=3)
    x = rng.standard_normal((6, 4))
    y = rng.standard_normal((6, 3))
    assert lm.gradient_check(model, x, y).passed
    correct = model.float64_network
    monkeypatch.setattr(model, "float64_network", lambda: _OneWrongPartial(correct()))
    report = lm.gradient_check(model, x, y)
    assert not report.passed
    assert report.difference > 1e-4
    first = model.layers[0].name
    assert report.worst[0].name == f"{first}/kernel[0, 0]"
    assert report.worst[0].gap == pytest.approx(0.05, rel=1e-5)
    assert "FAILED" in repr(report)


def test_gradient_check_fails_at_a_relu_kink_where_the_derivative_does_not_exist(rng):
    # Every hidden pre-activation exactly 0: backprop uses relu'(0) = 0, two-sided differences see 1/2.
    model = _model("relu", 1, "linear", "mse", seed=5)
    hidden = model.layers[0]
    hidden.kernel[...] = 0.0
    hidden.bias[...] = 0.0
    x = rng.standard_normal((6, 4))
    y = rng.standard_normal((6, 3))
    report = lm.gradient_check(model, x, y)
    assert not report.passed and report.difference > 1e-3
    assert report.worst[0].name.startswith(hidden.name + "/")


@pytest.mark.parametrize("factor", [0.0, 0.9, 2.0])
def test_gradient_check_flags_a_simulated_backprop_bug_in_one_layer(factor, rng):
    model = _model("sigmoid", 2, "softmax", "categorical_crossentropy", seed=7)
    x = rng.standard_normal((6, 4))
    y = _targets("onehot", rng, 6, 3)
    assert lm.gradient_check(model, x, y).passed
    broken = model.layers[1].name
    report = lm.gradient_check(model, x, y, simulate_bug=(broken, factor))
    assert not report.passed and report.difference > 1e-4, report
    assert all(g.name.startswith(broken + "/kernel") for g in report.worst if g.gap > 1e-6)


def test_differentiable_tensors_name_the_kernels_biases_and_normalization_scales_at_their_offsets():
    model = lm.Sequential([lm.layers.Dense(3, input_shape=(2,), name="hidden"), lm.layers.BatchNormalization(name="bn"),
                           lm.layers.Dense(1, use_bias=False, name="out")], seed=0)
    model.compile("sgd", "mse")
    tensors = model.differentiable_tensors()
    assert [(layer, label, shape) for layer, label, _, shape in tensors] == [
        ("hidden", "kernel", (2, 3)), ("hidden", "bias", (3,)), ("bn", "gamma", (3,)), ("bn", "beta", (3,)),
        ("out", "kernel", (3, 1))]
    flat = model.get_state()["params"]
    views = {"hidden/kernel": model.layers[0].kernel, "bn/gamma": model.layers[1].gamma, "out/kernel": model.layers[2].kernel}
    for layer, label, offset, shape in tensors:
        if f"{layer}/{label}" in views:
            size = int(np.prod(shape))
            np.testing.assert_array_equal(flat[offset:offset + size].reshape(shape), views[f"{layer}/{label}"])
