"""fit / evaluate / predict on a lamina.data.Dataset, a generator, and an np.memmap: each delivered
batch trained by the core with the GIL released, the next ones loaded meanwhile on a thread, the
results bit-identical to the same batches given as arrays whatever the timing."""

import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import lamina as lm


class Batches(lm.data.Dataset):
    """Consecutive slices of arrays; records each request (key, thread, optimizer steps so far)."""

    def __init__(self, x, y, batch_size, w=None, sleep=0.0, model=None, fail_at=None):
        self.x, self.y, self.w, self.batch_size = x, y, w, batch_size
        self.sleep, self.model, self.fail_at = sleep, model, fail_at
        self.requests, self.epochs_ended = [], 0
        self._rng = np.random.default_rng(0)

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i):
        steps = int(self.model._net.iterations) if self.model is not None and self.model.built else None
        self.requests.append((i, threading.get_ident(), steps))
        if self.sleep:
            time.sleep(self.sleep * self._rng.random())
        if i == self.fail_at:
            raise KeyError(f"batch {i} is missing")
        part = slice(i * self.batch_size, (i + 1) * self.batch_size)
        if self.w is None:
            return self.x[part], self.y[part]
        return self.x[part], self.y[part], self.w[part]

    def on_epoch_end(self):
        self.epochs_ended += 1


def _model(seed=1, dtype="float32"):
    model = lm.Sequential([lm.layers.Dense(8, activation="relu", input_shape=(4,)),
                           lm.layers.Dense(3, activation="softmax")], seed=seed, dtype=dtype)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  weighted_metrics=["accuracy"])
    return model


@pytest.fixture
def data(rng):
    x = rng.standard_normal((100, 4)).astype(np.float32)
    y = rng.integers(0, 3, 100)
    x[:, 0] += y
    return x, y


def _same_weights(a, b):
    return all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights()))


def test_a_dataset_trains_bit_identically_to_the_same_batches_as_arrays(data):
    x, y = data
    arrays, streamed = _model(), _model()
    ha = arrays.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0, validation_data=(x[:40], y[:40]))
    source = Batches(x, y, 16)
    hs = streamed.fit(source, epochs=3, shuffle=False, verbose=0, validation_data=Batches(x[:40], y[:40], 40))
    assert _same_weights(arrays, streamed)
    assert ha.history["loss"] == hs.history["loss"] and ha.history["accuracy"] == hs.history["accuracy"]
    np.testing.assert_allclose(ha.history["val_loss"], hs.history["val_loss"], rtol=1e-12)
    assert source.epochs_ended == 3 and streamed.epochs_trained == 3


def test_results_do_not_depend_on_how_long_batches_take_to_load(data):
    x, y = data
    fast, slow = _model(), _model()
    hf = fast.fit(Batches(x, y, 8), epochs=2, verbose=0)
    hs = slow.fit(Batches(x, y, 8, sleep=0.004), epochs=2, verbose=0)
    assert _same_weights(fast, slow) and hf.history == hs.history


def test_a_shuffled_dataset_visits_its_batches_in_an_order_drawn_from_the_seed(data):
    x, y = data
    orders = []
    for _ in range(2):
        source = Batches(x, y, 10)
        _model().fit(source, epochs=2, verbose=0)
        orders.append([k for k, _, _ in source.requests])
    assert orders[0] == orders[1]
    first, second = orders[0][:10], orders[0][10:]
    assert sorted(first) == sorted(second) == list(range(10)) and first != second


def test_batches_load_on_another_thread_ahead_of_the_training(data):
    x, y = data
    model = _model()
    model.set_gradient_hook(lambda g, step: time.sleep(0.003))  # each step takes a while
    model.fit(x[:8], y[:8], epochs=1, verbose=0)
    start = int(model._net.iterations)
    source = Batches(x, y, 10, model=model)
    model.fit(source, epochs=1, shuffle=False, verbose=0)
    main = threading.get_ident()
    assert [k for k, _, _ in source.requests] == list(range(10))
    assert source.requests[0][1] == main  # the first batch is checked before anything changes
    assert all(thread != main for _, thread, _ in source.requests[1:])
    # Batch k was requested before batch k - 1 had finished training: loading overlapped it.
    assert all(steps - start < k for k, _, steps in source.requests[1:])


