"""Bad input raises ValueError / TypeError naming the argument and echoing the value, and leaves
the model exactly as it was; unusual but valid inputs (views, Fortran order, ints, float16,
lists) are accepted and give the same results as the canonical float arrays."""

import numpy as np
import pytest

import lamina as lm
from lamina import _core

N, FEATURES, CLASSES = 10, 3, 3


def _classifier(loss="sparse_categorical_crossentropy", seed=0):
    model = lm.Sequential([lm.layers.Dense(4, activation="relu", input_shape=(FEATURES,)),
                           lm.layers.Dense(CLASSES, activation="softmax")], seed=seed)
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    return model


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, FEATURES)).astype(np.float32)
    labels = rng.integers(0, CLASSES, N)
    return x, labels


@pytest.fixture
def trained():
    """A classifier with one epoch behind it, so its optimizer state is not trivial."""
    model = _classifier()
    x, labels = _data()
    model.fit(x, labels, batch_size=4, epochs=1, verbose=0)
    return model, x, labels


def _state(model):
    return ([w.copy() for w in model.get_weights()], model.optimizer.iterations if model.optimizer else None,
            model.epochs_trained, model.loss, model.optimizer)


def _assert_unchanged(model, before):
    weights, iterations, epochs, loss, optimizer = before
    after = _state(model)
    assert len(after[0]) == len(weights)
    for a, b in zip(after[0], weights):
        np.testing.assert_array_equal(a, b)
    assert after[1:] == (iterations, epochs, loss, optimizer)


def _raises(exc, call, *fragments):
    with pytest.raises(exc) as info:
        call()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in message: {message}"
    return message


def _nan_at(x, where, value=np.nan):
    x = x.copy()
    x[where] = value
    return x


X, LABELS = _data()
FIT_CASES = {
    "x_1d": (lambda x, y: (x[:, 0], y), {}, ValueError, ["x", "2-D", "(10,)"]),
    "x_3d": (lambda x, y: (x.reshape(N, FEATURES, 1), y), {}, ValueError, ["x", "2-D", "(10, 3, 1)"]),
    "wrong_feature_count": (lambda x, y: (np.ones((N, 5), np.float32), y), {}, ValueError, ["x", "3", "(10, 5)"]),
    "length_mismatch": (lambda x, y: (x, y[:-1]), {}, ValueError, ["y", "10", "(9,)"]),
    "label_out_of_range": (lambda x, y: (x, np.where(np.arange(N) == 4, 3, y)), {}, ValueError, ["y[4]", "3"]),
    "label_negative": (lambda x, y: (x, np.where(np.arange(N) == 2, -1, y)), {}, ValueError, ["y[2]", "-1"]),
    "label_not_integer": (lambda x, y: (x, np.where(np.arange(N) == 1, 1.5, y)), {}, ValueError, ["y[1]", "1.5"]),
    "labels_one_hot_for_sparse": (lambda x, y: (x, np.eye(CLASSES)[y]), {}, ValueError, ["y", "(10, 3)"]),
    "nan_in_x": (lambda x, y: (_nan_at(x, (2, 1)), y), {}, ValueError, ["x", "NaN", "(2, 1)", "nan"]),
    "inf_in_x": (lambda x, y: (_nan_at(x, (7, 0), np.inf), y), {}, ValueError, ["x", "(7, 0)", "inf"]),
    "nan_in_y": (lambda x, y: (x, _nan_at(y.astype(float), 3)), {}, ValueError, ["y", "NaN", "(3,)", "nan"]),
    "empty": (lambda x, y: (x[:0], y[:0]), {}, ValueError, ["x", "empty", "(0, 3)"]),
    "no_features": (lambda x, y: (x[:, :0], y), {}, ValueError, ["x", "(10, 0)"]),
    "x_none": (lambda x, y: (None, y), {}, ValueError, ["x", "None"]),
    "x_strings": (lambda x, y: (np.array([["a"] * 3] * N), y), {}, TypeError, ["x", "dtype"]),
    "x_ragged": (lambda x, y: ([[1.0, 2.0, 3.0], [1.0]] * 5, y), {}, ValueError, ["x"]),
    "x_overflows_float32": (lambda x, y: (_nan_at(x.astype(np.float64), (0, 0), 1e300), y), {}, ValueError,
                            ["x", "float32"]),
    "batch_size_zero": (None, {"batch_size": 0}, ValueError, ["batch_size", "batch_size=0"]),
    "batch_size_negative": (None, {"batch_size": -4}, ValueError, ["batch_size=-4"]),
    "batch_size_float": (None, {"batch_size": 2.5}, ValueError, ["batch_size=2.5"]),
    "batch_size_string": (None, {"batch_size": "32"}, ValueError, ["batch_size='32'"]),
    "batch_size_bool": (None, {"batch_size": True}, ValueError, ["batch_size=True"]),
    "epochs_negative": (None, {"epochs": -1}, ValueError, ["epochs", "epochs=-1"]),
    "epochs_float": (None, {"epochs": 1.5}, ValueError, ["epochs=1.5"]),
    "verbose_bad": (None, {"verbose": 3}, ValueError, ["verbose=3"]),
    "validation_split_one": (None, {"validation_split": 1.0}, ValueError, ["validation_split", "1.0"]),
    "validation_split_too_small": (None, {"validation_split": 0.01}, ValueError, ["validation_split=0.01"]),
    "validation_data_wrong_features": (None, {"validation_data": (np.ones((4, 2)), np.zeros(4))}, ValueError,
                                       ["validation_data[0]", "(4, 2)"]),
    "validation_data_bad_labels": (None, {"validation_data": (np.ones((4, 3)), np.array([0, 1, 7, 0]))},
                                   ValueError, ["validation_data[1]", "7"]),
    "validation_data_not_a_pair": (None, {"validation_data": (np.ones((4, 3)),)}, ValueError, ["validation_data"]),
}


