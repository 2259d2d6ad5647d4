"""The Activation layer: the same function as a Dense layer's activation, computed by the core on
its own, with its backward, file, ONNX and summary."""

import numpy as np
import pytest

import lamina as lm
from lamina.layers import Activation, Dense, Input

NAMES = [name for name in lm.activations.NAMES if name != "linear"]


def _models(name, dtype, loss="mse"):
    fused = lm.Sequential([Input(shape=(4,)), Dense(5, activation="tanh"), Dense(3, activation=name)],
                          seed=7, dtype=dtype)
    split = lm.Sequential([Input(shape=(4,)), Dense(5, activation="tanh"), Dense(3), Activation(name)],
                          seed=7, dtype=dtype)
    for m in (fused, split):
        m.compile(optimizer="sgd", loss=loss)
    return fused, split


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", NAMES)
def test_an_activation_layer_computes_what_the_dense_activation_computes(name, dtype, rng):
    fused, split = _models(name, dtype)
    x = rng.standard_normal((9, 4)).astype(dtype)
    y = rng.standard_normal((9, 3)).astype(dtype)
    np.testing.assert_array_equal(split.predict(x), fused.predict(x))
    fused.fit(x, y, epochs=2, batch_size=4, verbose=0)
    split.fit(x, y, epochs=2, batch_size=4, verbose=0)
    tol = 1e-5 if dtype == "float32" else 1e-12
    for a, b in zip(split.get_weights(), fused.get_weights()):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_a_last_softmax_layer_fuses_with_the_cross_entropy(rng):
    fused, split = _models("softmax", "float64", loss="sparse_categorical_crossentropy")
    x = rng.standard_normal((12, 4))
    y = rng.integers(0, 3, 12)
    assert split.evaluate(x, y) == pytest.approx(fused.evaluate(x, y), rel=1e-14)
    fused.fit(x, y, epochs=3, batch_size=4, verbose=0)
    split.fit(x, y, epochs=3, batch_size=4, verbose=0)
    for a, b in zip(split.get_weights(), fused.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", NAMES)
def test_gradient_check_passes_through_an_activation_layer(name, rng):
    model = lm.Sequential([Input(shape=(3,)), Dense(4), Activation(name), Dense(2)], seed=1, dtype="float64")
    model.compile(optimizer="sgd", loss="mse")
    x = rng.standard_normal((5, 3)) + 0.1  # away from relu's kink at 0
    report = lm.gradient_check(model, x, rng.standard_normal((5, 2)), threshold=1e-6)
    assert report.passed, report


def test_activation_layers_match_torch_autograd(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((6, 3))
    for name, fn in [("relu", torch.relu), ("tanh", torch.tanh), ("sigmoid", torch.sigmoid),
                     ("elu", torch.nn.functional.elu), ("softplus", torch.nn.functional.softplus)]:
        model = lm.Sequential([Input(shape=(3,)), Dense(2, kernel_initializer="glorot_uniform"), Activation(name)],
                              seed=2, dtype="float64")
        model.compile(optimizer="sgd", loss="mse")
        y = rng.standard_normal((6, 2))
        kernel, bias = (torch.tensor(w, requires_grad=True) for w in model.get_weights())
        loss = ((fn(torch.tensor(x) @ kernel + bias) - torch.tensor(y)) ** 2).mean()
        loss.backward()
        net = model._net
        assert net.loss_and_gradient(x, y) == pytest.approx(loss.item(), rel=1e-12)
        np.testing.assert_allclose(net.gradients()[:6].reshape(3, 2), kernel.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_an_activation_layer_round_trips_through_a_file_and_onnx(tmp_path, rng):
    model = lm.Sequential([Input(shape=(4,)), Dense(5), Activation("gelu"), Dense(3), Activation("softmax")], seed=3)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    x = rng.standard_normal((10, 4)).astype(np.float32)
    model.fit(x, np.eye(3)[rng.integers(0, 3, 10)], epochs=1, verbose=0)
    model.save(tmp_path / "m.lamina")
    back = lm.load_model(tmp_path / "m.lamina")
    assert [repr(layer) for layer in back.layers][1] == "Activation('gelu')"
    np.testing.assert_array_equal(back.predict(x), model.predict(x))
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    proto = model.export(tmp_path / "m.onnx")
    assert [n.op_type for n in proto.graph.node][-1] == "Softmax"
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(["output"], {"input": x})[0], model.predict(x), rtol=1e-5, atol=1e-6)


def test_summary_lists_an_activation_layer_and_a_bad_name_is_refused():
    model = lm.Sequential([Input(shape=(4,)), Dense(5), Activation("relu")], seed=0)
    lines = []
    model.summary(print_fn=lines.append)
    assert any("(Activation)" in line and "(None, 5)" in line for line in lines)
    with pytest.raises(ValueError, match="activation='swish'"):
        Activation("swish")
    with pytest.raises(ValueError, match=r"softmax.*flat samples.*\(2, 3\)"):
        lm.Sequential([Input(shape=(2, 3)), Activation("softmax")], seed=0)
