"""The Keras-like model API: Sequential, layers as views, compile / fit / evaluate / predict, History."""

import math

import numpy as np
import pytest

import lamina as lm


def _numpy_predict(model, x):
    """Forward pass in float64 numpy from the model's own weights (dense layers only)."""
    acts = {"linear": lambda z: z, "relu": lambda z: np.maximum(z, 0), "tanh": np.tanh,
            "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
            "softmax": lambda z: np.exp(z - z.max(1, keepdims=True)) / np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True)}
    a = np.asarray(x, dtype=np.float64)
    for layer in model.layers:
        if isinstance(layer, lm.layers.Dense):
            z = a @ layer.kernel.astype(np.float64)
            if layer.use_bias:
                z = z + layer.bias
            a = acts[layer.activation](z)
    return a


def _classifier(seed=0, dtype="float32", metrics=("accuracy",)):
    model = lm.Sequential([lm.layers.Dense(5, activation="relu", input_shape=(4,)),
                           lm.layers.Dense(3, activation="softmax")], seed=seed, dtype=dtype)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=list(metrics))
    return model


def _blobs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    x = np.eye(3, 4)[labels] * 3 + rng.standard_normal((n, 4))
    return x.astype(np.float32), labels


def test_sequential_with_input_shape_is_built_right_away_like_keras():
    model = lm.Sequential([lm.layers.Dense(4, input_shape=(3,)), lm.layers.Dense(2)], seed=0)
    assert model.built
    assert model.count_params() == 3 * 4 + 4 + 4 * 2 + 2
    assert model.layers[0].kernel.shape == (3, 4)
    with_input = lm.Sequential([lm.layers.Input(shape=(3,)), lm.layers.Dense(2)], seed=0)
    assert with_input.built and len(with_input.layers) == 1  # Input is not a layer of .layers
    assert with_input.layers[0].kernel.shape == (3, 2)


def test_add_builds_incrementally_and_keeps_existing_weights():
    model = lm.Sequential(seed=1)
    assert model.layers == [] and not model.built
    model.add(lm.layers.Dense(4, activation="tanh", input_dim=3))
    first = model.layers[0]
    model.build()
    kernel = first.kernel.copy()
    model.add(lm.layers.Dense(2))
    assert len(model.layers) == 2 and model.built
    np.testing.assert_array_equal(first.kernel, kernel)
    assert model.output_size == 2


def test_build_from_an_input_shape_and_fit_builds_an_unbuilt_model():
    model = lm.Sequential([lm.layers.Dense(2)], seed=0)
    assert not model.built
    model.build((None, 5))
    assert model.built and model.layers[0].kernel.shape == (5, 2)
    other = lm.Sequential([lm.layers.Dense(2)], seed=0)
    other.compile(optimizer="sgd", loss="mse")
    other.fit(np.ones((4, 6)), np.ones((4, 2)), verbose=0)
    assert other.layers[0].kernel.shape == (6, 2)


def test_summary_lists_layers_output_shapes_and_parameter_counts():
    model = lm.Sequential([lm.layers.Dense(8, activation="relu", input_shape=(4,), name="hidden"),
                           lm.layers.Dropout(0.5, name="drop"),
                           lm.layers.Dense(3, activation="softmax", name="out")], seed=0, name="demo")
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "demo" in text
    assert "hidden (Dense)" in text and "(None, 8)" in text and "40" in text
    assert "drop (Dropout)" in text
    assert "out (Dense)" in text and "(None, 3)" in text and "27" in text
    assert "Total params: 67" in text
    assert model.count_params() == 67


def test_predict_matches_a_numpy_forward_pass_and_has_the_right_shape():
    model = lm.Sequential([lm.layers.Dense(7, activation="tanh", input_shape=(4,)),
                           lm.layers.Dense(5, activation="relu"),
                           lm.layers.Dense(3, activation="softmax")], seed=2, dtype="float64")
    x = np.random.default_rng(0).standard_normal((9, 4))
    out = model.predict(x)
    assert out.shape == (9, 3) and out.dtype == np.float64
    np.testing.assert_allclose(out, _numpy_predict(model, x), rtol=1e-12, atol=1e-15)
    # batch_size bounds memory; rows may meet a different gemm path, so allow last-ulp differences.
    np.testing.assert_allclose(model.predict(x, batch_size=2), out, rtol=1e-14, atol=1e-16)


