"""Augmentation layers: what each transform does (against numpy float64 references), that it
acts only in training, that its draws repeat (seed, step, any thread count), that its backward is
right (gradient check with the draws held fixed), and its files, ONNX, summary and errors."""

import math

import numpy as np
import pytest

import lamina as lm
from lamina.layers import Dense, Flatten, GaussianNoise, Input, RandomFlip, RandomRotation, RandomTranslation, RandomZoom, Reshape

FILL_MODES = ["reflect", "wrap", "constant", "nearest"]
NP_PAD = {"reflect": "symmetric", "wrap": "wrap", "constant": "constant", "nearest": "edge"}


def _augmenter(layer, shape, dtype="float64", seed=0):
    return lm.Sequential([Input(shape=shape), layer], seed=seed, dtype=dtype)


def _train_view(model, x):
    """What the layers give in training, one batch, reshaped to the samples' shape."""
    return model(x, training=True).reshape(x.shape)


def _fix(i, n, mode):
    """numpy reference of the fill modes on integer taps (None: the fill value)."""
    if 0 <= i < n:
        return i
    if mode == "constant":
        return None
    if mode == "nearest":
        return min(max(i, 0), n - 1)
    if mode == "wrap":
        return i % n
    m = i % (2 * n)
    return m if m < n else 2 * n - 1 - m


def _reference_affine(image, a, mode, fill=0.0):
    """Bilinear sampling of image (h, w, c) at input = a @ (x, y, 1) for every output pixel."""
    h, w, _ = image.shape
    out = np.zeros_like(image, dtype=np.float64)
    for y in range(h):
        for x in range(w):
            xs = a[0] * x + a[1] * y + a[2]
            ys = a[3] * x + a[4] * y + a[5]
            x0, y0 = math.floor(xs), math.floor(ys)
            fx, fy = xs - x0, ys - y0
            for dy, dx, weight in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)),
                                   (1, 1, fy * fx)):
                xi, yi = _fix(x0 + dx, w, mode), _fix(y0 + dy, h, mode)
                out[y, x] += weight * (fill if xi is None or yi is None else image[yi, xi])
    return out


# ----------------------------------------------------------------- what each transform does
@pytest.mark.parametrize("mode, allowed", [
    ("horizontal", lambda im: [im, im[:, ::-1]]),
    ("vertical", lambda im: [im, im[::-1]]),
    ("horizontal_and_vertical", lambda im: [im, im[:, ::-1], im[::-1], im[::-1, ::-1]]),
])
@pytest.mark.parametrize("shape", [(4, 5, 2), (4, 5)])
def test_random_flip_flips_each_image_by_its_own_draw(mode, allowed, shape, rng):
    model = _augmenter(RandomFlip(mode), shape)
    x = rng.standard_normal((64,) + shape)
    out = _train_view(model, x)
    seen = set()
    for image, got in zip(x, out):
        matches = [i for i, candidate in enumerate(allowed(image)) if np.array_equal(got, candidate)]
        assert matches, "an output is not a flip of its input"
        seen.add(matches[0])
    assert seen == set(range(len(allowed(x[0]))))  # 64 images: every outcome occurs
    np.testing.assert_array_equal(model.predict(x).reshape(x.shape), x)  # identity at inference


@pytest.mark.parametrize("fill_mode", FILL_MODES)
def test_random_translation_by_a_fixed_fraction_shifts_and_fills_like_numpy_pad(fill_mode, rng):
    layer = RandomTranslation((0.25, 0.25), (-0.2, -0.2), fill_mode=fill_mode, fill_value=0.5)
    model = _augmenter(layer, (8, 5))
    x = rng.standard_normal((3, 8, 5))
    # Down by 0.25 * 8 = 2 rows, left by 0.2 * 5 = 1 column.
    kwargs = {"constant_values": 0.5} if fill_mode == "constant" else {}
    want = np.pad(x, ((0, 0), (2, 0), (0, 1)), mode=NP_PAD[fill_mode], **kwargs)[:, :8, 1:]
    np.testing.assert_allclose(_train_view(model, x), want, rtol=0, atol=1e-12)


def test_random_rotation_by_a_quarter_turn_is_numpy_rot90(rng):
    model = _augmenter(RandomRotation((0.25, 0.25)), (6, 6, 3))
    x = rng.standard_normal((4, 6, 6, 3))
    np.testing.assert_allclose(_train_view(model, x), np.rot90(x, k=1, axes=(1, 2)), rtol=0, atol=1e-12)


