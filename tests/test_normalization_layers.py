"""BatchNormalization and LayerNormalization: computed in the core, checked against numpy and
PyTorch, differentiated correctly, saved, exported and refused with clear errors."""

import numpy as np
import pytest

import lamina as lm
from lamina.layers import Activation, BatchNormalization, Dense, LayerNormalization


def _model(dtype="float64", norm=None, activation=None, seed=0):
    norm = norm if norm is not None else BatchNormalization()
    model = lm.Sequential([Dense(6, activation=activation, input_shape=(4,)), norm, Activation("tanh"), Dense(2)],
                          seed=seed, dtype=dtype)
    model.compile("adam", "mse")
    return model


def _data(rows=32, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((rows, 4)) * 3 + 1, rng.standard_normal((rows, 2))


def _norm_input(model, x):
    """What the normalization layer (layer 1) receives: the first Dense's output."""
    kernel, bias = model.layers[0].get_weights()
    return x @ kernel.astype(np.float64) + bias


def test_batch_normalization_uses_batch_statistics_in_training_and_moving_ones_at_inference():
    model = _model()
    bn = model.layers[1]
    bn.gamma[...] = np.linspace(0.5, 2.0, 6)
    bn.beta[...] = np.linspace(-1.0, 1.0, 6)
    bn.moving_mean[...] = 0.3
    bn.moving_variance[...] = 2.0
    probe = lm.Sequential([Dense(6, input_shape=(4,)), BatchNormalization()], seed=0, dtype="float64")
    probe.set_weights(model.get_weights()[:6])
    x, _ = _data()
    h = _norm_input(model, x)
    expected_train = (h - h.mean(0)) / np.sqrt(h.var(0) + 1e-3) * bn.gamma + bn.beta
    expected_infer = (h - 0.3) / np.sqrt(2.0 + 1e-3) * bn.gamma + bn.beta
    np.testing.assert_allclose(probe.predict(x, verbose=0), expected_infer, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(probe(x, training=True), expected_train, rtol=1e-12, atol=1e-12)


def test_each_training_step_updates_the_moving_statistics_once_with_keras_rule():
    model = _model()
    x, y = _data(16)
    h = _norm_input(model, x)
    model.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    bn = model.layers[1]
    np.testing.assert_allclose(bn.moving_mean, 0.01 * h.mean(0), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(bn.moving_variance, 0.99 + 0.01 * h.var(0), rtol=1e-12)


def test_layer_normalization_normalizes_each_sample_over_its_features():
    model = lm.Sequential([LayerNormalization(input_shape=(5,), epsilon=1e-2)], seed=0, dtype="float64")
    model.layers[0].gamma[...] = np.arange(1.0, 6.0)
    model.layers[0].beta[...] = 0.5
    x = np.random.default_rng(2).standard_normal((7, 5)) * 4
    expected = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-2) * np.arange(1.0, 6.0) + 0.5
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(model(x, training=True), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("norm", [BatchNormalization, LayerNormalization])
@pytest.mark.parametrize("training", [True, False])
def test_gradient_check_passes_through_normalization(dtype, norm, training):
    model = _model(dtype, norm())
    x, y = _data(64)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)  # moving statistics and gamma away from their start
    report = lm.gradient_check(model, x[:8], y[:8], training=training)
    assert report.passed, report
    assert report.total == 6 * 4 + 6 + 2 * 6 + 6 * 2 + 2  # gammas and betas, never the moving statistics


@pytest.mark.parametrize("center,scale", [(True, True), (False, True), (True, False), (False, False)])
@pytest.mark.parametrize("norm", [BatchNormalization, LayerNormalization])
def test_normalization_gradients_match_torch_autograd(norm, center, scale):
    torch = pytest.importorskip("torch")
    model = _model("float64", norm(center=center, scale=scale))
    layer = model.layers[1]
    if scale:
        layer.gamma[...] = np.linspace(0.5, 1.5, 6)
    if center:
        layer.beta[...] = np.linspace(-0.2, 0.3, 6)
    x, y = _data(12)
    net = model._net
    loss = net.loss_and_gradient(x, y, training=True)
    tensors = [torch.tensor(w, requires_grad=True) for w in model.get_weights()]
    it = iter(tensors)
    kernel, bias = next(it), next(it)
    gamma = next(it) if scale else None
    beta = next(it) if center else None
    if norm is BatchNormalization:
        next(it), next(it)  # moving statistics: not differentiated
    k2, b2 = next(it), next(it)
    h = torch.tensor(x) @ kernel + bias
    axis = 0 if norm is BatchNormalization else 1
    hat = (h - h.mean(axis, keepdim=True)) / torch.sqrt(h.var(axis, unbiased=False, keepdim=True) + 1e-3)
    if gamma is not None:
        hat = hat * gamma
    if beta is not None:
        hat = hat + beta
    out = torch.tanh(hat) @ k2 + b2
    ref = ((out - torch.tensor(y)) ** 2).mean()
    ref.backward()
    assert loss == pytest.approx(float(ref.detach()), rel=1e-12)
    flat = net.gradients()
    offsets = layer._offsets
    pieces = [(model.layers[0]._offsets["kernel"], kernel), (model.layers[0]._offsets["bias"], bias),
              (model.layers[3]._offsets["kernel"], k2), (model.layers[3]._offsets["bias"], b2)]
    if gamma is not None:
        pieces.append((offsets["gamma"], gamma))
    if beta is not None:
        pieces.append((offsets["beta"], beta))
    for start, t in pieces:
        g = t.grad.numpy().ravel()
        np.testing.assert_allclose(flat[start:start + g.size], g, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("norm", [BatchNormalization, LayerNormalization])
def test_training_with_normalization_gives_the_same_bits_for_any_thread_count(norm):
    x, y = _data(300)
    runs = []
    for threads in (1, 2):
        # 300 rows x 256 features: past the size where the core's normalization loops go parallel.
        model = lm.Sequential([Dense(256, input_shape=(4,)), norm(), Activation("relu"), Dense(2)], seed=0,
                              dtype="float32")
        model.compile("adam", "mse")
        model.num_threads = threads
        model.fit(x, y, epochs=2, batch_size=100, verbose=0)
        runs.append(model.get_state()["params"])
    assert runs[0].tobytes() == runs[1].tobytes()


def test_a_zero_row_step_leaves_the_moving_statistics_alone():
    model = _model()
    x, y = _data(3)
    model.fit(x, y, epochs=1, verbose=0)
    before = [w.copy() for w in model.layers[1].non_trainable_weights]
    model._net.train_batches(lm._core.BatchStats(), x, y, None, 3, 3, 1, empty_steps=True)
    after = model.layers[1].non_trainable_weights
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    assert np.isfinite(model.get_state()["params"]).all()


def test_a_frozen_batch_normalization_keeps_its_weights_and_normalizes_with_moving_statistics():
    model = _model()
    x, y = _data(64)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    bn = model.layers[1]
    bn.trainable = False
    frozen = [w.copy() for w in bn.weights]
    assert len(bn.trainable_weights) == 0 and len(bn.non_trainable_weights) == 4
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    for a, b in zip(frozen, bn.weights):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(model(x, training=True), model.predict(x, verbose=0), rtol=1e-12)


def test_batch_normalization_weights_split_into_trainable_and_moving_statistics():
    bn = _model().layers[1]
    assert [w.shape for w in bn.trainable_weights] == [(6,), (6,)]
    np.testing.assert_array_equal(bn.non_trainable_weights[1], np.ones(6))  # moving variance starts at 1


@pytest.mark.parametrize("norm", [BatchNormalization, LayerNormalization])
def test_saving_and_loading_keeps_normalization_weights_and_moving_statistics_exactly(tmp_path, norm):
    model = _model("float32", norm(momentum=0.9) if norm is BatchNormalization else norm(epsilon=1e-2))
    x, y = _data(64)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    model.save(tmp_path / "m.lamina")
    back = lm.load_model(tmp_path / "m.lamina")
    assert back.get_state()["params"].tobytes() == model.get_state()["params"].tobytes()
    assert back.layers[1].get_config() == model.layers[1].get_config()
    np.testing.assert_array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    back.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert back.get_state()["params"].tobytes() == model.get_state()["params"].tobytes()


@pytest.mark.parametrize("opset", [13, 17])
@pytest.mark.parametrize("norm,activation,folded", [(BatchNormalization, None, True),
                                                    (BatchNormalization, "relu", False),
                                                    (LayerNormalization, None, False)])
def test_onnx_export_of_normalization_matches_predict(tmp_path, norm, activation, folded, opset):
    ort = pytest.importorskip("onnxruntime")
    model = _model("float32", norm(), activation=activation)
    x, y = _data(64)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    proto = lm.onnx.export(model, tmp_path / "m.onnx", opset=opset)
    ops = [n.op_type for n in proto.graph.node]
    if folded:
        assert ops == ["Gemm", "Tanh", "Gemm"]  # the BatchNormalization lives in the first Gemm
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(["output"], {"input": x.astype(np.float32)})[0]
    np.testing.assert_allclose(got, model.predict(x, verbose=0), rtol=1e-4, atol=1e-5)


def test_summary_counts_normalization_weights():
    lines = []
    _model().summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "batch_normalization" in text and "BatchNormalization" in text
    assert "Total params: 68" in text  # 30 + 4 vectors of 6 + 14
    assert _model().count_params() == 68


@pytest.mark.parametrize("make,fragment", [
    (lambda: BatchNormalization(momentum=1.5), "momentum=1.5"),
    (lambda: BatchNormalization(momentum=float("nan")), "momentum=nan"),
    (lambda: BatchNormalization(epsilon=0), "epsilon=0"),
    (lambda: LayerNormalization(epsilon=-1e-3), "epsilon=-0.001"),
])
def test_bad_normalization_arguments_are_value_errors_naming_them(make, fragment):
    with pytest.raises(ValueError, match=fragment.replace(".", r"\.")):
        make()


def test_non_boolean_center_is_a_type_error():
    with pytest.raises(TypeError, match="center"):
        LayerNormalization(center=1)


def test_normalization_layers_round_trip_through_get_config():
    for layer in (BatchNormalization(momentum=0.9, epsilon=1e-4, center=False), LayerNormalization(scale=False)):
        copy = lm.layers.deserialize(type(layer).__name__, layer.get_config())
        assert copy.get_config() == layer.get_config()


def test_calling_the_model_in_training_mode_changes_no_moving_statistic():
    model = _model()
    x, _ = _data()
    before = model.get_state()["params"]
    model(x, training=True)
    assert model.get_state()["params"].tobytes() == before.tobytes()


def test_a_step_the_gradient_hook_refuses_leaves_the_moving_statistics_alone():
    model = _model()
    x, y = _data(16)
    before = [w.copy() for w in model.layers[1].non_trainable_weights]

    def refuse(gradient, step):
        raise RuntimeError("no")

    model.set_gradient_hook(refuse)
    with pytest.raises(RuntimeError, match="no"):
        model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    for a, b in zip(before, model.layers[1].non_trainable_weights):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------- Normalization (adapt)

def _normalized_model(layer, dtype="float64"):
    model = lm.Sequential([lm.layers.Input(shape=(3,)), layer, Dense(2)], seed=0, dtype=dtype)
    model.compile("sgd", "mse")
    return model


def _features(rows=50):
    x = np.random.default_rng(4).standard_normal((rows, 3)) * [1.0, 10.0, 100.0] + [0.0, 5.0, -7.0]
    x[:, 2] = 3.0  # a constant feature: maps to 0, not inf
    return x


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_normalization_applies_the_standardizers_statistics(dtype):
    x = _features()
    layer = lm.layers.Normalization()
    layer.adapt(x)
    model = lm.Sequential([lm.layers.Input(shape=(3,)), layer], seed=0, dtype=dtype)
    scaler = lm.data.Standardizer().fit(x)
    tol = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(model.predict(x, verbose=0), scaler.transform(x), rtol=tol, atol=tol)
    np.testing.assert_allclose(model(x, training=True), scaler.transform(x), rtol=tol, atol=tol)
    assert np.isfinite(model.predict(x, verbose=0)).all()


def test_normalization_never_trains_and_gradient_check_passes_through_it():
    x, y = _features(), np.zeros((50, 2))
    layer = lm.layers.Normalization()
    layer.adapt(x)
    model = _normalized_model(layer)
    before = [w.copy() for w in layer.weights]
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 2
    model.fit(x, y, epochs=2, batch_size=10, verbose=0)
    for a, b in zip(before, layer.weights):
        np.testing.assert_array_equal(a, b)
    assert lm.gradient_check(model, x[:6], y[:6], training=True).passed


def test_normalization_given_mean_and_variance_matches_keras_formula():
    layer = lm.layers.Normalization(mean=[1.0, 2.0, 3.0], variance=[4.0, 0.25, 1.0])
    model = lm.Sequential([lm.layers.Input(shape=(3,)), layer], seed=0, dtype="float64")
    x = np.array([[3.0, 2.5, 3.0]])
    np.testing.assert_allclose(model.predict(x, verbose=0), [[1.0, 1.0, 0.0]], rtol=1e-15)


def test_normalization_saves_and_loads_exactly(tmp_path):
    x, y = _features(), np.zeros((50, 2))
    layer = lm.layers.Normalization()
    layer.adapt(x)
    model = _normalized_model(layer, "float32")
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.lamina")
    back = lm.load_model(tmp_path / "m.lamina")
    assert back.get_state()["params"].tobytes() == model.get_state()["params"].tobytes()
    assert back.layers[0].is_adapted
    np.testing.assert_array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))


def test_normalization_exports_to_onnx(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    x = _features()
    layer = lm.layers.Normalization()
    layer.adapt(x)
    model = _normalized_model(layer, "float32")
    lm.onnx.export(model, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(["output"], {"input": x.astype(np.float32)})[0]
    np.testing.assert_allclose(got, model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_an_unadapted_normalization_is_refused_by_predict_and_fit():
    model = _normalized_model(lm.layers.Normalization())
    x = _features()
    with pytest.raises(ValueError, match="not adapted"):
        model.predict(x, verbose=0)
    with pytest.raises(ValueError, match="not adapted"):
        model.fit(x, np.zeros((50, 2)), verbose=0)


def test_adapt_on_the_wrong_shape_is_a_value_error_naming_it():
    layer = lm.layers.Normalization()
    _normalized_model(layer)
    with pytest.raises(ValueError, match=r"3 features.*\(50, 4\)"):
        layer.adapt(np.zeros((50, 4)))
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        lm.layers.Normalization().adapt(np.zeros(5))
    assert not layer.is_adapted


@pytest.mark.parametrize("kwargs,fragment", [
    ({"mean": [0.0]}, "both mean and variance"),
    ({"mean": [0.0, 1.0], "variance": [1.0]}, "same size"),
    ({"mean": [0.0], "variance": [-1.0]}, "non-negative"),
    ({"epsilon": -1.0}, "epsilon=-1"),
])
def test_bad_normalization_statistics_are_value_errors(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        lm.layers.Normalization(**kwargs)


def _folded_pair_and_twin(dtype, center=True, scale=True, use_bias=True):
    """The same weights in Dense → BatchNormalization (folded at inference) and with an inference
    identity (Dropout(0.0)) between them, which keeps them apart."""
    rng = np.random.default_rng(4)
    folded = lm.Sequential([Dense(48, input_shape=(20,), use_bias=use_bias),
                            BatchNormalization(center=center, scale=scale), Activation("relu"), Dense(3)],
                           seed=0, dtype=dtype)
    apart = lm.Sequential([Dense(48, input_shape=(20,), use_bias=use_bias), lm.layers.Dropout(0.0),
                           BatchNormalization(center=center, scale=scale), Activation("relu"), Dense(3)],
                          seed=0, dtype=dtype)
    weights = [w + rng.standard_normal(w.shape).astype(w.dtype) * 0.1 for w in folded.get_weights()]
    n_bn = len(folded.layers[1].get_weights())
    first = 2 if use_bias else 1
    weights[first + n_bn - 1] = np.abs(weights[first + n_bn - 1]) + 0.5  # a positive moving variance
    folded.set_weights(weights)
    apart.set_weights(weights)
    return folded, apart


@pytest.mark.parametrize("dtype", ["float32", "float64", "mixed_bfloat16"])
@pytest.mark.parametrize("center,scale,use_bias", [(True, True, True), (False, False, False), (True, False, True)])
def test_inference_folds_batch_normalization_into_the_dense_before_it_with_the_same_bits(dtype, center, scale,
                                                                                         use_bias):
    folded, apart = _folded_pair_and_twin(dtype, center, scale, use_bias)
    assert list(folded._net.folded_batch_norms()) == [1]
    assert list(apart._net.folded_batch_norms()) == []
    x = np.random.default_rng(5).standard_normal((300, 20)).astype(folded.dtype)
    expected = apart.predict(x, verbose=0)
    np.testing.assert_array_equal(folded.predict(x, verbose=0), expected)
    np.testing.assert_array_equal(folded(x), expected)
    for rows in (1, 7, 128):  # every GEMM path (row-vector, small-m, blocked) runs the same epilogue
        np.testing.assert_array_equal(folded.predict(x[:rows], verbose=0), expected[:rows])


def test_folded_batch_normalization_matches_a_float64_reference():
    folded, _ = _folded_pair_and_twin("float64")
    kernel, bias, gamma, beta, mean, var = folded.get_weights()[:6]
    x = np.random.default_rng(6).standard_normal((50, 20))
    h = (x @ kernel + bias - mean) / np.sqrt(var + 1e-3) * gamma + beta
    out_kernel, out_bias = folded.get_weights()[6:]
    np.testing.assert_allclose(folded.predict(x, verbose=0), np.maximum(h, 0) @ out_kernel + out_bias, rtol=1e-10,
                               atol=1e-12)


def test_training_and_evaluate_after_folded_inference_still_use_batch_statistics():
    folded, apart = _folded_pair_and_twin("float64")
    for m in (folded, apart):
        m.compile("sgd", "mse")
    x = np.random.default_rng(7).standard_normal((64, 20))
    y = np.random.default_rng(8).standard_normal((64, 3))
    folded.predict(x, verbose=0)
    for m in (folded, apart):
        m.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    for a, b in zip(folded.get_weights(), apart.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert folded.evaluate(x, y, verbose=0) == apart.evaluate(x, y, verbose=0)
