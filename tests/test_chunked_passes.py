"""predict, evaluate and fit's validation run in chunks of whole batches: the results equal one
call over every row, bit for bit, and Ctrl-C between chunks leaves the model unchanged. Adding
layers one by one builds the network once."""

import numpy as np
import pytest

import lamina as lm
from lamina import models


class _CountingNet:
    """Forwards to the real network; raises KeyboardInterrupt at call number ``interrupt_at``."""

    def __init__(self, net, interrupt_at=None):
        self._real, self.calls, self.interrupt_at = net, 0, interrupt_at

    def _count(self):
        self.calls += 1
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt

    def predict(self, *args, **kwargs):
        self._count()
        return self._real.predict(*args, **kwargs)

    def evaluate(self, *args, **kwargs):
        self._count()
        return self._real.evaluate(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._real, name)


def _model():
    model = lm.Sequential([lm.layers.Dense(16, activation="relu", input_shape=(8,)),
                           lm.layers.Dense(3, activation="softmax")], seed=0)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _data(n=5000):
    rng = np.random.default_rng(1)
    return rng.normal(size=(n, 8)).astype(np.float32), rng.integers(0, 3, size=n)


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_chunked_predict_and_evaluate_equal_one_core_call(batch_size):
    x, y = _data()
    model = _model()
    whole = model._net.predict(x, batch_size)
    stats = lm._core.BatchStats()
    model._net.evaluate(stats, x, y.reshape(-1, 1).astype(np.float32), batch_size)
    counting = _CountingNet(model._core_net)
    model._core_net = counting
    np.testing.assert_array_equal(model.predict(x, batch_size=batch_size), whole)
    logs = model.evaluate(x, y, batch_size=batch_size, return_dict=True)
    assert counting.calls > 2  # it did run in chunks
    assert logs["loss"] == stats.loss_sum / stats.samples


@pytest.mark.parametrize("call", ["predict", "evaluate", "fit_validation"])
def test_ctrl_c_between_chunks_stops_the_pass_and_leaves_the_model_unchanged(call):
    x, y = _data()
    model = _model()
    before = model.get_state()
    model._core_net = _CountingNet(model._core_net, interrupt_at=2)
    with pytest.raises(KeyboardInterrupt):
        if call == "predict":
            model.predict(x, batch_size=8)
        elif call == "evaluate":
            model.evaluate(x, y, batch_size=8)
        else:
            model.fit(x[:64], y[:64], epochs=1, verbose=0, validation_data=(x, y), batch_size=64)
    after = model.get_state()
    if call != "fit_validation":
        np.testing.assert_array_equal(before["params"], after["params"])
        assert before["iterations"] == after["iterations"]


def test_adding_layers_one_by_one_builds_once(monkeypatch):
    builds = []
    real = dict(models._CORE)

    def counting(dtype):
        def make(*args):
            builds.append(dtype)
            return real[dtype](*args)
        return make

    monkeypatch.setitem(models._CORE, "float32", counting("float32"))
    model = lm.Sequential(seed=0)
    model.add(lm.layers.Input(shape=(4,)))
    for _ in range(300):
        model.add(lm.layers.Dense(2))
    assert builds == []
    assert model.count_params() == 4 * 2 + 2 + 299 * (2 * 2 + 2)
    assert len(builds) == 1
    model.add(lm.layers.Dense(1))
    model.compile("sgd", "mse")
    model.predict(np.zeros((1, 4)))
    assert len(builds) == 2


def test_adding_to_a_built_model_keeps_the_earlier_weights():
    model = lm.Sequential([lm.layers.Dense(3, input_shape=(2,))], seed=0)
    kernel = model.layers[0].kernel.copy()
    model.add(lm.layers.Dense(1))
    np.testing.assert_array_equal(model.layers[0].kernel, kernel)
    assert model.layers[1].kernel.shape == (3, 1)
