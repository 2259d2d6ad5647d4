"""Threads: models trained at the same time from two Python threads give bit-identical results
to the same models trained one after the other, and the GIL is released while the core works."""

import threading
import time

import numpy as np
import pytest

import lamina as lm


def _problem(seed, dtype):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(4000, 32)).astype(dtype)
    y = rng.integers(0, 5, size=4000)
    model = lm.Sequential([lm.layers.Dense(64, activation="relu", input_shape=(32,)),
                           lm.layers.Dropout(0.2),
                           lm.layers.Dense(5, activation="softmax")], seed=seed, dtype=dtype)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model, x, y


def _train(model, x, y, out, key):
    history = model.fit(x, y, batch_size=16 if key == "a" else 64, epochs=3, verbose=0, validation_split=0.1)
    out[key] = {"weights": model.get_weights(), "history": history.history,
                "predict": model.predict(x[:500]), "evaluate": model.evaluate(x, y),
                "iterations": model.optimizer.iterations}


def _assert_identical(got, want):
    for a, b in zip(got["weights"], want["weights"]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(got["predict"], want["predict"])
    assert got["history"] == want["history"]
    assert got["evaluate"] == want["evaluate"]
    assert got["iterations"] == want["iterations"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_two_models_trained_in_parallel_threads_equal_sequential_training(dtype):
    sequential = {}
    for key, seed in (("a", 1), ("b", 2)):
        _train(*_problem(seed, dtype), sequential, key)
    parallel, errors = {}, []

    def run(key, seed):
        try:
            _train(*_problem(seed, dtype), parallel, key)
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k, s)) for k, s in (("a", 1), ("b", 2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for key in ("a", "b"):
        _assert_identical(parallel[key], sequential[key])


def test_one_model_predicted_from_many_threads_at_once_gives_the_serial_answer():
    model, x, y = _problem(3, "float32")
    model.fit(x, y, epochs=1, verbose=0)
    want = model.predict(x)
    results, errors = [None] * 6, []

    def run(i):
        try:
            for _ in range(5):
                results[i] = model.predict(x, batch_size=[7, 64, 1024][i % 3])
        except BaseException as exc:  # noqa: BLE001 - collected, re-raised in the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for r in results:
        np.testing.assert_allclose(r, want, rtol=1e-6, atol=1e-7)  # batch size: last bit at most


def test_fit_and_predict_on_the_same_model_from_two_threads_do_not_crash():
    """The core serializes calls on one network; predictions taken meanwhile are finite and of the
    right shape (they may see any completed chunk's weights)."""
    model, x, y = _problem(4, "float32")
    stop, errors, shapes = threading.Event(), [], []

    def predictor():
        try:
            while not stop.is_set():
                p = model.predict(x[:200])
                assert np.isfinite(p).all()
                shapes.append(p.shape)
        except BaseException as exc:  # noqa: BLE001 - collected, re-raised in the test
            errors.append(exc)

    t = threading.Thread(target=predictor)
    t.start()
    try:
        model.fit(x, y, epochs=2, verbose=0)
    finally:
        stop.set()
        t.join()
    assert not errors, errors
    assert shapes and set(shapes) == {(200, 5)}


def _heartbeats_during(call):
    """Runs call() while another thread wakes every millisecond (it needs the GIL for that);
    returns (seconds the call took, heartbeats during it, the longest gap between two)."""
    beats, stop = [], threading.Event()

    def heart():
        while not stop.is_set():
            beats.append(time.perf_counter())
            time.sleep(0.001)

    t = threading.Thread(target=heart)
    t.start()
    time.sleep(0.05)
    start = time.perf_counter()
    call()
    end = time.perf_counter()
    stop.set()
    t.join()
    inside = [b for b in beats if start <= b <= end]
    edges = [start] + inside + [end]
    return end - start, len(inside), max(b - a for a, b in zip(edges, edges[1:]))


@pytest.fixture
def one_core_thread(restore_threads):
    lm.set_num_threads(1)  # leave the other core to the heartbeat thread


def test_the_gil_is_released_during_fit(one_core_thread):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20000, 128)).astype(np.float32)
    y = rng.integers(0, 10, size=20000)
    model = lm.Sequential([lm.layers.Dense(256, activation="relu", input_shape=(128,)),
                           lm.layers.Dense(10, activation="softmax")], seed=0)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    seconds, beats, gap = _heartbeats_during(lambda: model.fit(x, y, batch_size=64, epochs=16, verbose=0))
    assert seconds > 0.3, "the fit was too short to tell"
    # Holding the GIL for a chunk (~0.15 s) would leave gaps that long and few beats in all.
    assert beats > 0.3 * seconds / 0.0011, (seconds, beats)
    assert gap < 0.1, (seconds, beats, gap)


def test_the_gil_is_released_during_one_long_predict_and_evaluate(one_core_thread):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60000, 256)).astype(np.float32)
    y = rng.integers(0, 10, size=60000)
    model = lm.Sequential([lm.layers.Dense(512, activation="relu", input_shape=(256,)),
                           lm.layers.Dense(10, activation="softmax")], seed=0)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    for call in (lambda: model.predict(x, batch_size=60000), lambda: model.evaluate(x, y, batch_size=60000),
                 lambda: model.train_on_batch(x, y)):
        seconds, beats, gap = _heartbeats_during(call)
        assert seconds > 0.1, "the call was too short to tell"
        assert beats > 0.3 * seconds / 0.0011, (seconds, beats)
        assert gap < 0.1, (seconds, beats, gap)
