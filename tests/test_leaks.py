"""No leaks: thousands of build / fit / predict / save / load cycles, and of rejected calls, keep the
process's resident memory flat.

Each cycle's model holds ~7,000 parameters (with gradients, Adam's two slots and workspaces,
well over 100 kB of C++ memory), so leaking one network per cycle would grow RSS by hundreds of
megabytes over 2,000 cycles; the bound below is 20 MB.
"""

import gc
import os
import time

import numpy as np
import pytest

import lamina as lm

PAGE = os.sysconf("SC_PAGE_SIZE")
BOUND = 20 * 2**20


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def _cycle(i, tmp_path, x, y):
    model = lm.Sequential([lm.layers.Dense(64, activation="relu", input_shape=(32,)),
                           lm.layers.Dropout(0.1),
                           lm.layers.Dense(64, activation="tanh"),
                           lm.layers.Dense(10, activation="softmax")], seed=i)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, validation_split=0.25)
    p = model.predict(x)
    path = tmp_path / f"m{i % 4}.lamina"
    model.save(path)
    again = lm.load_model(path)
    np.testing.assert_array_equal(again.predict(x), p)
    again.train_on_batch(x[:8], y[:8])
    again.evaluate(x, y)


def _measure(cycle, n, warmup=200):
    for i in range(warmup):
        cycle(i)
    gc.collect()
    before = rss_bytes()
    start = time.perf_counter()
    for i in range(warmup, warmup + n):
        cycle(i)
    gc.collect()
    return rss_bytes() - before, time.perf_counter() - start


@pytest.mark.slow  # 2,200 cycles
def test_build_fit_predict_save_load_cycles_keep_rss_flat(tmp_path, monkeypatch):
    # fsync only waits for the disk (seconds per hundred saves on a busy machine); memory is
    # what this test watches, so the saves skip it.
    monkeypatch.setattr("os.fsync", lambda fd: None)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 32)).astype(np.float32)
    y = rng.integers(0, 10, size=32)
    growth, seconds = _measure(lambda i: _cycle(i, tmp_path, x, y), 2000)
    assert growth < BOUND, f"RSS grew by {growth / 2**20:.1f} MB over 2000 cycles ({seconds:.1f} s)"


def test_rejected_calls_and_failed_allocations_keep_rss_flat(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 32)).astype(np.float32)
    y = rng.integers(0, 10, size=64)
    model = lm.Sequential([lm.layers.Dense(64, activation="relu", input_shape=(32,)),
                           lm.layers.Dense(10, activation="softmax")], seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.save(tmp_path / "good.lamina")
    damaged = bytearray((tmp_path / "good.lamina").read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    (tmp_path / "bad.lamina").write_bytes(bytes(damaged))
    bad_x = x.copy()
    bad_x[3, 3] = np.nan

    def cycle(i):
        for call in (lambda: model.fit(bad_x, y, verbose=0),
                     lambda: model.fit(x, np.full(64, 10), verbose=0),
                     lambda: model.predict(x[:, :5]),
                     lambda: model.set_weights([np.zeros(3)] * 4),
                     lambda: lm.load_model(tmp_path / "bad.lamina"),
                     # C++ exceptions thrown half-way through building a network
                     lambda: lm.Sequential([lm.layers.Dense(64, input_shape=(32,)), lm.layers.Dense(10**12)], seed=0),
                     lambda: model._net.train_batches(lm._core.BatchStats(), x, np.full((64, 1), 99.0, np.float32),
                                                      None, 0, 16, 4)):
            with pytest.raises((ValueError, TypeError, MemoryError)):
                call()

    growth, seconds = _measure(cycle, 2000)
    assert growth < BOUND, f"RSS grew by {growth / 2**20:.1f} MB over 2000 cycles of rejected calls ({seconds:.1f} s)"