@pytest.mark.parametrize("fill_mode", FILL_MODES)
@pytest.mark.parametrize("layer, matrix", [
    # zoom 1.5 about the centre (3.5, 2.5) of an (6, 8) image
    (lambda m: RandomZoom((0.5, 0.5), fill_mode=m, fill_value=-1.0),
     [1.5, 0, 3.5 * -0.5, 0, 1.5, 2.5 * -0.5]),
    (lambda m: RandomZoom((-0.4, -0.4), width_factor=(0.3, 0.3), fill_mode=m, fill_value=-1.0),
     [1.3, 0, 3.5 * -0.3, 0, 0.6, 2.5 * 0.4]),
    (lambda m: RandomTranslation((0.1, 0.1), (0.3, 0.3), fill_mode=m, fill_value=-1.0),
     [1, 0, -0.3 * 8, 0, 1, -0.1 * 6]),
    (lambda m: RandomRotation((0.1, 0.1), fill_mode=m, fill_value=-1.0),
     [math.cos(0.2 * math.pi), -math.sin(0.2 * math.pi),
      (7 - (math.cos(0.2 * math.pi) * 7 - math.sin(0.2 * math.pi) * 5)) / 2,
      math.sin(0.2 * math.pi), math.cos(0.2 * math.pi),
      (5 - (math.sin(0.2 * math.pi) * 7 + math.cos(0.2 * math.pi) * 5)) / 2]),
])
def test_geometric_layers_sample_bilinearly_as_the_numpy_reference(layer, matrix, fill_mode, rng):
    model = _augmenter(layer(fill_mode), (6, 8, 2))
    x = rng.standard_normal((2, 6, 8, 2))
    want = np.stack([_reference_affine(image, matrix, fill_mode, -1.0) for image in x])
    np.testing.assert_allclose(_train_view(model, x), want, rtol=1e-12, atol=1e-12)


def test_nearest_interpolation_picks_whole_pixels(rng):
    model = _augmenter(RandomZoom((-0.5, -0.5), interpolation="nearest"), (5, 5))
    x = rng.standard_normal((2, 5, 5))
    out = _train_view(model, x)
    assert all(np.isin(o, im).all() for o, im in zip(out, x))
    np.testing.assert_array_equal(out[:, 2, 2], x[:, 2, 2])  # the centre stays put


def test_random_ranges_draw_a_different_transform_per_image(rng):
    for layer in (RandomTranslation(0.3, 0.3), RandomRotation(0.2), RandomZoom(0.3)):
        model = _augmenter(layer, (6, 6))
        x = np.broadcast_to(rng.standard_normal((1, 6, 6)), (16, 6, 6)).copy()
        out = _train_view(model, x)
        assert len({o.tobytes() for o in out}) == 16, layer
        np.testing.assert_array_equal(model.predict(x).reshape(x.shape), x)


def test_gaussian_noise_adds_noise_of_the_given_stddev_in_training_only():
    model = _augmenter(GaussianNoise(0.5), (4000,))
    x = np.ones((25, 4000))
    noise = model(x, training=True) - x
    assert abs(noise.mean()) < 0.01 and abs(noise.std() - 0.5) < 0.01
    np.testing.assert_array_equal(model.predict(x), x)
    np.testing.assert_array_equal(model(x), x)


# ----------------------------------------------------------------- draws: seed, step, threads
def _augmented_classifier(seed=11, dtype="float32", shape=(6, 6)):
    model = lm.Sequential([Input(shape=shape), RandomFlip("horizontal"), RandomTranslation(0.2, 0.2),
                           RandomRotation(0.05), RandomZoom(0.1), Flatten(), GaussianNoise(0.05),
                           Dense(8, activation="relu"), Dense(3, activation="softmax")], seed=seed, dtype=dtype)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_training_with_augmentation_repeats_bit_for_bit_for_any_thread_count(rng, restore_threads):
    # Batches of 64 images of 16 x 16 are large enough for the kernels to split them among threads.
    x = rng.standard_normal((300, 16, 16)).astype(np.float32)
    y = rng.integers(0, 3, 300)
    weights = []
    for threads in (1, 2):
        lm.set_num_threads(threads)
        model = _augmented_classifier(shape=(16, 16))
        model.fit(x, y, epochs=2, batch_size=64, verbose=0)
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)
    plain = lm.Sequential([Input(shape=(16, 16)), Flatten(), Dense(8, activation="relu"),
                           Dense(3, activation="softmax")], seed=11)
    plain.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    plain.fit(x, y, epochs=2, batch_size=64, verbose=0)
    assert not np.array_equal(plain.get_weights()[0], weights[0][0])  # the augmentation did act in fit