@pytest.mark.parametrize("case", sorted(FIT_CASES))
def test_fit_rejects_bad_input_naming_it_and_leaves_the_model_unchanged(case, trained):
    model, x, labels = trained
    make, kwargs, exc, fragments = FIT_CASES[case]
    xs, ys = make(x, labels) if make else (x, labels)
    before = _state(model)
    _raises(exc, lambda: model.fit(xs, ys, **dict({"batch_size": 4, "verbose": 0}, **kwargs)), *fragments)
    _assert_unchanged(model, before)


@pytest.mark.parametrize("case", ["x_1d", "wrong_feature_count", "length_mismatch", "label_out_of_range",
                                  "label_not_integer", "nan_in_x", "nan_in_y", "empty"])
def test_evaluate_rejects_the_same_bad_input_and_leaves_the_model_unchanged(case, trained):
    model, x, labels = trained
    make, _, exc, fragments = FIT_CASES[case]
    xs, ys = make(x, labels)
    before = _state(model)
    _raises(exc, lambda: model.evaluate(xs, ys), *fragments)
    _assert_unchanged(model, before)


@pytest.mark.parametrize("bad,fragments", [
    (np.ones(FEATURES), ["x", "2-D", "(3,)"]),
    (np.ones((2, 4)), ["x", "3", "(2, 4)"]),
    (np.full((2, 3), np.nan), ["x", "NaN"]),
    (np.ones((0, 3)), ["x", "(0, 3)"]),
])
def test_predict_rejects_bad_x(bad, fragments, trained):
    model, _, _ = trained
    before = _state(model)
    _raises(ValueError, lambda: model.predict(bad), *fragments)
    _raises(ValueError, lambda: model.predict(np.ones((2, 3)), batch_size=0), "batch_size=0")
    _assert_unchanged(model, before)


