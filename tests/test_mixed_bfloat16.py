"""dtype="mixed_bfloat16" (Keras's policy name): a float32 model whose Dense products take bfloat16
operands and add up in float32, everything else float32. It is reported as Keras reports it,
computes what the bfloat16 reference computes, keeps lamina's determinism (thread count, batch
splits, the portable twin), trains with every layer, optimizer and loss about as well as float32,
and works with save/load, ONNX export, gradient_check and the scikit-learn estimators."""

import os
import subprocess
import sys

import numpy as np
import pytest

import lamina as lm
from lamina import _core

MIXED = "mixed_bfloat16"
# Predictions of a mixed model against the same weights in float32: each operand is rounded to
# bfloat16 (relative error <= 2^-9) before products of a few dozen terms; a few hundredths at most
# on unit-scale outputs here.
CLOSE = {"rtol": 5e-2, "atol": 5e-2}


def _bf16(x):
    x = np.ascontiguousarray(x, np.float32)
    return (_core.bf16_round(x, portable=True).astype(np.uint32) << 16).view(np.float32).reshape(x.shape)


def _mlp(dtype=MIXED, seed=0, inputs=8, hidden=16, outputs=3, out_activation="softmax"):
    return lm.Sequential([lm.layers.Dense(hidden, activation="relu", input_shape=(inputs,)),
                          lm.layers.Dense(outputs, activation=out_activation)], seed=seed, dtype=dtype)


def _data(rng, n=256, inputs=8, classes=3):
    x = rng.standard_normal((n, inputs)).astype(np.float32)
    y = (np.argmax(x[:, :classes] + 0.3 * x[:, classes:2 * classes], axis=1)).astype(np.int64)
    return x, y


def _float32_twin(model):
    """The same architecture and weights in float32 (the reference for closeness)."""
    config = model.get_config()
    config["dtype"] = "float32"
    twin = lm.Sequential.from_config(config)
    twin.set_weights(model.get_weights())
    return twin


def _bits(model):
    return np.concatenate([w.ravel() for w in model.get_weights()]).view(np.uint32)


# ----------------------------------------------------------------- the policy as Keras reports it
def test_mixed_bfloat16_model_reports_float32_weights_and_bfloat16_compute_like_keras():
    model = _mlp()
    assert model.dtype == "float32"  # Keras: layer.dtype is the variable dtype
    assert model.compute_dtype == "bfloat16"
    assert model.dtype_policy.name == MIXED and repr(model.dtype_policy) == '<DTypePolicy "mixed_bfloat16">'
    assert model.dtype_policy.variable_dtype == "float32"
    assert model.get_config()["dtype"] == MIXED
    assert "dtype='mixed_bfloat16'" in repr(model)
    assert all(w.dtype == np.float32 for w in model.get_weights())
    lines = []
    model.summary(print_fn=lines.append)
    assert "Dtype policy: mixed_bfloat16 (float32 weights, bfloat16 products)" in lines
    assert model._net.bf16_products
    clone = lm.Sequential.from_config(model.get_config())
    assert clone.dtype_policy == model.dtype_policy and clone._net.bf16_products


def test_float32_and_float64_models_keep_their_policies_and_exact_products():
    for dtype in ("float32", "float64", np.float64):
        model = _mlp(dtype=dtype)
        assert model.dtype_policy.name == model.dtype == model.compute_dtype == np.dtype(dtype).name
        assert not model._net.bf16_products


@pytest.mark.parametrize("bad,hint", [("bfloat16", "dtype='mixed_bfloat16'"), ("float16", "float16 is not supported"),
                                      ("mixed_float16", "float16 is not supported"), ("int32", "received dtype='int32'"),
                                      (3, "received dtype=3")])
def test_unknown_dtype_policies_are_refused_naming_the_value_and_the_three_accepted(bad, hint):
    with pytest.raises(ValueError, match="dtype must be 'float32', 'float64' or 'mixed_bfloat16'") as info:
        lm.Sequential(dtype=bad)
    assert hint in str(info.value)
    with pytest.raises(ValueError, match="mixed_bfloat16"):
        lm.dtype_policies.DTypePolicy(bad)


def test_a_float64_core_network_refuses_bfloat16_products():
    net = _mlp(dtype="float64")._net
    with pytest.raises(ValueError, match="need a float32 network"):
        net.bf16_products = True
    assert not net.bf16_products


