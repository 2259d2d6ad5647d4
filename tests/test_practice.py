"""The practice around the training loop: progress display, gradient-norm tracking, an attached
standardizer, online learning, and the `lamina` command."""

import io
import subprocess
import sys

import numpy as np
import pytest

import lamina as lm
from lamina.progress import ProgressDisplay


def _classifier(seed=0, **dense):
    model = lm.Sequential([lm.layers.Dense(16, activation="tanh", input_shape=(6,), **dense),
                           lm.layers.Dense(3, activation="softmax")], seed=seed)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    return x, (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)


def test_verbose_2_prints_one_line_per_epoch_with_loss_and_metrics(capsys):
    x, y = _data()
    _classifier().fit(x, y, epochs=3, batch_size=16, verbose=2)
    lines = [l for l in capsys.readouterr().err.splitlines() if l.strip()]
    assert len(lines) == 3
    assert lines[0].startswith("Epoch 1/3") and "samples/s" in lines[0]
    assert "loss: " in lines[2] and "accuracy: " in lines[2]


def test_verbose_1_on_a_non_terminal_stream_does_not_flood_it(capsys):
    x, y = _data(n=2000)
    _classifier().fit(x, y, epochs=2, batch_size=1, verbose=1)  # many chunks per epoch
    err = capsys.readouterr().err
    assert "\r" not in err
    assert len([l for l in err.splitlines() if l.strip()]) == 2


def test_verbose_1_on_a_terminal_draws_a_live_bar_that_ends_each_epoch_with_its_logs():
    class FakeTerminal(io.StringIO):
        def isatty(self):
            return True

    stream = FakeTerminal()
    display = ProgressDisplay(verbose=1, stream=stream)
    display.set_params({"epochs": 1, "samples": 100, "batch_size": 10, "steps": 10, "verbose": 1})
    display.on_epoch_begin(0)
    display.on_batch_end(4, {"loss": 0.5})
    display.on_batch_end(9, {"loss": 0.25})
    display.on_epoch_end(0, {"loss": 0.25, "gradient_norm/dense": 1.0})
    out = stream.getvalue()
    assert "Epoch 1/1" in out and "100/100" in out and "loss: 0.2500" in out
    assert "gradient_norm" not in out  # diagnostics stay in History


def test_verbose_0_is_silent(capsys):
    x, y = _data()
    _classifier().fit(x, y, epochs=2, verbose=0)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_gradient_norm_tracking_records_each_dense_kernel_per_epoch_without_changing_training():
    x, y = _data()
    tracked, plain = _classifier(), _classifier()
    history = tracked.fit(x, y, epochs=3, batch_size=200, verbose=0, track_gradient_norms=True)
    plain.fit(x, y, epochs=3, batch_size=200, verbose=0)
    names = [f"gradient_norm/{layer.name}" for layer in tracked.layers]
    assert all(len(history.history[n]) == 3 for n in names)
    # One full batch per epoch: the recorded norm is that step's ||dW|| (numpy reference below).
    for a, b in zip(tracked.get_weights(), plain.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert all(v > 0 for n in names for v in history.history[n])


def test_gradient_norms_show_vanishing_gradients_in_a_deep_sigmoid_network():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 8))
    y = rng.normal(size=(64, 1))
    layers = [lm.layers.Dense(16, activation="sigmoid", input_shape=(8,))]
    layers += [lm.layers.Dense(16, activation="sigmoid") for _ in range(7)] + [lm.layers.Dense(1)]
    model = lm.Sequential(layers, seed=0)
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(x, y, epochs=1, batch_size=64, verbose=0, track_gradient_norms=True)
    first = history.history[f"gradient_norm/{model.layers[0].name}"][0]
    last = history.history[f"gradient_norm/{model.layers[-1].name}"][0]
    assert first < last / 100  # each sigmoid layer shrinks the gradient by at least 4x


def test_an_attached_standardizer_is_applied_in_fit_evaluate_and_predict():
    x, y = _data()
    x_raw = x * [1000.0, 0.001, 5, 1, 1, 1] + [50, 0, -3, 0, 0, 0]
    scaler = lm.data.Standardizer().fit(x_raw[:100])
    with_scaler, by_hand = _classifier(), _classifier()
    with_scaler.attach_standardizer(scaler)
    with_scaler.fit(x_raw[:100], y[:100], epochs=2, verbose=0)
    by_hand.fit(scaler.transform(x_raw[:100]), y[:100], epochs=2, verbose=0)
    np.testing.assert_array_equal(with_scaler.predict(x_raw[100:]), by_hand.predict(scaler.transform(x_raw[100:])))
    assert with_scaler.evaluate(x_raw[100:], y[100:]) == by_hand.evaluate(scaler.transform(x_raw[100:]), y[100:])


def test_attaching_an_unfitted_or_mismatched_standardizer_is_rejected():
    model = _classifier()
    with pytest.raises(ValueError, match="not fitted"):
        model.attach_standardizer(lm.data.Standardizer())
    with pytest.raises(ValueError, match="3 features"):
        model.attach_standardizer(lm.data.Standardizer().fit(np.ones((4, 3))))
    assert model.standardizer is None


def test_train_on_batch_takes_exactly_one_step_and_reports_the_loss_before_it():
    x, y = _data(n=12)
    model = _classifier()
    before = model.evaluate(x, y)
    loss, acc = model.train_on_batch(x, y)
    assert model.optimizer.iterations == 1
    assert loss == pytest.approx(before[0], rel=1e-6) and acc == pytest.approx(before[1])
    assert model.test_on_batch(x, y)[0] < loss
    assert model.optimizer.iterations == 1  # test_on_batch changes nothing


def test_chunking_of_batches_does_not_change_the_result():
    x, y = _data(n=400)
    a, b = _classifier(), _classifier()
    a.fit(x, y, epochs=2, batch_size=3, verbose=0)
    for _ in range(2):  # one batch per call: the most fragmented schedule possible
        order = lm._core.shuffled_order(len(x), b.seed, b.epochs_trained)
        b.epochs_trained += 1
        xs, ys = b._dataset(x, y)
        stats = lm._core.BatchStats()
        for first in range(0, len(x), 3):
            b._net.train_batches(stats, xs, ys, order, first, 3, 1)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_the_lamina_command_trains_on_the_bundled_digits_and_reports_test_accuracy():
    result = subprocess.run([sys.executable, "-m", "lamina.cli", "train", "--epochs", "8", "--verbose", "0"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    accuracy = float(result.stdout.strip().splitlines()[-1].split("test accuracy")[1])
    assert accuracy > 0.9


def test_the_lamina_command_reports_bad_options_plainly():
    result = subprocess.run([sys.executable, "-m", "lamina.cli", "train", "--dropout", "1.5", "--epochs", "1"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "rate must be a finite number in [0.0, 1.0)" in result.stderr and "Traceback" not in result.stderr