def test_get_weights_set_weights_round_trip_and_copy_between_models():
    a, b = _classifier(seed=1), _classifier(seed=2)
    x, _ = _blobs()
    assert not np.array_equal(a.predict(x), b.predict(x))
    weights = a.get_weights()
    assert [w.shape for w in weights] == [(4, 5), (5,), (5, 3), (3,)]
    assert all(w.dtype == np.float32 for w in weights)
    b.set_weights(weights)
    for u, v in zip(b.get_weights(), weights):
        np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(a.predict(x), b.predict(x))
    weights[0][...] = 0.0  # get_weights returns copies
    assert np.any(a.get_weights()[0] != 0)


def test_layer_kernel_is_a_writable_view_into_the_model():
    model = _classifier(dtype="float64")
    x, _ = _blobs()
    layer = model.layers[0]
    before = model.predict(x)
    layer.kernel[0, :] += 1.0
    layer.bias[...] = 0.5
    assert model.get_weights()[1].tolist() == [0.5] * 5
    after = model.predict(x)
    assert not np.array_equal(before, after)
    np.testing.assert_allclose(after, _numpy_predict(model, x), rtol=1e-12)
    assert layer.kernel.shape == (4, 5) and layer.bias.shape == (5,)


def test_compile_accepts_names_or_objects_with_the_same_result():
    x, y = _blobs()
    by_name = _classifier(seed=4)
    by_object = lm.Sequential([lm.layers.Dense(5, activation="relu", input_shape=(4,)),
                               lm.layers.Dense(3, activation="softmax")], seed=4)
    by_object.compile(optimizer=lm.optimizers.Adam(), loss=lm.losses.SparseCategoricalCrossentropy(),
                      metrics=[lm.metrics.Accuracy()])
    ha = by_name.fit(x, y, batch_size=8, epochs=2, verbose=0)
    hb = by_object.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert ha.history == hb.history
    for u, v in zip(by_name.get_weights(), by_object.get_weights()):
        np.testing.assert_array_equal(u, v)
    assert isinstance(by_name.optimizer, lm.optimizers.Adam)
    assert isinstance(by_name.loss, lm.losses.SparseCategoricalCrossentropy)


def test_fit_returns_history_with_per_epoch_keys_including_validation_data():
    x, y = _blobs(80)
    model = _classifier()
    history = model.fit(x[:60], y[:60], batch_size=16, epochs=3, validation_data=(x[60:], y[60:]), verbose=0)
    assert isinstance(history, lm.callbacks.History) and model.history is history
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert history.epoch == [0, 1, 2]
    assert all(len(v) == 3 for v in history.history.values())
    assert all(0.0 <= a <= 1.0 for a in history.history["accuracy"] + history.history["val_accuracy"])
    # The last val_ entries are the trained model evaluated on the validation set.
    val_loss, val_acc = model.evaluate(x[60:], y[60:])
    assert history.history["val_loss"][-1] == pytest.approx(val_loss, rel=1e-6)
    assert history.history["val_accuracy"][-1] == pytest.approx(val_acc)


def test_validation_split_holds_out_the_last_fraction_before_shuffling():
    x, y = _blobs(50)
    model = _classifier(seed=6)
    history = model.fit(x, y, batch_size=8, epochs=2, validation_split=0.2, verbose=0)
    assert {"val_loss", "val_accuracy"} <= set(history.history)
    assert model.optimizer.iterations == 2 * math.ceil(40 / 8)
    val_loss, _ = model.evaluate(x[-10:], y[-10:])
    assert history.history["val_loss"][-1] == pytest.approx(val_loss, rel=1e-6)
    # Same as training on the first 40 rows with the last 10 as validation_data.
    twin = _classifier(seed=6)
    h2 = twin.fit(x[:40], y[:40], batch_size=8, epochs=2, validation_data=(x[40:], y[40:]), verbose=0)
    assert h2.history == history.history


def test_evaluate_returns_loss_or_list_or_dict_and_matches_numpy():
    x, y = _blobs()
    model = _classifier(dtype="float64")
    probs = _numpy_predict(model, x)
    want_loss = -np.mean(np.log(probs[np.arange(len(y)), y]))
    want_acc = np.mean(probs.argmax(1) == y)
    loss, acc = model.evaluate(x, y)
    assert loss == pytest.approx(want_loss, rel=1e-12)
    assert acc == pytest.approx(want_acc)
    assert model.evaluate(x, y, return_dict=True) == {"loss": loss, "accuracy": acc}
    plain = _classifier(dtype="float64", metrics=())
    result = plain.evaluate(x, y)
    assert isinstance(result, float)
    assert model.evaluate(x, y, batch_size=7) == pytest.approx([loss, acc], rel=1e-12)