# ----------------------------------------------------------------- what it computes
def test_mixed_predict_is_the_product_of_bfloat16_rounded_operands_with_float32_bias_and_activation(rng):
    model = _mlp(out_activation="linear")
    x = rng.standard_normal((50, 8)).astype(np.float32)
    W1, b1, W2, b2 = (w.astype(np.float64) for w in model.get_weights())
    h = np.maximum(_bf16(x).astype(np.float64) @ _bf16(W1) + b1, 0.0)
    want = _bf16(h).astype(np.float64) @ _bf16(W2) + b2
    got = model.predict(x, verbose=0)
    # float32 summation of 8 and 16 terms, and h itself rounded once to float32 before its bfloat16 rounding
    # (which can move it by one bfloat16 ulp at a tie): a few bfloat16 ulps of the output at most.
    np.testing.assert_allclose(got, want, rtol=2e-2, atol=2e-2)
    exact = _float32_twin(model).predict(x, verbose=0)
    assert np.max(np.abs(got - exact)) > 1e-4  # the products really are bfloat16
    np.testing.assert_allclose(got, exact, **CLOSE)


def test_mixed_predictions_do_not_depend_on_the_batch_a_row_is_in_or_the_thread_count(rng, restore_threads):
    model = lm.Sequential([lm.layers.Dense(300, activation="relu", input_shape=(100,)),
                           lm.layers.Dense(40, activation="tanh"), lm.layers.Dense(10, activation="softmax")],
                          seed=3, dtype=MIXED)
    x = rng.standard_normal((301, 100)).astype(np.float32)
    want = model.predict(x, batch_size=301, verbose=0).view(np.uint32)
    for threads in (1, 2, 3):
        lm.set_num_threads(threads)
        for batch_size in (1, 7, 128):
            np.testing.assert_array_equal(model.predict(x, batch_size=batch_size, verbose=0).view(np.uint32), want)


def test_mixed_training_gives_the_same_bits_with_one_two_or_three_threads(rng, restore_threads):
    x, y = _data(rng, n=300, inputs=40)
    results = []
    for threads in (1, 2, 3):
        lm.set_num_threads(threads)
        model = lm.Sequential([lm.layers.Dense(200, activation="relu", input_shape=(40,)),
                               lm.layers.Dense(3, activation="softmax")], seed=5, dtype=MIXED)
        model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=64, epochs=2, verbose=0)
        results.append(_bits(model))
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


_TRAIN_SCRIPT = """
import sys, numpy as np, lamina as lm
from lamina import _core
rng = np.random.default_rng(1)
x = rng.standard_normal((96, 30)).astype(np.float32); y = (x[:, 0] > x[:, 1]).astype(np.int64)
model = lm.Sequential([lm.layers.Dense(40, activation="relu", input_shape=(30,)),
                       lm.layers.Dense(2, activation="softmax")], seed=2, dtype="mixed_bfloat16")
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
model.fit(x, y, batch_size=32, epochs=2, verbose=0)
w = np.concatenate([v.ravel() for v in model.get_weights()] + [model.predict(x, verbose=0).ravel()])
sys.stdout.write(_core.bf16_gemm_kernel() + " " + w.view(np.uint32).tobytes().hex())
"""


def _run_in_a_fresh_process(script, **env_vars):
    """script's stdout, run with two threads and the kernel choices of env_vars only."""
    env = dict(os.environ, OMP_NUM_THREADS="2")
    for name in ("LAMINA_GEMM_KERNEL", "LAMINA_BF16_AMX"):
        env.pop(name, None)
    env.update(env_vars)
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=300, check=True).stdout


def _train_in_a_fresh_process(**env_vars):
    kernel, bits = _run_in_a_fresh_process(_TRAIN_SCRIPT, **env_vars).split()
    return kernel, np.frombuffer(bytes.fromhex(bits), np.uint32)


def test_mixed_training_with_vdpbf16ps_and_with_the_portable_twin_gives_the_same_bits():
    kernel, vdp = _train_in_a_fresh_process(LAMINA_BF16_AMX="0")
    assert kernel in ("avx512_bf16", "portable")  # portable on a CPU without AVX512_BF16: then both are the twin
    for forced in [k for k in ("avx2", "generic") if k in _core.gemm_kernels_available()]:
        kernel, twin = _train_in_a_fresh_process(LAMINA_GEMM_KERNEL=forced)
        assert kernel == "portable"
        np.testing.assert_array_equal(twin, vdp, err_msg=forced)


def test_mixed_training_with_amx_stays_within_float32_summation_error_of_the_twin():
    kernel, amx = _train_in_a_fresh_process()
    if kernel != "amx":
        pytest.skip("no AMX-BF16 here")
    _, twin = _train_in_a_fresh_process(LAMINA_BF16_AMX="0")
    # Two epochs of Adam from the same start: AMX adds each 32-step chunk in its own order, so the
    # runs drift apart by a few float32 ulps per step, far below bfloat16's own rounding.
    a, b = amx.view(np.float32), twin.view(np.float32)
    assert not np.array_equal(a, b)
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