def test_one_hot_width_different_from_units_is_rejected():
    model = _classifier(loss="categorical_crossentropy")
    x, labels = _data()
    before = _state(model)
    _raises(ValueError, lambda: model.fit(x, np.eye(4)[labels % 4], verbose=0), "y", "(10, 3)", "(10, 4)")
    _raises(ValueError, lambda: model.fit(x, labels, verbose=0), "y", "to_categorical")
    _raises(ValueError, lambda: model.fit(x, np.eye(3)[labels] * 2, verbose=0), "y", "[0, 1]", "2.0")
    _assert_unchanged(model, before)


@pytest.mark.parametrize("make,exc,fragments", [
    (lambda: lm.layers.Dense(4, activation="swishy"), ValueError, ["activation", "'swishy'"]),
    (lambda: lm.layers.Dense(4, activation=3), ValueError, ["activation=3"]),
    (lambda: lm.layers.Dense(0), ValueError, ["units", "units=0"]),
    (lambda: lm.layers.Dense(-2), ValueError, ["units=-2"]),
    (lambda: lm.layers.Dense(2.5), ValueError, ["units=2.5"]),
    (lambda: lm.layers.Dense(4, kernel_initializer="glorot_weird"), ValueError,
     ["kernel_initializer", "'glorot_weird'"]),
    (lambda: lm.layers.Dense(4, bias_initializer="nope"), ValueError, ["bias_initializer", "'nope'"]),
    (lambda: lm.layers.Dense(4, kernel_regularizer="l3"), ValueError, ["kernel_regularizer", "'l3'"]),
    (lambda: lm.layers.Dense(4, input_shape=(0,)), ValueError, ["input_shape", "0"]),
    (lambda: lm.layers.Dense(4, input_shape=(3, 2)), ValueError, ["input_shape", "(3, 2)"]),
    (lambda: lm.layers.Dense(4, use_bias="yes"), TypeError, ["use_bias", "'yes'"]),
    (lambda: lm.layers.Dropout(1), ValueError, ["rate", "rate=1"]),
    (lambda: lm.layers.Dropout(1.0), ValueError, ["rate=1.0"]),
    (lambda: lm.layers.Dropout(-0.1), ValueError, ["rate=-0.1"]),
    (lambda: lm.layers.Dropout(float("nan")), ValueError, ["rate=nan"]),
    (lambda: lm.layers.Dropout("half"), TypeError, ["rate", "'half'"]),
    (lambda: lm.optimizers.SGD(learning_rate=-0.1), ValueError, ["learning_rate", "learning_rate=-0.1"]),
    (lambda: lm.optimizers.Adam(learning_rate=0), ValueError, ["learning_rate=0"]),
    (lambda: lm.optimizers.SGD(momentum=1.5), ValueError, ["momentum=1.5"]),
    (lambda: lm.optimizers.SGD(nesterov=1), TypeError, ["nesterov=1"]),
    (lambda: lm.optimizers.RMSprop(rho=1.0), ValueError, ["rho", "rho=1.0"]),
    (lambda: lm.optimizers.RMSprop(rho=1.2), ValueError, ["rho=1.2"]),
    (lambda: lm.optimizers.Adam(beta_1=1.0), ValueError, ["beta_1=1.0"]),
    (lambda: lm.optimizers.Adam(beta_2=-0.5), ValueError, ["beta_2=-0.5"]),
    (lambda: lm.optimizers.Adam(epsilon=0.0), ValueError, ["epsilon=0.0"]),
    (lambda: lm.optimizers.Adagrad(initial_accumulator_value=-1.0), ValueError, ["initial_accumulator_value=-1.0"]),
    (lambda: lm.optimizers.AdamW(weight_decay=-0.1), ValueError, ["weight_decay=-0.1"]),
    (lambda: lm.optimizers.SGD(clipnorm=0.0), ValueError, ["clipnorm=0.0"]),
    (lambda: lm.optimizers.SGD(clipvalue=-1.0), ValueError, ["clipvalue=-1.0"]),
    (lambda: lm.optimizers.SGD(global_clipnorm=float("inf")), ValueError, ["global_clipnorm=inf"]),
    (lambda: lm.losses.Huber(delta=0.0), ValueError, ["delta=0.0"]),
    (lambda: lm.losses.CategoricalCrossentropy(from_logits="yes"), TypeError, ["from_logits='yes'"]),
    (lambda: lm.regularizers.L2(-0.01), ValueError, ["l2=-0.01"]),
    (lambda: lm.initializers.Constant(float("nan")), ValueError, ["value=nan"]),
    (lambda: lm.Sequential(seed=-1), ValueError, ["seed=-1"]),
    (lambda: lm.Sequential(dtype="float16"), ValueError, ["dtype", "'float16'"]),
    (lambda: lm.Sequential(lm.layers.Dense(2)), TypeError, ["layers"]),
    (lambda: lm.set_num_threads(0), ValueError, ["n=0"]),
])
def test_bad_hyper_parameters_are_rejected_with_the_value_echoed(make, exc, fragments):
    _raises(exc, make, *fragments)