def test_regression_metrics_match_numpy():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((20, 3))
    y = rng.standard_normal((20, 2))
    model = lm.Sequential([lm.layers.Dense(2, input_shape=(3,))], seed=0, dtype="float64")
    model.compile(optimizer="sgd", loss=lm.losses.Huber(delta=0.5), metrics=["mse", "mae"])
    e = model.predict(x) - y
    a = np.abs(e)
    logs = model.evaluate(x, y, return_dict=True)
    assert logs["loss"] == pytest.approx(np.mean(np.where(a <= 0.5, 0.5 * e * e, 0.5 * a - 0.125)), rel=1e-12)
    assert logs["mean_squared_error"] == pytest.approx(np.mean(e * e), rel=1e-12)
    assert logs["mean_absolute_error"] == pytest.approx(np.mean(a), rel=1e-12)


def test_the_last_partial_batch_is_trained():
    # n = 10, batch 4: batches [0:4], [4:8], [8:10] -> 3 SGD steps per epoch, replayed in numpy.
    rng = np.random.default_rng(8)
    x = rng.standard_normal((10, 3))
    y = rng.standard_normal((10, 1))
    model = lm.Sequential([lm.layers.Dense(1, input_shape=(3,))], seed=0, dtype="float64")
    model.compile(optimizer=lm.optimizers.SGD(learning_rate=0.1), loss="mse")
    W, b = model.get_weights()
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    assert model.optimizer.iterations == 3
    for rows in (slice(0, 4), slice(4, 8), slice(8, 10)):
        xb, yb = x[rows], y[rows]
        dp = 2 * (xb @ W + b - yb) / len(xb)
        W, b = W - 0.1 * xb.T @ dp, b - 0.1 * dp.sum(0)
    np.testing.assert_allclose(model.get_weights()[0], W, rtol=1e-12)
    np.testing.assert_allclose(model.get_weights()[1], b, rtol=1e-12)
    model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    assert model.optimizer.iterations == 9 and model.epochs_trained == 3


def test_float64_model_keeps_float64_everywhere():
    model = _classifier(dtype="float64")
    x, y = _blobs()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert model.dtype == "float64"
    assert all(w.dtype == np.float64 for w in model.get_weights())
    assert model.predict(x).dtype == np.float64
    assert lm.Sequential(dtype=np.float64).dtype == "float64"


def test_get_config_from_config_round_trip_rebuilds_the_same_model():
    model = lm.Sequential([lm.layers.Dense(6, activation="gelu", input_shape=(4,), kernel_initializer="he_normal",
                                           kernel_regularizer=lm.regularizers.L2(0.01)),
                           lm.layers.Dropout(0.3),
                           lm.layers.Dense(2, activation="sigmoid", use_bias=False)], seed=9)
    clone = lm.Sequential.from_config(model.get_config())
    assert [type(l) for l in clone.layers] == [type(l) for l in model.layers]
    assert clone.layers[0].kernel_regularizer.l2 == 0.01 and clone.layers[2].bias is None
    for u, v in zip(clone.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(u, v)


def test_reprs_are_informative():
    model = _classifier()
    assert "Dense(5, activation='relu')" in repr(model)
    assert repr(lm.layers.Dropout(0.5)) == "Dropout(rate=0.5)"
    assert "learning_rate=0.001" in repr(model.optimizer)


def test_num_threads_and_build_info(restore_threads):
    info = lm.build_info()
    assert set(info) >= {"version", "gemm_kernel", "openmp", "threads"}
    assert info["version"] == lm.__version__
    assert isinstance(info["gemm_kernel"], str) and info["gemm_kernel"]
    assert isinstance(info["openmp"], bool)
    lm.set_num_threads(1)
    assert lm.get_num_threads() == 1 == lm.build_info()["threads"]


def test_kernel_regularizers_enter_the_training_gradient():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 3))
    y = rng.standard_normal((6, 2))
    l1, l2 = 0.03, 0.05
    model = lm.Sequential([lm.layers.Dense(2, input_shape=(3,), kernel_regularizer=lm.regularizers.L1L2(l1, l2))],
                          seed=1, dtype="float64")
    model.compile(optimizer=lm.optimizers.SGD(learning_rate=0.1), loss="mse")
    W, b = model.get_weights()
    e = x @ W + b - y
    assert model.evaluate(x, y) == pytest.approx(np.mean(e ** 2) + l1 * np.abs(W).sum() + l2 * (W ** 2).sum(),
                                                  rel=1e-12)
    dp = 2 * e / e.size
    model.fit(x, y, batch_size=6, epochs=1, shuffle=False, verbose=0)
    W1, b1 = model.get_weights()
    np.testing.assert_allclose(W1, W - 0.1 * (x.T @ dp + l1 * np.sign(W) + 2 * l2 * W), rtol=1e-12)
    np.testing.assert_allclose(b1, b - 0.1 * dp.sum(0), rtol=1e-12)  # biases are not regularized