# ----------------------------------------------------------------- it trains, with everything
def test_mixed_training_reaches_float32_accuracy_on_digits():
    x, y = lm.datasets.load_digits()
    x = x / 16.0
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[:1400], order[1400:]
    accuracy = {}
    for dtype in ("float32", MIXED):
        model = lm.Sequential([lm.layers.Dense(64, activation="relu", input_shape=(64,)),
                               lm.layers.Dense(10, activation="softmax")], seed=0, dtype=dtype)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(x[train], y[train], batch_size=32, epochs=15, verbose=0)
        accuracy[dtype] = model.evaluate(x[test], y[test], verbose=0)[1]
    assert accuracy["float32"] > 0.93
    assert abs(accuracy[MIXED] - accuracy["float32"]) <= 0.02, accuracy


@pytest.mark.parametrize("optimizer", ["sgd", "rmsprop", "adagrad", "adam", "adamw",
                                       lm.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
                                       lm.optimizers.Adam(amsgrad=True, clipnorm=1.0)], ids=str)
def test_every_optimizer_trains_a_mixed_model(optimizer, rng):
    x, y = _data(rng)
    model = _mlp(seed=1)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    before = model.evaluate(x, y, verbose=0)
    history = model.fit(x, y, batch_size=32, epochs=4, verbose=0).history["loss"]
    assert np.isfinite(history).all() and model.evaluate(x, y, verbose=0) < before


@pytest.mark.parametrize("loss,out_activation,target", [
    ("mse", "linear", "dense"), ("mae", "linear", "dense"), ("huber", "tanh", "dense"),
    ("binary_crossentropy", "sigmoid", "binary"), ("categorical_crossentropy", "softmax", "onehot"),
    ("sparse_categorical_crossentropy", "softmax", "sparse"),
    (lm.losses.CategoricalCrossentropy(from_logits=True), "linear", "onehot")], ids=str)
def test_every_loss_trains_a_mixed_model(loss, out_activation, target, rng):
    x, labels = _data(rng)
    y = {"dense": x[:, :3] * 0.5, "binary": np.eye(3, dtype=np.float32)[labels],
         "onehot": np.eye(3, dtype=np.float32)[labels], "sparse": labels}[target]
    model = _mlp(seed=2, out_activation=out_activation)
    model.compile(optimizer="adam", loss=loss)
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, batch_size=32, epochs=4, verbose=0)
    assert model.evaluate(x, y, verbose=0) < before


def _layers_model(dtype):
    return lm.Sequential([
        lm.layers.Input(shape=(8, 8)),
        lm.layers.RandomFlip("horizontal"), lm.layers.RandomTranslation(0.1, 0.1),
        lm.layers.RandomRotation(0.05), lm.layers.RandomZoom(0.1), lm.layers.Flatten(),
        lm.layers.GaussianNoise(0.05), lm.layers.Dense(32), lm.layers.BatchNormalization(),
        lm.layers.Activation("relu"), lm.layers.Dropout(0.2), lm.layers.Dense(16, activation="gelu"),
        lm.layers.LayerNormalization(), lm.layers.Reshape((16,)), lm.layers.Dense(10, activation="softmax"),
    ], seed=7, dtype=dtype)


def test_every_layer_trains_in_a_mixed_model_and_predicts_close_to_float32():
    x, y = lm.datasets.load_digits()
    x = (x / 16.0).reshape(-1, 8, 8)[:600]
    y = y[:600]
    model = _layers_model(MIXED)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    before = model.evaluate(x, y, verbose=0)[0]
    model.fit(x, y, batch_size=32, epochs=5, verbose=0)
    assert model.evaluate(x, y, verbose=0)[0] < before
    twin = _layers_model("float32")
    twin.set_weights(model.get_weights())
    np.testing.assert_allclose(model.predict(x[:50], verbose=0), twin.predict(x[:50], verbose=0), **CLOSE)


def test_normalization_adapt_and_small_batches_train_a_mixed_model(rng):
    x, y = _data(rng)
    norm = lm.layers.Normalization()
    norm.adapt(x * 3.0 + 1.0)
    model = lm.Sequential([lm.layers.Input(shape=(8,)), norm, lm.layers.Dense(16, activation="relu"),
                           lm.layers.Dense(3, activation="softmax")], seed=4, dtype=MIXED)
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy")
    before = model.evaluate(x * 3.0 + 1.0, y, verbose=0)
    model.fit(x * 3.0 + 1.0, y, batch_size=4, epochs=2, verbose=0)  # batches the float32 model would fuse
    assert model.evaluate(x * 3.0 + 1.0, y, verbose=0) < before