def test_a_generator_with_steps_per_epoch_trains_like_the_dataset(data):
    x, y = data

    def batches():
        while True:
            for i in range(0, 100, 16):
                yield x[i:i + 16], y[i:i + 16]

    a, b = _model(), _model()
    ha = a.fit(Batches(x, y, 16), epochs=2, shuffle=False, verbose=0)
    hb = b.fit(batches(), steps_per_epoch=7, epochs=2, verbose=0, validation_data=batches(), validation_steps=7)
    assert _same_weights(a, b) and ha.history["loss"] == hb.history["loss"]
    assert hb.history["val_loss"][1] == pytest.approx(b.evaluate(x, y, return_dict=True)["loss"], rel=1e-6)


def test_dataset_sample_weights_and_class_weight_match_the_array_arguments(data, rng):
    x, y = data
    w = rng.uniform(0.2, 2.0, len(x))
    arrays, streamed = _model(), _model()
    ha = arrays.fit(x, y, batch_size=20, epochs=2, shuffle=False, verbose=0, sample_weight=w)
    hs = streamed.fit(Batches(x, y, 20, w=w), epochs=2, shuffle=False, verbose=0)
    assert _same_weights(arrays, streamed) and ha.history == hs.history
    cw = {0: 3.0, 2: 0.5}
    arrays, streamed = _model(), _model()
    arrays.fit(x, y, batch_size=20, epochs=2, shuffle=False, verbose=0, class_weight=cw)
    streamed.fit(Batches(x, y, 20), epochs=2, shuffle=False, verbose=0, class_weight=cw)
    assert _same_weights(arrays, streamed)


def test_predict_and_evaluate_take_datasets_and_generators(data):
    x, y = data
    model = _model()
    model.fit(x, y, epochs=1, verbose=0)
    assert np.array_equal(model.predict(Batches(x, y, 30)), model.predict(x))
    assert np.array_equal(model.predict((x[i:i + 25] for i in range(0, 100, 25)), steps=4), model.predict(x))
    got = model.evaluate(Batches(x, y, 25), return_dict=True)
    want = model.evaluate(x, y, batch_size=25, return_dict=True)
    assert got == want


def test_an_error_in_a_later_batch_stops_training_after_the_batches_before_it(data):
    x, y = data
    model = _model()
    threads = threading.active_count()
    with pytest.raises(KeyError, match="batch 3 is missing"):
        model.fit(Batches(x, y, 10, fail_at=3), epochs=1, shuffle=False, verbose=0)
    assert model._net.iterations == 3
    assert threading.active_count() == threads  # the loader thread has ended
    bad = x.copy()
    bad[55, 1] = np.nan
    with pytest.raises(ValueError, match=r"x\[5\] x contains NaN or infinity \(first at index \(5, 1\)"):
        model.fit(Batches(bad, y, 10), epochs=1, shuffle=False, verbose=0)


def test_a_bad_first_batch_is_refused_before_anything_changes(data):
    x, y = data
    model = lm.Sequential([lm.layers.Dense(3, activation="softmax")], seed=0)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"x\[0\] y must hold integer labels"):
        model.fit(Batches(x, y + 5, 10), epochs=1, shuffle=False, verbose=0)
    assert not model.built and model.epochs_trained == 0
    with pytest.raises(ValueError, match=r"batch 0 of x must be a tuple \(x, y\) or \(x, y, sample_weight\)"):
        model.fit(iter([x]), steps_per_epoch=1, verbose=0)
    with pytest.raises(ValueError, match="stopped after 0 of its 2 batches: it delivered no batch"):
        model.fit(iter([]), steps_per_epoch=2, verbose=0)


def test_batches_must_all_carry_weights_or_none(data):
    x, y = data

    class Mixed(Batches):
        def __getitem__(self, i):
            xb, yb = super().__getitem__(i)
            return (xb, yb, np.ones(len(xb))) if i == 0 else (xb, yb)

    model = _model()
    with pytest.raises(ValueError, match=r"x\[1\] lacks sample weights and the first batch has them"):
        model.fit(Mixed(x, y, 10), epochs=1, shuffle=False, verbose=0)


@pytest.mark.parametrize("kwargs,match", [
    ({"y": np.zeros(100)}, "y must be None when x is a Dataset or a generator"),
    ({"batch_size": 10}, "batch_size must be None when x is a Dataset"),
    ({"sample_weight": np.ones(100)}, "sample_weight must be None when x is a Dataset"),
    ({"validation_split": 0.2}, "validation_split needs arrays"),
    ({"steps_per_epoch": 11}, "steps_per_epoch=11 is more than the 10 batches of x"),
    ({"steps_per_epoch": 0}, "steps_per_epoch must be a positive integer"),
    ({"validation_data": iter([])}, "validation_data is a generator, which has no length: give validation_steps"),
])
def test_stream_arguments_that_do_not_fit_are_refused(kwargs, match, data):
    x, y = data
    with pytest.raises(ValueError, match=match):
        _model().fit(Batches(x, y, 10), verbose=0, **kwargs)