@pytest.mark.parametrize("kwargs,fragments", [
    ({"loss": "hinge"}, ["loss", "'hinge'"]),
    ({"loss": None}, ["loss", "None"]),
    ({"loss": "mse", "optimizer": "adamax"}, ["optimizer", "'adamax'"]),
    ({"loss": "mse", "optimizer": 0.1}, ["optimizer", "0.1"]),
    ({"loss": "sparse_categorical_crossentropy", "metrics": ["auc"]}, ["metric", "'auc'"]),
    ({"loss": "sparse_categorical_crossentropy", "metrics": "accuracy"}, ["metrics", "'accuracy'"]),
    ({"loss": "sparse_categorical_crossentropy", "metrics": ["mse"]}, ["mean_squared_error"]),
    ({"loss": lm.losses.MeanSquaredError, "optimizer": "sgd"}, ["loss"]),
])
def test_compile_rejects_unknown_names_and_keeps_the_previous_compilation(kwargs, fragments, trained):
    model, _, _ = trained
    before = _state(model)
    with pytest.raises((ValueError, TypeError)) as info:
        model.compile(**kwargs)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)
    _assert_unchanged(model, before)
    assert model.optimizer.name == "adam" and model.loss.name == "sparse_categorical_crossentropy"


def test_regression_loss_rejects_from_logits():
    for make in (lambda: lm.losses.get({"name": "mean_squared_error", "from_logits": True}),
                 lambda: lm.losses.get({"name": "huber", "from_logits": True})):
        with pytest.raises((ValueError, TypeError), match="from_logits"):
            make()


def test_fit_before_compile_and_predict_before_build_say_what_to_do():
    model = lm.Sequential([lm.layers.Dense(2)], seed=0)
    _raises(ValueError, lambda: model.fit(np.ones((4, 3)), np.ones((4, 2)), verbose=0), "compile")
    _raises(ValueError, lambda: model.evaluate(np.ones((4, 3)), np.ones((4, 2))), "compile")
    _raises(ValueError, lambda: model.predict(np.ones((4, 3))), "build")
    _raises(ValueError, lambda: model.get_weights(), "build")
    _raises(ValueError, lambda: model.layers[0].kernel, "build")
    assert not model.built and model.epochs_trained == 0


@pytest.mark.parametrize("bad,fragments", [
    (lambda ws: [ws[0].T] + ws[1:], ["weights[0]", "(3, 4)", "(4, 3)"]),
    (lambda ws: ws[:-1], ["weights", "4 arrays", "received 3"]),
    (lambda ws: ws[:3] + [np.zeros(4)], ["weights[3]", "(3,)", "(4,)"]),
    (lambda ws: [w.copy() for w in ws[:2]] + [np.full_like(ws[2], np.nan), ws[3]], ["weights[2]", "NaN"]),
    (lambda ws: "weights", ["weights"]),
])
def test_set_weights_with_wrong_shapes_changes_nothing(bad, fragments, trained):
    model, _, _ = trained
    before = _state(model)
    weights = model.get_weights()
    weights[0] = weights[0] + 1.0  # valid change that must not be applied when a later entry is bad
    _raises(ValueError, lambda: model.set_weights(bad(weights)), *fragments)
    _assert_unchanged(model, before)