def test_a_mixed_models_gradient_is_backprop_with_bfloat16_operands_in_all_three_products(rng):
    x = rng.standard_normal((16, 8)).astype(np.float32)
    y = rng.standard_normal((16, 3)).astype(np.float32)
    model = lm.Sequential([lm.layers.Dense(5, activation="tanh", input_shape=(8,)), lm.layers.Dense(3)],
                          seed=0, dtype=MIXED)
    model.compile(optimizer="sgd", loss="mse")
    seen = []
    model.set_gradient_hook(lambda g, step: seen.append(g.copy()))
    W1, b1, W2, b2 = (w.astype(np.float64) for w in model.get_weights())
    model.train_on_batch(x, y)  # a batch of 16, which float32 would fuse
    # The reference: every product's operands rounded to bfloat16 (forward x W, dW = x^T dz,
    # dx = dz W^T), the rest exact.
    h = np.tanh(_bf16(x) @ _bf16(W1) + b1)
    dp = 2.0 * (_bf16(h) @ _bf16(W2) + b2 - y) / y.size
    dz1 = (_bf16(dp) @ _bf16(W2).T) * (1.0 - h**2)
    want = np.concatenate([(_bf16(x).T @ _bf16(dz1)).ravel(), dz1.sum(0), (_bf16(h).T @ _bf16(dp)).ravel(),
                           dp.sum(0)])
    # float32 intermediates may round to the other bfloat16 at a rare near-tie: one term off by 2^-8.
    np.testing.assert_allclose(seen[0], want, rtol=0, atol=1e-3 * np.abs(want).max())


def test_a_mixed_small_batch_step_fuses_its_update_with_the_stored_gradients_bits(rng, restore_threads):
    """Batches of 16 or fewer fuse the update into the kernel gradient (bfloat16-rounded x and dz
    in the rank-n update); a gradient hook makes the step store the gradient first. Same bits, any
    thread count."""
    x, y = _data(rng, n=96, inputs=40)
    results = []
    for threads, hooked in ((1, False), (2, False), (2, True)):
        lm.set_num_threads(threads)
        model = lm.Sequential([lm.layers.Dense(200, activation="relu", input_shape=(40,)),
                               lm.layers.Dense(3, activation="softmax")], seed=5, dtype=MIXED)
        model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy")
        if hooked:
            model.set_gradient_hook(lambda g, step: None)
        model.fit(x, y, batch_size=8, epochs=2, verbose=0)
        results.append(_bits(model))
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_a_mixed_batch_1_kernel_gradient_is_the_outer_product_of_bfloat16_operands(rng):
    x = rng.standard_normal((1, 70)).astype(np.float32)
    y = rng.standard_normal((1, 64)).astype(np.float32)
    model = lm.Sequential([lm.layers.Dense(64, input_shape=(70,))], seed=0, dtype=MIXED)
    model.compile(optimizer="sgd", loss="mse")
    seen = []
    model.set_gradient_hook(lambda g, step: seen.append(g.copy()))
    kernel, bias = (w.astype(np.float64) for w in model.get_weights())
    model.train_on_batch(x, y)
    dz = 2.0 * (_bf16(x) @ _bf16(kernel) + bias - y) / y.size
    want = _bf16(x).T @ _bf16(dz)
    got = seen[0][:70 * 64].reshape(70, 64)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-3 * np.abs(want).max())
    exact = x.T.astype(np.float64) @ dz  # without rounding the operands: visibly different
    assert np.abs(got - exact).max() > 1e-3 * np.abs(want).max()


_KEPT_KERNELS_SCRIPT = """
import sys, numpy as np, lamina as lm
from lamina import _core
rng = np.random.default_rng(3)
# 33 inputs (an odd depth: the last bfloat16 pair has one row), 40 % zeros, some columns zero in
# every row (the fused update skips those kernel rows); 70 and 66 units (not multiples of 32).
x = rng.standard_normal((64, 33)).astype(np.float32) * (rng.random((64, 33)) > 0.4)
x[:, 5:9] = 0.0
y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
out = []
for optimizer in ("rmsprop", "sgd", "adam"):
    for batch in (1, 5, 16):
        bits = []
        for hooked in (False, True):
            model = lm.Sequential([lm.layers.Dense(70, activation="relu", input_shape=(33,)),
                                   lm.layers.Dense(66, activation="relu"),
                                   lm.layers.Dense(2, activation="softmax")], seed=4, dtype="mixed_bfloat16")
            model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
            if hooked:  # the step stores its gradient, and the forward packs W every time
                model.set_gradient_hook(lambda g, step: None)
            model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
            weights = model.get_weights()
            weights[0][3] += 0.25  # written between two calls: the next call must see it
            model.set_weights(weights)
            model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
            p = model.predict(x, batch_size=7, verbose=0)
            bits.append(np.concatenate([w.ravel() for w in model.get_weights()] + [p.ravel()]).view(np.uint32))
        out.append(bool(np.array_equal(bits[0], bits[1])))
sys.stdout.write(_core.bf16_gemm_kernel() + " " + " ".join(map(str, out)))
"""


