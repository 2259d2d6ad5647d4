"""Misuse found by trying lamina as a new user would: each gets a clear ValueError or TypeError
(naming the argument and the value) before any state changes, never a crash, a wrong network
trained or a silently ignored setting."""

import threading

import numpy as np
import pytest

import lamina as lm
from lamina.layers import Dense, Dropout, Input, ReadOnlyAfterBuildError


def _model(seed=0, **kwargs):
    return lm.Sequential([Dense(4, activation="relu", input_shape=(3,)), Dense(2, activation="softmax")],
                         seed=seed, **kwargs)


def _data(n=40):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 3)), rng.integers(0, 2, size=n)


# ----------------------------------------------------------------- threads
@pytest.mark.parametrize("n", [5000, 2**40, 2**64])
def test_thread_counts_beyond_the_bound_are_a_value_error(n):
    before = lm.get_num_threads()
    with pytest.raises(ValueError, match=f"n={n}"):
        lm.set_num_threads(n)
    assert lm.get_num_threads() == before


def test_core_refuses_thread_counts_beyond_the_bound_itself():
    with pytest.raises(ValueError, match="5000"):
        lm._core.set_num_threads(5000)


def test_thread_count_set_on_one_thread_holds_for_calls_from_others():
    before = lm.get_num_threads()
    seen = []
    try:
        lm.set_num_threads(1)
        worker = threading.Thread(target=lambda: seen.append(lm.get_num_threads()))
        worker.start()
        worker.join()
    finally:
        lm.set_num_threads(before)
    assert seen == [1]


def test_a_models_own_thread_count_gives_the_same_bits():
    x, y = _data(300)
    results = []
    for threads in (None, 1, 2):
        model = _model()
        model.num_threads = threads
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=32, epochs=2, verbose=0)
        results.append(model.predict(x))
    for other in results[1:]:
        np.testing.assert_array_equal(results[0], other)


def test_model_thread_count_is_validated():
    model = _model()
    with pytest.raises(ValueError, match="num_threads"):
        model.num_threads = 0
    with pytest.raises(ValueError, match="num_threads"):
        model.num_threads = 10**6


# ----------------------------------------------------------------- races
def test_compile_racing_evaluate_is_serialized():
    x, y = _data(2000)
    model = _model()
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    errors, stop = [], threading.Event()

    def evaluate_loop():
        try:
            while not stop.is_set():
                model.evaluate(x, y, batch_size=7)
        except ValueError:
            pass  # an evaluate may see metrics change between its checks and its call
        except BaseException as exc:  # noqa: BLE001  # pragma: no cover - surfaced below
            errors.append(exc)

    worker = threading.Thread(target=evaluate_loop)
    worker.start()
    try:
        for i in range(200):
            model.compile("sgd", "sparse_categorical_crossentropy",
                          metrics=[["accuracy"], ["precision", "recall"], []][i % 3])
    finally:
        stop.set()
        worker.join()
    assert errors == []


# ----------------------------------------------------------------- sizes and seeds
def test_a_huge_batch_size_trains_like_a_batch_of_every_row():
    x, y = _data()
    a, b = _model(), _model()
    for m in (a, b):
        m.compile("sgd", "sparse_categorical_crossentropy")
    a.fit(x, y, batch_size=10**30, epochs=2, verbose=0, shuffle=False)
    b.fit(x, y, batch_size=len(x), epochs=2, verbose=0, shuffle=False)
    np.testing.assert_array_equal(a.predict(x), b.predict(x))
    assert a.evaluate(x, y, batch_size=10**30) == b.evaluate(x, y)
    np.testing.assert_array_equal(a.predict(x, batch_size=10**30), a.predict(x))


@pytest.mark.parametrize("seed", [2**64, -1, 1.5, True])
def test_seed_outside_64_bits_is_refused_at_construction(seed):
    with pytest.raises(ValueError, match="seed"):
        lm.Sequential([Dense(2, input_shape=(3,))], seed=seed)


def test_largest_seed_builds():
    assert lm.Sequential([Dense(2, input_shape=(3,))], seed=2**64 - 1).count_params() == 8