def test_a_generator_needs_steps_and_arrays_take_no_steps(data):
    x, y = data
    with pytest.raises(ValueError, match="x is a generator, which has no length: give steps_per_epoch"):
        _model().fit(iter([(x, y)]), verbose=0)
    with pytest.raises(ValueError, match="steps_per_epoch is for a Dataset or a generator x"):
        _model().fit(x, y, steps_per_epoch=3, verbose=0)


def test_a_generator_that_runs_out_stops_training_with_a_warning(data):
    x, y = data
    model = _model()
    with pytest.warns(UserWarning, match="x stopped after 2 of its 3 batches; training stops here"):
        model.fit(((x[i:i + 10], y[i:i + 10]) for i in range(0, 50, 10)), steps_per_epoch=3, epochs=4, verbose=0)
    assert model._net.iterations == 5 and model.epochs_trained == 2


def test_progress_counts_batches_for_a_dataset(data, capsys):
    x, y = data
    _model().fit(Batches(x, y, 10), epochs=1, verbose=2)
    assert "batches/s" in capsys.readouterr().err


MEMMAP_SCRIPT = textwrap.dedent("""
    import resource, sys
    import numpy as np, lamina as lm
    path, rows, cols, cap = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    np.memmap(path, dtype=np.float32, mode="w+", shape=(rows, cols)).flush()  # a sparse file of zeros
    x = np.memmap(path, dtype=np.float32, mode="r", shape=(rows, cols))
    y = np.zeros(rows, np.float32)
    model = lm.Sequential([lm.layers.Dense(1, input_shape=(cols,))], seed=0)
    model.compile("sgd", "mse")
    # Private memory (heap, anonymous maps) is capped far below the array: a copy cannot happen.
    resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
    try:
        np.array(x)
        print("a copy fit under the cap")
    except MemoryError:
        pass
    model.fit(x, y, batch_size=8192, epochs=1, verbose=0, validation_split=0.25)
    print(int(model._net.iterations), model.predict(x[:4]).shape)
""")


def test_an_np_memmap_larger_than_the_memory_cap_trains_without_a_copy(tmp_path):
    rows, cols, cap = 2**18, 1024, 256 * 2**20  # a 1 GiB file through a 256 MiB cap
    script = tmp_path / "memmap_fit.py"
    script.write_text(MEMMAP_SCRIPT)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "x.f32"), str(rows), str(cols), str(cap)],
                          capture_output=True, text=True, timeout=300, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == f"{-(-(rows * 3 // 4) // 8192)} (4, 1)"


def test_a_list_of_batches_trains_as_one_call_per_batch_and_is_checked_first(data):
    x, y = data
    a, b = _model(1, "float64"), _model(1, "float64")
    batches = [b._stream_batch((x[i:i + 16], y[i:i + 16]), "x") for i in range(0, 100, 16)]
    stats_a, stats_b = lm._core.BatchStats(), lm._core.BatchStats()
    for xs, ys, ws in batches:
        a._net.train_batches(stats_a, xs, ys, None, 0, xs.shape[0], 1, ws)
    b._net.train_batch_list(stats_b, batches)
    assert _same_weights(a, b) and stats_a.loss_sum == stats_b.loss_sum and stats_b.batches == 7
    before = b._net.parameters().copy()
    bad = list(batches)
    bad[3] = (bad[3][0], bad[3][1] + 7, None)  # labels out of range in the fourth batch
    with pytest.raises(ValueError, match="label out of range"):
        b._net.train_batch_list(stats_b, bad)
    with pytest.raises(ValueError, match="each batch must be a tuple"):
        b._net.train_batch_list(stats_b, [batches[0][:2]])
    assert np.array_equal(before, b._net.parameters())


def test_ctrl_c_while_loading_leaves_the_steps_taken_and_no_thread(data):
    x, y = data

    class Interrupted(Batches):
        def __getitem__(self, i):
            if i == 4:
                raise KeyboardInterrupt
            return super().__getitem__(i)

    model = _model()
    threads = threading.active_count()
    with pytest.raises(KeyboardInterrupt):
        model.fit(Interrupted(x, y, 10), epochs=2, shuffle=False, verbose=0)
    assert model._net.iterations == 4 and model.epochs_trained == 0
    assert threading.active_count() == threads
    model.fit(Batches(x, y, 10), epochs=1, shuffle=False, verbose=0)  # the model is usable again
    assert model.epochs_trained == 1
