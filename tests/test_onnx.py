"""lamina.onnx.export: the exported graph, run by ONNX Runtime, computes what model.predict does
(within float32 rounding) for every activation, a standardizer, float64 models and trained nets."""

import json
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import lamina as lm  # noqa: E402
from lamina.onnx import export  # noqa: E402

RTOL, ATOL = 2e-5, 2e-6  # float32 graph vs lamina's predict


def run(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["output"], {"input": np.asarray(x, dtype=np.float32)})[0]


def model_with(activation, out_activation=None, dtype="float32", seed=0, inputs=6):
    return lm.Sequential([
        lm.layers.Dense(16, activation=activation, input_shape=(inputs,)),
        lm.layers.Dropout(0.5),
        lm.layers.Dense(8, activation=activation),
        lm.layers.Dense(3, activation=out_activation or activation),
    ], seed=seed, dtype=dtype)


@pytest.fixture
def x(rng):
    return rng.normal(scale=2.0, size=(37, 6)).astype(np.float32)


@pytest.mark.parametrize("activation", lm.activations.NAMES)
def test_every_activation_matches_predict(activation, x, tmp_path):
    model = model_with(activation)
    path = tmp_path / "model.onnx"
    export(model, path)
    got = run(path, x)
    assert got.shape == (37, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, model.predict(x), rtol=RTOL, atol=ATOL)


def test_softmax_classifier_after_training(rng, tmp_path):
    x = rng.normal(size=(200, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
    model = model_with("gelu", out_activation="softmax")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    export(model, tmp_path / "clf.onnx")
    got = run(tmp_path / "clf.onnx", x)
    np.testing.assert_allclose(got, model.predict(x), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-6)


def test_attached_standardizer_becomes_sub_div(rng, tmp_path):
    x = (rng.normal(size=(64, 6)) * [1, 10, 100, 0.1, 1, 5] + [5, -3, 1000, 0, 2, 7]).astype(np.float32)
    x[:, 4] = 2.0  # a constant feature: scale_ 1
    model = model_with("tanh", out_activation="linear")
    model.attach_standardizer(lm.data.Standardizer().fit(x))
    proto = export(model, tmp_path / "std.onnx")
    assert [n.op_type for n in proto.graph.node][:2] == ["Sub", "Div"]
    np.testing.assert_allclose(run(tmp_path / "std.onnx", x), model.predict(x), rtol=RTOL, atol=ATOL)


def test_float64_model_exports_a_float32_graph(x, tmp_path):
    model = model_with("elu", out_activation="sigmoid", dtype="float64")
    proto = export(model, tmp_path / "f64.onnx")
    assert all(t.data_type == onnx.TensorProto.FLOAT for t in proto.graph.initializer)
    np.testing.assert_allclose(run(tmp_path / "f64.onnx", x), model.predict(x.astype(np.float64)),
                               rtol=RTOL, atol=ATOL)


def test_graph_structure(tmp_path):
    model = lm.Sequential([lm.layers.Dense(4, activation="leaky_relu", input_shape=(3,)), lm.layers.Dropout(0.2),
                           lm.layers.Dense(2, use_bias=False)], seed=0)
    path = tmp_path / "m.onnx"
    export(model, path, opset=13)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert [n.op_type for n in proto.graph.node] == ["Gemm", "LeakyRelu", "MatMul"]  # no Dropout
    leaky = proto.graph.node[1]
    assert onnx.helper.get_attribute_value(leaky.attribute[0]) == pytest.approx(0.2)
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert inp.name == "input" and out.name == "output"
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == ["N", 3]
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["N", 2]
    assert proto.opset_import[0].version == 13 and proto.ir_version == 7 and proto.producer_name == "lamina"
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["lamina_config"]) == json.loads(json.dumps(model.get_config()))
    assert run(path, np.ones((1, 3))).shape == (1, 2)  # any batch size


def test_linear_single_layer_and_newest_opset(x, tmp_path):
    model = lm.Sequential([lm.layers.Dense(2, input_shape=(6,))], seed=1)
    proto = export(model, tmp_path / "lin.onnx", opset=onnx.defs.onnx_opset_version())
    assert [n.op_type for n in proto.graph.node] == ["Gemm"]
    np.testing.assert_allclose(run(tmp_path / "lin.onnx", x), model.predict(x), rtol=RTOL, atol=ATOL)


@pytest.mark.filterwarnings("ignore:Stochastic Optimizer")  # sklearn's ConvergenceWarning
def test_sklearn_estimator_model_exports(rng, tmp_path):
    sklearn_mod = pytest.importorskip("lamina.sklearn")
    x = rng.normal(size=(80, 6))
    y = np.where(x[:, 0] > 0, "yes", "no")
    clf = sklearn_mod.MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0).fit(x, y)
    export(clf.model_, tmp_path / "sk.onnx")
    np.testing.assert_allclose(run(tmp_path / "sk.onnx", x)[:, 0], clf.predict_proba(x)[:, 1], rtol=RTOL, atol=ATOL)


def test_errors(tmp_path, monkeypatch):
    with pytest.raises(TypeError, match="Sequential"):
        export("model", tmp_path / "m.onnx")
    unbuilt = lm.Sequential([lm.layers.Dense(2)], seed=0)
    with pytest.raises(ValueError, match="built"):
        export(unbuilt, tmp_path / "m.onnx")
    built = lm.Sequential([lm.layers.Dense(2, input_shape=(3,))], seed=0)
    for opset in (12, 10_000, "17", True):
        with pytest.raises(ValueError, match="opset"):
            export(built, tmp_path / "m.onnx", opset=opset)
    with pytest.raises(TypeError, match="path"):
        export(built, 123)
    assert not (tmp_path / "m.onnx").exists()
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install lamina\[onnx\]"):
        export(built, tmp_path / "m.onnx")