def test_add_rejects_non_layers_and_misplaced_inputs():
    model = lm.Sequential([lm.layers.Dense(2, input_shape=(3,))], seed=0)
    _raises(TypeError, lambda: model.add("dense"), "'dense'")
    _raises(ValueError, lambda: model.add(lm.layers.Dense(2, input_shape=(2,))), "input_shape")
    _raises(ValueError, lambda: model.add(lm.layers.Input(shape=(3,))), "Input")
    assert len(model.layers) == 1


# --- accepted inputs -----------------------------------------------------------------------------

def _regressor(seed=5, inputs=3, dtype="float32"):
    model = lm.Sequential([lm.layers.Dense(4, activation="tanh", input_shape=(inputs,)), lm.layers.Dense(2)],
                          seed=seed, dtype=dtype)
    model.compile(optimizer="sgd", loss="mse")
    model.build()
    return model


VARIANTS = {
    "non_contiguous_view": lambda x: np.repeat(x, 2, axis=1)[:, ::2],
    "fortran_order": np.asfortranarray,
    "integer": lambda x: x.astype(np.int64),
    "int32": lambda x: x.astype(np.int32),
    "float16": lambda x: x.astype(np.float16),
    "float64": lambda x: x.astype(np.float64),
    "python_list": lambda x: x.tolist(),
    "transposed_view": lambda x: np.ascontiguousarray(x.T).T,
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_unusual_but_valid_inputs_train_and_predict_like_the_canonical_array(variant):
    rng = np.random.default_rng(1)
    base = rng.integers(-3, 4, (12, 3)).astype(np.float32)  # exact in every dtype tried
    y = rng.standard_normal((12, 2)).astype(np.float32)
    x = VARIANTS[variant](base)
    y_in = y.tolist() if variant == "python_list" else y
    reference, model = _regressor(), _regressor()
    np.testing.assert_array_equal(model.predict(x), reference.predict(base))
    reference.fit(base, y, batch_size=5, epochs=2, verbose=0)
    model.fit(x, y_in, batch_size=5, epochs=2, verbose=0)
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert model.evaluate(x, y_in) == reference.evaluate(base, y)


def test_integer_and_list_labels_are_accepted_for_sparse_crossentropy():
    x, labels = _data()
    a, b = _classifier(seed=3), _classifier(seed=3)
    a.fit(x, labels, batch_size=4, epochs=1, verbose=0)
    b.fit(x.tolist(), [float(v) for v in labels], batch_size=4, epochs=1, verbose=0)
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)
    c = _classifier(seed=3)
    c.fit(x, labels.reshape(-1, 1).astype(np.uint8), batch_size=4, epochs=1, verbose=0)  # (n, 1) column
    for u, v in zip(a.get_weights(), c.get_weights()):
        np.testing.assert_array_equal(u, v)


def test_one_dimensional_targets_are_accepted_for_a_single_output():
    model = lm.Sequential([lm.layers.Dense(1, input_shape=(2,))], seed=0)
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((5, 2)), np.arange(5), verbose=0)
    assert model.optimizer.iterations == 1


def test_a_failed_first_fit_does_not_build_the_model():
    model = lm.Sequential([lm.layers.Dense(3, activation="softmax")], seed=0)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    _raises(ValueError, lambda: model.fit(np.ones((4, 2)), [0, 1, 2, 3], verbose=0), "y[3]", "3")
    assert not model.built and model.epochs_trained == 0