def test_bad_batch_size_leaves_history_and_callbacks_untouched():
    x, y = _data()
    model = _model()
    model.compile("sgd", "sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=1, verbose=0)
    began = []

    class Spy(lm.callbacks.Callback):
        def on_train_begin(self, logs=None):
            began.append(True)

    with pytest.raises(ValueError, match="batch_size"):
        model.fit(x, y, batch_size=0, callbacks=[Spy()], verbose=0)
    assert model.history is history and began == []


# ----------------------------------------------------------------- ownership
def test_an_optimizer_drives_one_model():
    opt = lm.optimizers.SGD(0.1)
    a, b = _model(), _model()
    a.compile(opt, "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="already compiled into model"):
        b.compile(opt, "sparse_categorical_crossentropy")
    assert b.optimizer is None
    a.compile(opt, "sparse_categorical_crossentropy")  # recompiling its own model is fine
    x, y = _data()
    a.optimizer.learning_rate = 0.5
    a.fit(x, y, batch_size=10, epochs=1, verbose=0)
    assert a.optimizer.iterations == 4 and a._net.learning_rate == 0.5


def test_a_layer_belongs_to_one_model():
    shared = Dense(2, input_shape=(3,))
    first = lm.Sequential([shared], seed=0)
    second = lm.Sequential(seed=1)
    with pytest.raises(ValueError, match="already belongs to model"):
        second.add(shared)
    assert second.layers == [] and first.layers == [shared]


def test_a_layer_of_a_deleted_model_can_join_another():
    layer = Dense(2, input_shape=(3,))
    model = lm.Sequential([layer], seed=0)
    del model
    import gc

    gc.collect()
    assert lm.Sequential([layer], seed=1).count_params() == 8


# ----------------------------------------------------------------- attributes after build
@pytest.mark.parametrize("attribute, value", [
    ("units", 8), ("activation", "tanh"), ("use_bias", False), ("kernel_initializer", "zeros"),
    ("bias_initializer", "ones"), ("kernel_regularizer", lm.regularizers.L2(0.1)), ("input_size", 7),
])
def test_dense_attributes_are_read_only_after_build(attribute, value):
    model = _model()
    layer = model.layers[0]
    before = layer.get_config()
    with pytest.raises(ReadOnlyAfterBuildError, match=attribute):
        setattr(layer, attribute, value)
    assert layer.get_config() == before
    with pytest.raises(ValueError):  # also a ValueError, as lamina reports misuse
        setattr(layer, attribute, value)


def test_dropout_rate_is_read_only_after_build():
    model = lm.Sequential([Dense(2, input_shape=(3,)), Dropout(0.5)])
    with pytest.raises(AttributeError, match="rate"):
        model.layers[1].rate = 0.1


def test_attributes_can_change_before_build():
    layer = Dense(2)
    layer.units = 5
    layer.activation = "relu"
    model = lm.Sequential([Input(shape=(3,)), layer])
    assert model.layers[0].kernel.shape == (3, 5)


# ----------------------------------------------------------------- calls during fit
@pytest.mark.parametrize("call", ["add", "compile", "fit", "build"])
def test_changing_the_model_from_a_callback_during_fit_is_a_clear_error(call):
    x, y = _data()
    model = _model()
    model.compile("sgd", "sparse_categorical_crossentropy")
    before = model.get_weights()

    class Meddle(lm.callbacks.Callback):
        def on_train_begin(self, logs=None):
            m = self.model
            {"add": lambda: m.add(Dense(3)), "compile": lambda: m.compile("adam", "mse"),
             "fit": lambda: m.fit(x, y, verbose=0), "build": lambda: m.build((None, 3))}[call]()

    with pytest.raises(ValueError, match=f"{call}\\(\\) cannot run while fit\\(\\)"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[Meddle()])
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert len(model.layers) == 2
    model.fit(x, y, epochs=1, verbose=0)  # usable afterwards


# ----------------------------------------------------------------- structure
def test_input_and_input_shape_that_disagree_are_refused():
    with pytest.raises(ValueError, match=r"input_shape=\(5,\).*shape=\(4,\)"):
        lm.Sequential([Input(shape=(4,)), Dense(3, input_shape=(5,))])


def test_input_and_equal_input_shape_agree():
    assert lm.Sequential([Input(shape=(4,)), Dense(3, input_shape=(4,))]).count_params() == 15


@pytest.mark.parametrize("initializer", [lm.initializers.Constant(1e39), lm.initializers.RandomNormal(stddev=1e200),
                                         lm.initializers.RandomUniform(-1e300, 1e300)])
def test_initializers_that_overflow_float32_are_refused(initializer):
    with pytest.raises(ValueError, match="overflow float32"):
        lm.Sequential([Dense(3, kernel_initializer=initializer, input_shape=(2,))], dtype="float32")


def test_bias_initializer_overflow_is_named():
    with pytest.raises(ValueError, match="bias_initializer"):
        lm.Sequential([Dense(3, bias_initializer=lm.initializers.Constant(1e39), input_shape=(2,))])


def test_large_constant_fits_float64():
    model = lm.Sequential([Dense(3, kernel_initializer=lm.initializers.Constant(1e39), input_shape=(2,))],
                          dtype="float64")
    assert model.layers[0].kernel[0, 0] == 1e39


def test_callbacks_not_in_a_list_is_a_type_error():
    x, y = _data()
    model = _model()
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(TypeError, match="callbacks must be a list"):
        model.fit(x, y, callbacks=lm.callbacks.EarlyStopping(), verbose=0)
    assert model.history is None


@pytest.mark.parametrize("shape", [4, "4", ()])
def test_build_with_a_non_tuple_shape_is_a_value_error(shape):
    model = lm.Sequential([Dense(2)])
    with pytest.raises(ValueError, match="input_shape"):
        model.build(shape)
    assert not model.built


def test_a_huge_layer_says_how_much_memory_it_needs():
    with pytest.raises(MemoryError, match=r"parameters \(\d+.\d GiB\)"):
        lm.Sequential([Dense(2**20, input_shape=(2**20,))], dtype="float64")


@pytest.mark.parametrize("verbose", [3, -1, "yes", True])
def test_predict_and_evaluate_check_verbose(verbose):
    x, y = _data()
    model = _model()
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="verbose"):
        model.predict(x, verbose=verbose)
    with pytest.raises(ValueError, match="verbose"):
        model.evaluate(x, y, verbose=verbose)


def test_predict_verbose_reports_the_pass(capsys):
    x, _ = _data()
    model = _model()
    np.testing.assert_array_equal(model.predict(x, verbose=2), model.predict(x))
    assert "predict: 40 samples" in capsys.readouterr().err