def test_a_model_resumed_from_a_file_draws_what_an_uninterrupted_one_draws(tmp_path, rng):
    x = rng.standard_normal((50, 6, 6)).astype(np.float32)
    y = rng.integers(0, 3, 50)
    straight = _augmented_classifier()
    straight.fit(x, y, epochs=2, batch_size=16, verbose=0)
    first = _augmented_classifier()
    first.fit(x, y, epochs=1, batch_size=16, verbose=0)
    first.save(tmp_path / "m.lamina")
    resumed = lm.load_model(tmp_path / "m.lamina")
    np.testing.assert_array_equal(resumed(x, training=True), first(x, training=True))
    resumed.fit(x, y, epochs=2, initial_epoch=1, batch_size=16, verbose=0)
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_training_call_draws_at_the_current_step_without_advancing_it(rng):
    model = _augmented_classifier()
    x = rng.standard_normal((8, 6, 6)).astype(np.float32)
    steps = model.get_state()["steps"]
    a, b = model(x, training=True), model(x, training=True)
    np.testing.assert_array_equal(a, b)
    assert model.get_state()["steps"] == steps
    model.fit(x, rng.integers(0, 3, 8), epochs=1, batch_size=8, verbose=0)
    assert not np.array_equal(model(x, training=True), model.predict(x))


@pytest.mark.parametrize("make", [
    lambda: RandomFlip("horizontal_and_vertical"), lambda: RandomTranslation(0.3, 0.3, fill_mode="constant"),
    lambda: RandomRotation(0.2), lambda: RandomZoom(0.3, 0.2, fill_mode="wrap"),
    lambda: RandomZoom(0.3, fill_mode="nearest", interpolation="nearest"), lambda: GaussianNoise(0.3),
])
def test_float32_and_float64_models_augment_alike(make, rng):
    x = rng.standard_normal((6, 5, 4, 2))
    out = {dtype: _train_view(_augmenter(make(), (5, 4, 2), dtype=dtype), x.astype(dtype))
           for dtype in ("float32", "float64")}
    np.testing.assert_allclose(out["float32"], out["float64"], rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------- backward
@pytest.mark.parametrize("make", [
    lambda: RandomFlip("horizontal"), lambda: RandomFlip("vertical"), lambda: RandomFlip(),
    lambda: RandomTranslation(0.3, (-0.4, 0.2), fill_mode="constant", fill_value=0.7),
    lambda: RandomTranslation(0.3, 0.3, fill_mode="reflect"), lambda: RandomTranslation(0.5, 0.5, fill_mode="wrap"),
    lambda: RandomRotation(0.3, fill_mode="nearest"), lambda: RandomRotation(0.3, fill_mode="constant"),
    lambda: RandomZoom(0.4), lambda: RandomZoom((-0.5, 0.5), (0.1, 0.6), fill_mode="constant"),
    lambda: RandomZoom(0.4, interpolation="nearest"), lambda: GaussianNoise(0.4),
])
@pytest.mark.parametrize("shape", [(4, 5), (3, 4, 2)])
def test_gradient_check_passes_through_an_augmentation_layer_between_dense_layers(make, shape, rng):
    size = math.prod(shape)
    model = lm.Sequential([Input(shape=(3,)), Dense(size, activation="tanh"), Reshape(shape), make(), Flatten(),
                           Dense(2)], seed=8, dtype="float64")
    model.compile(optimizer="sgd", loss="mse")
    model.fit(rng.standard_normal((4, 3)), rng.standard_normal((4, 2)), epochs=1, verbose=0)  # a later step
    x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    report = lm.gradient_check(model, x, y, training=True)
    assert report.passed, report
    # The check saw the transform: in training the loss differs from inference's.
    net = model._net
    assert net.loss_and_gradient(x, y, training=True) != net.loss_and_gradient(x, y, training=False)


def test_augmentation_first_costs_no_backward_and_trains(rng):
    model = _augmented_classifier(dtype="float64")
    x = rng.standard_normal((40, 6, 6))
    y = rng.integers(0, 3, 40)
    report = lm.gradient_check(model, x[:5], y[:5], training=True)
    assert report.passed, report
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0).history
    assert all(np.isfinite(history["loss"]))