@pytest.mark.parametrize("env_vars", [{}, {"LAMINA_BF16_AMX": "0"}, {"LAMINA_GEMM_KERNEL": "avx2"}],
                         ids=["default", "no-amx", "portable"])
def test_a_kept_packed_kernel_gives_the_bits_of_packing_it_at_every_step(env_vars):
    """Inside one fit, a small-batch step repacks only the kernel rows its update changed and the
    next forward takes the kept bfloat16 kernel; that must be exactly the kernel packing it anew
    gives (a gradient hook turns the keeping off), for each optimizer's way of leaving rows alone,
    each kernel, and across calls with the weights written in between."""
    if env_vars.get("LAMINA_GEMM_KERNEL") == "avx2" and "avx2" not in _core.gemm_kernels_available():
        pytest.skip("no AVX2 here")
    kernel, *same = _run_in_a_fresh_process(_KEPT_KERNELS_SCRIPT, **env_vars).split()
    assert same == ["True"] * 9, (kernel, same)


# ----------------------------------------------------------------- files, ONNX, gradient_check, sklearn
def test_save_and_load_keep_the_policy_and_float32_masters_and_predict_the_same_bits(rng, tmp_path):
    x, y = _data(rng)
    model = _mlp(seed=8)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    path = tmp_path / "mixed.lamina"
    model.save(path)
    loaded = lm.load_model(path)
    assert loaded.dtype_policy.name == MIXED and loaded.dtype == "float32" and loaded._net.bf16_products
    np.testing.assert_array_equal(_bits(loaded), _bits(model))
    np.testing.assert_array_equal(loaded.predict(x, verbose=0).view(np.uint32),
                                  model.predict(x, verbose=0).view(np.uint32))
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    loaded.fit(x, y, batch_size=32, epochs=1, verbose=0)
    np.testing.assert_array_equal(_bits(loaded), _bits(model))


def test_onnx_export_of_a_mixed_model_is_the_float32_graph(rng, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    model = _mlp(seed=9)
    x = rng.standard_normal((40, 8)).astype(np.float32)
    path = tmp_path / "mixed.onnx"
    lm.onnx.export(model, path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(["output"], {"input": x})[0]
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, _float32_twin(model).predict(x, verbose=0), rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(got, model.predict(x, verbose=0), **CLOSE)


def test_gradient_check_of_a_mixed_model_runs_on_its_float64_copy_and_passes(rng):
    model = _mlp(seed=10, hidden=5)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x, y = _data(rng, n=6)
    report = lm.gradient_check(model, x.astype(np.float64), y)
    assert report.passed, report
    assert model._net.bf16_products  # the model itself is left as it was


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sklearn_estimators_take_dtype_mixed_bfloat16():
    pytest.importorskip("sklearn")
    from sklearn.base import clone

    from lamina.sklearn import MLPClassifier, MLPRegressor

    x, y = lm.datasets.load_digits()
    x = x / 16.0
    clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=30, random_state=0, dtype=MIXED).fit(x[:1200], y[:1200])
    assert clf.model_.dtype_policy.name == MIXED and clf.model_.dtype == "float32"
    exact = MLPClassifier(hidden_layer_sizes=(32,), max_iter=30, random_state=0).fit(x[:1200], y[:1200])
    assert abs(clf.score(x[1200:], y[1200:]) - exact.score(x[1200:], y[1200:])) <= 0.03
    assert clone(clf).get_params()["dtype"] == MIXED
    reg = MLPRegressor(hidden_layer_sizes=(16,), max_iter=20, random_state=0, dtype=MIXED)
    reg.fit(x[:500], x[:500, :2].sum(axis=1))
    assert reg.model_.compute_dtype == "bfloat16" and np.isfinite(reg.predict(x[:5])).all()
    with pytest.raises(ValueError, match="dtype must be None, 'float32', 'float64' or 'mixed_bfloat16', "
                                         "received dtype='bfloat16'"):
        MLPClassifier(dtype="bfloat16").fit(x[:20], y[:20])