def test_targets_that_overflow_the_model_dtype_are_rejected_before_training():
    model = lm.Sequential([lm.layers.Dense(2, input_shape=(3,))], seed=0)  # float32
    model.compile(optimizer="sgd", loss="mse")
    before = _state(model)
    y = np.zeros((4, 2))
    y[1, 0] = 1e300  # finite in float64, inf in float32
    _raises(ValueError, lambda: model.fit(np.ones((4, 3)), y, verbose=0), "y", "float32")
    _assert_unchanged(model, before)
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_set_weights_that_overflow_the_model_dtype_changes_nothing():
    model = lm.Sequential([lm.layers.Dense(2, input_shape=(3,))], seed=0)  # float32
    model.compile(optimizer="sgd", loss="mse")
    before = _state(model)
    weights = [w.astype(np.float64) for w in model.get_weights()]
    weights[0][0, 0] = 1e300
    _raises(ValueError, lambda: model.set_weights(weights), "weights[0]")
    _assert_unchanged(model, before)


def test_fit_with_zero_epochs_or_initial_epoch_past_epochs_trains_nothing(trained):
    model, x, labels = trained
    before = _state(model)
    for kwargs in ({"epochs": 0}, {"epochs": 1, "initial_epoch": 3}):
        history = model.fit(x, labels, verbose=0, **kwargs)
        assert history.history == {}
    _assert_unchanged(model, before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_the_finite_check_finds_one_bad_value_anywhere_in_a_block_the_threads_share(dtype):
    # Blocks of a million values and more are checked by the OpenMP team in 4096-value chunks.
    x = np.linspace(-1.0, 1.0, 3 * 2**20 + 5).astype(dtype)
    assert _core.all_finite(x)
    for where in (0, 4095, 4096, len(x) // 2, len(x) - 1):
        for bad in (np.nan, np.inf, -np.inf):
            y = x.copy()
            y[where] = bad
            assert not _core.all_finite(y), (where, bad)


def test_predict_rejects_a_nan_in_the_last_row_of_a_large_input():
    model = lm.Sequential([lm.layers.Dense(3, input_shape=(500,))], seed=0)
    model.compile(optimizer="sgd", loss="mse")
    x = np.zeros((4000, 500), np.float32)
    x[-1, -1] = np.nan
    with pytest.raises(ValueError, match=r"x.*NaN.*\(3999, 499\)"):
        model.predict(x)


@pytest.mark.parametrize("where", [(0, 0), (5, 2), (1023, 499), (1024, 0), (2999, 499)])
@pytest.mark.parametrize("layout", ["float32", "float64", "fortran"])
def test_predict_names_the_first_nan_or_inf_in_any_batch_and_any_input_layout(where, layout):
    # float32 C-ordered input is checked batch by batch inside the core (read once); other
    # layouts are converted first and checked whole. Either way the same message.
    model = lm.Sequential([lm.layers.Dense(3, input_shape=(500,))], seed=0)
    model.compile(optimizer="sgd", loss="mse")
    x = np.zeros((3000, 500), np.float64 if layout == "float64" else np.float32)
    x[where] = np.inf if where[0] % 2 else np.nan
    if layout == "fortran":
        x = np.asfortranarray(x)
    with pytest.raises(ValueError, match=rf"x contains NaN or infinity \(first at index \({where[0]}, {where[1]}\)"):
        model.predict(x, batch_size=1024)


def test_core_predict_with_check_finite_returns_none_at_a_non_finite_batch():
    model = lm.Sequential([lm.layers.Dense(2, input_shape=(4,))], seed=0)
    model.compile(optimizer="sgd", loss="mse")
    model.build()
    net = model._require_built("predict")
    x = np.ones((10, 4), np.float32)
    np.testing.assert_array_equal(net.predict(x, 3, check_finite=True), model.predict(x, batch_size=3))
    x[7, 1] = np.nan
    assert net.predict(x, 3, check_finite=True) is None
    assert np.isnan(net.predict(x, 3)[7]).all()  # unchecked: NaN goes through
