"""Determinism: the same seed gives the same weights, whatever the thread count or how fit is split."""

import time

import numpy as np
import pytest

import lamina as lm
from lamina import _core


def _data(n=512, features=64, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, features)).astype(np.float32), rng.integers(0, classes, n)


def _model(seed, dtype="float32", dropout=0.25, optimizer="adam"):
    model = lm.Sequential([lm.layers.Dense(256, activation="relu", input_shape=(64,)),
                           lm.layers.Dropout(dropout),
                           lm.layers.Dense(10, activation="softmax")], seed=seed, dtype=dtype)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _assert_same_weights(a, b):
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)


def test_same_seed_gives_identical_weights_and_history_after_fit():
    x, y = _data(n=200)
    a, b = _model(7), _model(7)
    ha = a.fit(x, y, batch_size=32, epochs=2, verbose=0)
    hb = b.fit(x, y, batch_size=32, epochs=2, verbose=0)
    _assert_same_weights(a, b)
    assert ha.history == hb.history
    np.testing.assert_array_equal(a.predict(x), b.predict(x))


def test_different_seeds_give_different_initial_weights_and_shuffles():
    a, b = _model(1), _model(2)
    a.build()
    b.build()
    assert not np.array_equal(a.get_weights()[0], b.get_weights()[0])
    assert not np.array_equal(_core.shuffled_order(100, 1, 0), _core.shuffled_order(100, 2, 0))
    assert not np.array_equal(_core.shuffled_order(100, 1, 0), _core.shuffled_order(100, 1, 1))
    np.testing.assert_array_equal(np.sort(_core.shuffled_order(100, 1, 3)), np.arange(100))


def test_fit_split_over_calls_equals_one_call_with_all_epochs():
    x, y = _data(n=200)
    a, b = _model(3), _model(3)
    a.fit(x, y, batch_size=16, epochs=3, verbose=0)
    for _ in range(3):
        b.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert a.epochs_trained == b.epochs_trained == 3
    assert a.optimizer.iterations == b.optimizer.iterations == 3 * 13
    _assert_same_weights(a, b)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("inputs", ["dense", "mostly_zero"])
def test_weights_are_bit_identical_with_one_two_or_three_threads(dtype, inputs, restore_threads):
    x, y = _data()
    if inputs == "mostly_zero":  # image-like: the forward product goes row by row over nonzeros
        x[np.random.default_rng(5).random(x.shape) < 0.6] = 0
    results = []
    for threads in (1, 2, 3):
        lm.set_num_threads(threads)
        assert lm.get_num_threads() == threads
        model = _model(11, dtype=dtype)
        history = model.fit(x, y, batch_size=64, epochs=2, verbose=0)
        results.append((model.get_weights(), model.predict(x), history.history["loss"]))
    for weights, pred, loss in results[1:]:
        for u, v in zip(weights, results[0][0]):
            np.testing.assert_array_equal(u, v)
        np.testing.assert_array_equal(pred, results[0][1])
        assert loss == results[0][2]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_result_does_not_depend_on_the_thread_count(dtype, restore_threads):
    rng = np.random.default_rng(2)
    outs = []
    for ta, tb, (m, n, k) in [(False, False, (300, 257, 190)), (True, False, (64, 256, 64)),
                              (False, True, (10, 300, 256)), (True, True, (145, 146, 147))]:
        a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
        b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
        per_thread = []
        for threads in (1, 2, 3):
            lm.set_num_threads(threads)
            c = np.zeros((m, n), dtype=dtype)
            _core.gemm(ta, tb, 1.0, a, b, 0.0, c)
            per_thread.append(c)
        outs.append(per_thread)
    for per_thread in outs:
        for c in per_thread[1:]:
            np.testing.assert_array_equal(c, per_thread[0])


def test_set_num_threads_round_trips_and_rejects_non_positive(restore_threads):
    lm.set_num_threads(1)
    assert lm.get_num_threads() == 1 and lm.build_info()["threads"] == 1
    lm.set_num_threads(2)
    assert lm.get_num_threads() == 2
    with pytest.raises(ValueError, match="n=0"):
        lm.set_num_threads(0)
    with pytest.raises(ValueError, match="n=1.5"):
        lm.set_num_threads(1.5)
    assert lm.get_num_threads() == 2


# --- flush-to-zero inside the training loop ---------------------------------------------------

def _one_step_onto_a_subnormal(flush):
    """One SGD step that takes a float32 weight from 2e-38 (normal) to about 1e-38 (subnormal)."""
    previous = lm.get_flush_denormals()
    lm.set_flush_denormals(flush)
    try:
        model = lm.Sequential([lm.layers.Dense(1, use_bias=False, input_shape=(1,))], seed=0, dtype="float32")
        model.compile(optimizer=lm.optimizers.SGD(learning_rate=0.25), loss="mse")
        model.set_weights([np.array([[2e-38]], dtype=np.float32)])
        model.fit(np.ones((1, 1), np.float32), np.zeros((1, 1), np.float32), batch_size=1, verbose=0)
        return float(model.get_weights()[0][0, 0]), model
    finally:
        lm.set_flush_denormals(previous)


def test_training_flushes_subnormals_by_default_and_keeps_them_when_asked():
    tiny = float(np.finfo(np.float32).tiny)
    assert lm.get_flush_denormals() is True and lm.build_info()["flush_denormals"] is True
    kept, _ = _one_step_onto_a_subnormal(False)
    assert 0 < kept < tiny and kept == pytest.approx(1e-38, rel=1e-3)
    flushed, model = _one_step_onto_a_subnormal(True)
    assert flushed == 0 or flushed >= tiny  # the subnormal product or result became zero
    # Only the training loop flushes: predict and numpy in this thread keep IEEE subnormals.
    model.set_weights([np.array([[1e-39]], dtype=np.float32)])
    assert model.predict(np.ones((1, 1), np.float32))[0, 0] == np.float32(1e-39)
    assert np.float32(1e-39) * np.float32(2) > 0


def test_set_flush_denormals_takes_only_a_bool():
    with pytest.raises(TypeError, match="on must be a bool, received 1"):
        lm.set_flush_denormals(1)
    assert lm.get_flush_denormals() is True


@pytest.mark.parametrize("dtype", ["float32", "float64", "mixed_bfloat16"])
def test_steps_that_pause_long_enough_for_the_team_to_sleep_give_the_same_weights(dtype, restore_threads):
    # A hook that sleeps makes the waiting threads give up spinning and sleep: they must wake for
    # the next step's loops and do exactly their share.
    x, y = _data(n=256)
    results = []
    for threads in (1, 2):
        lm.set_num_threads(threads)
        model = _model(5, dtype=dtype)
        model.set_gradient_hook(lambda g, step: time.sleep(0.002))
        model.fit(x, y, batch_size=64, epochs=2, verbose=0)
        results.append((model.get_weights(), model.predict(x)))
    for u, v in zip(results[0][0], results[1][0]):
        np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_a_hook_that_predicts_with_another_model_mid_step_gets_the_answer_it_gets_outside(restore_threads):
    # The other model's predict runs inside this fit's thread team (on the same calling thread).
    lm.set_num_threads(2)
    x, y = _data(n=256)
    other = _model(9)
    other.build()
    expected = other.predict(x, batch_size=128)
    answers = []
    model = _model(4)
    model.set_gradient_hook(lambda g, step: answers.append(other.predict(x, batch_size=128)))
    model.fit(x, y, batch_size=64, epochs=1, verbose=0)
    assert len(answers) == 4
    for answer in answers:
        np.testing.assert_array_equal(answer, expected)
