"""Image-shaped samples, Flatten and Reshape: the core sees each sample flat (row-major), so an
image model is the flat model with the same weights, fed without a copy of x."""

import numpy as np
import pytest

import lamina as lm
from lamina.layers import Dense, Flatten, Input, Reshape


def _pair(dtype="float32", seed=3):
    """The same network declared for (4, 5) images and for 20 flat features."""
    image = lm.Sequential([Input(shape=(4, 5)), Flatten(), Dense(6, activation="relu"), Dense(3)],
                          seed=seed, dtype=dtype)
    flat = lm.Sequential([Input(shape=(20,)), Dense(6, activation="relu"), Dense(3)], seed=seed, dtype=dtype)
    for m in (image, flat):
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return image, flat


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_an_image_model_trains_and_predicts_exactly_as_the_flat_model(dtype, rng):
    image, flat = _pair(dtype)
    x = rng.standard_normal((40, 4, 5)).astype(dtype)
    y = rng.integers(0, 3, 40)
    np.testing.assert_array_equal(image.get_weights()[0], flat.get_weights()[0])
    h_image = image.fit(x, y, epochs=2, batch_size=8, verbose=0, validation_split=0.25).history
    h_flat = flat.fit(x.reshape(40, 20), y, epochs=2, batch_size=8, verbose=0, validation_split=0.25).history
    assert h_image == h_flat
    np.testing.assert_array_equal(image.predict(x), flat.predict(x.reshape(40, 20)))
    assert image.evaluate(x, y) == flat.evaluate(x.reshape(40, 20), y)


def test_image_arrays_reach_the_core_without_a_copy(rng):
    image, _ = _pair("float32")
    for shape in ((16, 4, 5), (16, 4, 5)):
        x = rng.standard_normal(shape).astype(np.float32)
        fed = image._features(x)
        assert fed.shape == (16, 20) and np.shares_memory(fed, x)
    model = lm.Sequential([Input(shape=(2, 3, 2)), Flatten(), Dense(2)], seed=0)
    x4 = np.zeros((5, 2, 3, 2), dtype=np.float32)
    assert np.shares_memory(model._features(x4), x4)


def test_first_layer_input_shape_and_build_take_image_shapes(rng):
    declared = lm.Sequential([Flatten(input_shape=(4, 5)), Dense(2)], seed=1)
    built = lm.Sequential([Flatten(), Dense(2)], seed=1)
    built.build((None, 4, 5))
    fitted = lm.Sequential([Flatten(), Dense(2)], seed=1)
    fitted.compile(optimizer="sgd", loss="mse")
    fitted.fit(rng.standard_normal((6, 4, 5)), rng.standard_normal((6, 2)), epochs=0, verbose=0)
    for model in (declared, built, fitted):
        assert model.input_dims == (4, 5) and model.input_size == 20
        assert model.layers[1].kernel.shape == (20, 2)


def test_an_image_model_accepts_flat_rows_and_rejects_other_shapes(rng):
    image, _ = _pair()
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    np.testing.assert_array_equal(image.predict(x.reshape(3, 20)), image.predict(x))
    with pytest.raises(ValueError, match=r"samples of shape \(4, 5\).*received shape \(3, 5, 4\)"):
        image.predict(x.reshape(3, 5, 4))
    with pytest.raises(ValueError, match=r"received shape \(3, 21\)"):
        image.predict(np.zeros((3, 21)))


def test_a_flat_model_given_images_says_to_flatten_or_declare_the_shape():
    model = lm.Sequential([Dense(2, input_shape=(20,))], seed=0)
    with pytest.raises(ValueError, match=r"x.reshape\(len\(x\), -1\).*Input\(shape=\(4, 5\)\)"):
        model.predict(np.zeros((3, 4, 5)))


def test_dense_on_image_samples_asks_for_flatten():
    with pytest.raises(ValueError, match=r"Dense layer 'hidden' takes flat samples.*\(4, 5\).*Flatten\(\)"):
        lm.Sequential([Input(shape=(4, 5)), Dense(3, name="hidden")], seed=0)


def test_reshape_infers_one_dimension_and_rejects_a_shape_that_does_not_hold_the_input():
    model = lm.Sequential([Input(shape=(12,)), Reshape((3, -1)), Flatten(), Dense(2)], seed=0)
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "(None, 3, 4)" in text and "(None, 12)" in text and "(Reshape)" in text
    with pytest.raises(ValueError, match=r"target_shape=\(5, 2\).*holds 10 values.*\(12,\).*12"):
        lm.Sequential([Input(shape=(12,)), Reshape((5, 2))], seed=0)
    with pytest.raises(ValueError, match=r"target_shape=\(5, -1\).*cannot hold.*\(12,\)"):
        lm.Sequential([Input(shape=(12,)), Reshape((5, -1))], seed=0)
    for bad in [(), (0, 2), (-1, -1), "ab", 3]:
        with pytest.raises(ValueError, match="target_shape"):
            Reshape(bad)


def test_a_declared_input_shape_a_layer_cannot_take_fails_at_construction():
    with pytest.raises(ValueError, match=r"input_shape=\(3, 2\)"):
        Dense(4, input_shape=(3, 2))
    with pytest.raises(ValueError, match=r"input_shape\[1\]"):
        Input(shape=(3, 0))


def test_flatten_and_reshape_round_trip_through_a_file_exactly(tmp_path, rng):
    model = lm.Sequential([Input(shape=(4, 5)), Reshape((20,)), Reshape((2, 10)), Flatten(), Dense(3)], seed=2)
    model.compile(optimizer="adam", loss="mse")
    x = rng.standard_normal((8, 4, 5))
    model.fit(x, rng.standard_normal((8, 3)), epochs=1, verbose=0)
    model.save(tmp_path / "m.lamina")
    back = lm.load_model(tmp_path / "m.lamina")
    assert back.get_config() == model.get_config()
    assert back.input_dims == (4, 5) and back.layers[1].target_shape == (2, 10)
    np.testing.assert_array_equal(back.predict(x), model.predict(x))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gradient_check_passes_on_an_image_model(dtype, rng):
    model = lm.Sequential([Input(shape=(3, 2, 2)), Flatten(), Dense(4, activation="tanh"), Reshape((2, 2)),
                           Flatten(), Dense(2)], seed=4, dtype=dtype)
    model.compile(optimizer="sgd", loss="mse")
    report = lm.gradient_check(model, rng.standard_normal((5, 3, 2, 2)), rng.standard_normal((5, 2)))
    assert report.passed, report


def test_onnx_export_of_an_image_model_takes_images(tmp_path, rng):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    model = lm.Sequential([Input(shape=(4, 5)), Flatten(), Dense(6, activation="relu"), Reshape((3, 2)), Flatten(),
                           Dense(3, activation="softmax")], seed=5)
    proto = model.export(tmp_path / "m.onnx")
    assert [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == ["N", 4, 5]
    x = rng.standard_normal((7, 4, 5)).astype(np.float32)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(["output"], {"input": x})[0], model.predict(x), rtol=1e-5, atol=1e-6)