def test_random_flip_matches_torch_autograd(rng):
    torch = pytest.importorskip("torch")

    def model():
        m = lm.Sequential([Input(shape=(4,)), Dense(12), Reshape((3, 4)), RandomFlip(), Flatten(), Dense(12)],
                          seed=1, dtype="float64")
        m.compile(optimizer="sgd", loss="mse")
        return m

    net, probe = model(), model()  # same seed and layers: the same draws
    probe.set_weights([np.zeros((4, 12)), np.arange(12.0), np.eye(12), np.zeros(12)])
    x, y = rng.standard_normal((5, 4)), rng.standard_normal((5, 12))
    index = torch.tensor(probe(x, training=True).astype(np.int64))  # where each output reads from
    w1, b1, w2, b2 = (torch.tensor(w, requires_grad=True) for w in net.get_weights())
    moved = torch.gather(torch.tensor(x) @ w1 + b1, 1, index)
    loss = ((moved @ w2 + b2 - torch.tensor(y)) ** 2).mean()
    loss.backward()
    assert net._net.loss_and_gradient(x, y, training=True) == pytest.approx(loss.item(), rel=1e-12)
    np.testing.assert_allclose(net._net.gradients()[:48].reshape(4, 12), w1.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fill_mode, padding_mode", [("constant", "zeros"), ("nearest", "border")])
@pytest.mark.parametrize("layer, matrix", [
    (lambda m: RandomRotation((0.07, 0.07), fill_mode=m),
     [math.cos(0.14 * math.pi), -math.sin(0.14 * math.pi),
      (4 - (math.cos(0.14 * math.pi) * 4 - math.sin(0.14 * math.pi) * 3)) / 2,
      math.sin(0.14 * math.pi), math.cos(0.14 * math.pi),
      (3 - (math.sin(0.14 * math.pi) * 4 + math.cos(0.14 * math.pi) * 3)) / 2]),
    (lambda m: RandomZoom((0.3, 0.3), (-0.2, -0.2), fill_mode=m), [0.8, 0, 2 * 0.2, 0, 1.3, 1.5 * -0.3]),
    (lambda m: RandomTranslation((0.15, 0.15), (-0.35, -0.35), fill_mode=m), [1, 0, 0.35 * 5, 0, 1, -0.15 * 4]),
])
def test_bilinear_layers_match_torch_grid_sample_and_its_autograd(layer, matrix, fill_mode, padding_mode, rng):
    torch = pytest.importorskip("torch")
    h, w, c = 4, 5, 2
    model = lm.Sequential([Input(shape=(3,)), Dense(h * w * c), Reshape((h, w, c)), layer(fill_mode), Flatten(),
                           Dense(2)], seed=9, dtype="float64")
    model.compile(optimizer="sgd", loss="mse")
    x, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    # grid_sample with align_corners=True puts -1 and 1 on the centres of the edge pixels.
    ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    a = matrix
    grid = np.stack([2 * (a[0] * xs + a[1] * ys + a[2]) / (w - 1) - 1,
                     2 * (a[3] * xs + a[4] * ys + a[5]) / (h - 1) - 1], axis=-1)
    grid = torch.tensor(np.broadcast_to(grid, (5, h, w, 2)).copy())
    w1, b1, w2, b2 = (torch.tensor(v, requires_grad=True) for v in model.get_weights())
    images = (torch.tensor(x) @ w1 + b1).reshape(5, h, w, c).permute(0, 3, 1, 2)
    sampled = torch.nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode=padding_mode,
                                              align_corners=True)
    out = sampled.permute(0, 2, 3, 1).reshape(5, -1) @ w2 + b2
    loss = ((out - torch.tensor(y)) ** 2).mean()
    loss.backward()
    assert model._net.loss_and_gradient(x, y, training=True) == pytest.approx(loss.item(), rel=1e-12)
    grads = model._net.gradients()
    np.testing.assert_allclose(grads[:3 * h * w * c].reshape(3, h * w * c), w1.grad.numpy(), rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------- files, ONNX, summary
LAYERS = [RandomFlip("vertical"), RandomTranslation((-0.1, 0.2), 0.3, fill_mode="wrap", fill_value=0.0),
          RandomRotation((-0.05, 0.1), fill_mode="constant", fill_value=0.25, interpolation="nearest"),
          RandomZoom(0.2, (-0.3, 0.1), fill_mode="nearest")]


def _full_model():
    layers = [Input(shape=(6, 5, 1))] + [type(layer).from_config(layer.get_config()) for layer in LAYERS]
    model = lm.Sequential(layers + [Flatten(), GaussianNoise(0.1), Dense(4, activation="relu"), Dense(2)], seed=6)
    model.compile(optimizer="adam", loss="mse")
    return model


def test_augmentation_layers_round_trip_through_a_file_exactly(tmp_path, rng):
    model = _full_model()
    x = rng.standard_normal((10, 6, 5, 1)).astype(np.float32)
    model.fit(x, rng.standard_normal((10, 2)), epochs=1, verbose=0)
    model.save(tmp_path / "m.lamina")
    back = lm.load_model(tmp_path / "m.lamina")
    assert back.get_config() == model.get_config()
    assert [repr(layer) for layer in back.layers] == [repr(layer) for layer in model.layers]
    np.testing.assert_array_equal(back.predict(x), model.predict(x))
    np.testing.assert_array_equal(back(x, training=True), model(x, training=True))


def test_augmentation_layers_export_to_onnx_as_the_identity(tmp_path, rng):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    model = _full_model()
    proto = model.export(tmp_path / "m.onnx")
    assert [n.op_type for n in proto.graph.node] == ["Flatten", "Gemm", "Relu", "Gemm"]
    x = rng.standard_normal((7, 6, 5, 1)).astype(np.float32)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(["output"], {"input": x})[0], model.predict(x), rtol=1e-5, atol=1e-6)