@pytest.mark.parametrize("loss,kind", [(lm.losses.CategoricalCrossentropy(from_logits=True), "onehot"),
                                       (lm.losses.SparseCategoricalCrossentropy(from_logits=True), "sparse"),
                                       (lm.losses.BinaryCrossentropy(from_logits=True), "binary"),
                                       ("binary_crossentropy", "binary_sigmoid")])
def test_evaluate_cross_entropies_on_logits_and_probabilities_match_numpy(loss, kind):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((12, 4))
    act = "sigmoid" if kind == "binary_sigmoid" else None
    model = lm.Sequential([lm.layers.Dense(3, activation=act, input_shape=(4,))], seed=2, dtype="float64")
    model.compile(optimizer="sgd", loss=loss)
    out = model.predict(x)
    labels = rng.integers(0, 3, 12)
    if kind in ("onehot", "sparse"):
        logp = out - out.max(1, keepdims=True)
        logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
        want = -np.mean(logp[np.arange(12), labels])
        y = np.eye(3)[labels] if kind == "onehot" else labels
    else:
        y = rng.uniform(0, 1, (12, 3))
        p = 1 / (1 + np.exp(-out)) if kind == "binary" else np.clip(out, 1e-7, 1 - 1e-7)
        want = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert model.evaluate(x, y) == pytest.approx(want, rel=1e-10)


def test_precision_recall_f1_match_numpy_macro_averages():
    x, y = _blobs(90, seed=3)
    model = _classifier(seed=3, dtype="float64", metrics=("accuracy", "precision", "recall", "f1"))
    model.fit(x, y, batch_size=16, epochs=3, verbose=0)
    pred = model.predict(x).argmax(1)
    c = np.zeros((3, 3))
    np.add.at(c, (y, pred), 1)
    tp = np.diag(c)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.nan_to_num(tp / c.sum(0))
        recall = np.nan_to_num(tp / c.sum(1))
        f1 = np.nan_to_num(2 * tp / (c.sum(0) + c.sum(1)))
    logs = model.evaluate(x, y, return_dict=True)
    assert logs["accuracy"] == pytest.approx(np.mean(pred == y))
    assert logs["precision"] == pytest.approx(precision.mean())
    assert logs["recall"] == pytest.approx(recall.mean())
    assert logs["f1"] == pytest.approx(f1.mean())


@pytest.mark.parametrize("hidden", ["relu", "tanh", "gelu", "elu"])
def test_predict_overwrites_only_scratch_so_evaluate_and_gradients_after_it_are_unchanged(hidden):
    # predict lets elementwise activations overwrite their pre-activations in place; a later
    # evaluate (binary cross-entropy from the sigmoid's logits) and a gradient must not see that.
    rng = np.random.default_rng(4)
    x = rng.standard_normal((40, 6))
    y = (rng.random((40, 1)) < 0.5).astype(np.float64)
    model = lm.Sequential([lm.layers.Dense(9, activation=hidden, input_shape=(6,)),
                           lm.layers.Dense(1, activation="sigmoid")], seed=2, dtype="float64")
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    W1, b1, W2, b2 = model.get_weights()
    act = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh,
           "gelu": lambda z: z * 0.5 * (1 + np.vectorize(math.erf)(z / math.sqrt(2))),
           "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0)))}[hidden]
    logits = act(x @ W1 + b1) @ W2 + b2
    want_p = 1 / (1 + np.exp(-logits))
    want_loss = np.mean(np.maximum(logits, 0) - logits * y + np.log1p(np.exp(-np.abs(logits))))
    before = model.evaluate(x, y, batch_size=40)
    report_before = lm.gradient_check(model, x[:5], y[:5])
    np.testing.assert_allclose(model.predict(x, batch_size=40), want_p, rtol=1e-12)
    after = model.evaluate(x, y, batch_size=40)
    assert after == before
    np.testing.assert_allclose(after, want_loss, rtol=1e-12)
    assert lm.gradient_check(model, x[:5], y[:5]).difference == report_before.difference


@pytest.mark.parametrize("dtype", ["float32", "float64", "mixed_bfloat16"])
def test_parameter_block_starts_on_a_cache_line(dtype):
    # The first layer's kernel opens the parameter block: on a 64-byte line, so the kernels'
    # vector loads of weight rows never straddle two lines (the blocks once began 16 bytes in).
    for units in (7, 512):
        model = lm.Sequential([lm.layers.Dense(units, input_shape=(33,)), lm.layers.Dense(3)], seed=0, dtype=dtype)
        assert model.layers[0].kernel.__array_interface__["data"][0] % 64 == 0