def test_summary_shows_augmentation_layers_with_their_shapes():
    lines = []
    _full_model().summary(print_fn=lines.append)
    text = "\n".join(lines)
    for name in ("RandomFlip", "RandomTranslation", "RandomRotation", "RandomZoom", "GaussianNoise"):
        assert f"({name})" in text
    assert "(None, 6, 5, 1)" in text and "(None, 30)" in text
    assert "random_flip" in text and "gaussian_noise" in text  # Keras's auto names


# ----------------------------------------------------------------- misuse
@pytest.mark.parametrize("make, exc, fragments", [
    (lambda: RandomFlip("diagonal"), ValueError, ["mode", "'diagonal'"]),
    (lambda: RandomTranslation(1.5, 0.1), ValueError, ["height_factor", "1.5", "[-1, 1]"]),
    (lambda: RandomTranslation(0.1, -0.2), ValueError, ["width_factor", "-0.2"]),
    (lambda: RandomTranslation(0.1, (0.3, 0.1)), ValueError, ["width_factor", "(0.3, 0.1)", "lower <= upper"]),
    (lambda: RandomTranslation(0.1, (0.1, 0.2, 0.3)), ValueError, ["width_factor", "pair"]),
    (lambda: RandomTranslation(0.1, 0.1, fill_mode="mirror"), ValueError, ["fill_mode", "'mirror'"]),
    (lambda: RandomRotation(float("nan")), ValueError, ["factor", "nan"]),
    (lambda: RandomRotation("a lot"), TypeError, ["factor", "'a lot'"]),
    (lambda: RandomRotation(0.1, interpolation="bicubic"), ValueError, ["interpolation", "'bicubic'"]),
    (lambda: RandomZoom((-1.5, 0.2)), ValueError, ["height_factor", "-1.5"]),
    (lambda: RandomZoom(0.2, width_factor=2.0), ValueError, ["width_factor", "2.0"]),
    (lambda: RandomZoom(0.2, fill_value=float("inf")), ValueError, ["fill_value", "inf"]),
    (lambda: GaussianNoise(-0.1), ValueError, ["stddev", "-0.1"]),
    (lambda: RandomFlip(input_shape=(784,)), ValueError, ["input_shape=(784,)", "(height, width)"]),
    (lambda: lm.Sequential([Input(shape=(784,)), RandomRotation(0.1, name="spin")]), ValueError,
     ["RandomRotation", "'spin'", "(784,)"]),
    (lambda: lm.Sequential([Input(shape=(2, 3, 4, 5)), RandomZoom(0.1)]), ValueError, ["(2, 3, 4, 5)"]),
])
def test_misused_augmentation_layers_are_refused_naming_the_argument(make, exc, fragments):
    with pytest.raises(exc) as info:
        make()
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_the_core_refuses_an_image_shape_that_does_not_hold_the_layer_input():
    spec = lm.layers.RandomFlip()._core_spec((4, 5))
    with pytest.raises(ValueError, match=r"\(4, 5, 1\) does not hold its 21 inputs"):
        lm._core.Network64(21, [spec], 0)


def test_the_core_refuses_an_image_shape_far_larger_than_its_inputs():
    spec = lm.layers.RandomFlip()._core_spec((4, 5))
    spec.augment.height, spec.augment.width, spec.augment.channels = 2**30, 2**30, 2**30
    with pytest.raises(ValueError, match="does not hold its 20 inputs"):
        lm._core.Network64(20, [spec], 0)
