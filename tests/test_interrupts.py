"""Ctrl-C during fit: a real SIGINT sent to a process that is training.

The interrupted process must stop within a chunk (well under a second), keep finite weights that
are exactly those of a fresh identical model trained for ``model.optimizer.iterations`` steps
(the last completed step), keep the finished epochs in History, and continue normally with the
next ``fit``.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np

import lamina as lm

CHILD = textwrap.dedent(r"""
    import json, math, sys, time
    import numpy as np
    import lamina as lm

    N, BATCH = 20000, 32
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 64)).astype(np.float32)
    y = rng.integers(0, 10, size=N)

    def make():
        m = lm.Sequential([lm.layers.Dense(256, activation="relu", input_shape=(64,)),
                           lm.layers.Dense(10, activation="softmax")], seed=7)
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return m

    class Seen(lm.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epochs_ended = 0
        def on_epoch_end(self, epoch, logs=None):
            self.epochs_ended += 1

    model, seen = make(), Seen()
    make().fit(x[:64], y[:64], batch_size=BATCH, verbose=0)  # warm up outside the timed part
    print("READY", flush=True)
    caught = None
    try:
        model.fit(x, y, batch_size=BATCH, epochs=1000, verbose=2, callbacks=[seen])
    except KeyboardInterrupt:
        caught = time.monotonic()
    out = {"caught": caught, "iterations": int(model.optimizer.iterations),
           "epochs_trained": model.epochs_trained, "history_epochs": model.history.epoch,
           "history_loss": model.history.history.get("loss", []), "epochs_ended": seen.epochs_ended,
           "steps_per_epoch": math.ceil(N / BATCH)}
    weights = model.get_weights()
    out["finite"] = bool(all(np.isfinite(w).all() for w in weights))

    # Replay: a fresh model trained for exactly `iterations` steps, the same way fit does it:
    # whole epochs with fit, then the first batches of the next epoch's shuffle, one by one.
    replay = make()
    full, part = divmod(out["iterations"], out["steps_per_epoch"])
    if full:
        replay.fit(x, y, batch_size=BATCH, epochs=full, verbose=0)
    order = lm._core.shuffled_order(N, replay.seed, full)
    for b in range(part):
        rows = order[b * BATCH:(b + 1) * BATCH]
        replay.train_on_batch(x[rows], y[rows])
    out["replay_iterations"] = int(replay.optimizer.iterations)
    out["replay_equal"] = bool(all(np.array_equal(a, b) for a, b in zip(weights, replay.get_weights())))
    out["replay_max_gap"] = float(max(np.abs(a - b).max() for a, b in zip(weights, replay.get_weights())))

    # Training continues where it stopped.
    before = model.optimizer.iterations
    h = model.fit(x[:3200], y[:3200], batch_size=BATCH, epochs=1, verbose=0)
    out["resumed_iterations"] = int(model.optimizer.iterations - before)
    out["resumed_loss"] = h.history["loss"][0]
    out["resumed_epochs_trained"] = model.epochs_trained
    print("RESULT " + json.dumps(out), flush=True)
""")


def run_and_interrupt(tmp_path, delay):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    # One core thread: on a loaded machine (more runnable threads than cores) OpenMP barriers wait
    # for descheduled threads and a chunk sized for 0.15 s can take seconds, which measures the
    # machine rather than lamina's interrupt handling.
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "READY", (line, proc.stderr.read())
        time.sleep(delay)
        sent = time.monotonic()  # CLOCK_MONOTONIC is shared by all processes on Linux
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    results = [l for l in stdout.splitlines() if l.startswith("RESULT ")]
    assert results, (stdout, stderr)
    return sent, json.loads(results[0][len("RESULT "):]), stderr


def test_sigint_during_fit_stops_promptly_at_a_consistent_step(tmp_path):
    sent, out, stderr = run_and_interrupt(tmp_path, delay=1.0)
    assert out["caught"] is not None, "fit was not interrupted: KeyboardInterrupt never reached the script"
    assert out["caught"] - sent < 1.0, f"stopped {out['caught'] - sent:.2f} s after SIGINT"
    assert out["iterations"] > 0
    assert out["finite"]
    # History holds exactly the epochs that ended; epochs_trained counts the epochs whose batches
    # all ran, which is one more when the signal landed after an epoch's last batch but before
    # its end-of-epoch work (validation, callbacks) finished.
    ended = len(out["history_loss"])
    assert out["history_epochs"] == list(range(ended)) and out["epochs_ended"] == ended
    assert out["epochs_trained"] in (ended, ended + 1)
    steps = out["steps_per_epoch"]
    if out["epochs_trained"] == ended + 1:
        assert out["iterations"] == out["epochs_trained"] * steps
    assert out["epochs_trained"] * steps <= out["iterations"] < (out["epochs_trained"] + 1) * steps
    # The weights are those of the last completed step, bit for bit.
    assert out["replay_iterations"] == out["iterations"]
    assert out["replay_equal"], f"weights differ from a replay of {out['iterations']} steps " \
                                f"(max gap {out['replay_max_gap']})"
    # And training continues normally.
    assert out["resumed_iterations"] == 100
    assert np.isfinite(out["resumed_loss"])
    assert out["resumed_epochs_trained"] == out["epochs_trained"] + 1
    # The verbose=2 display printed one line per ended epoch and no traceback noise.
    assert stderr.count("Epoch ") == ended, stderr
    assert "Traceback" not in stderr


def test_sigint_right_away_and_late_also_leave_consistent_state(tmp_path):
    for delay in (0.05, 2.5):
        sent, out, stderr = run_and_interrupt(tmp_path, delay=delay)
        assert out["caught"] is not None and out["caught"] - sent < 1.0
        assert out["finite"] and out["replay_equal"], (delay, out)
        steps = out["steps_per_epoch"]
        assert out["epochs_trained"] * steps <= out["iterations"] < (out["epochs_trained"] + 1) * steps


class _InterruptAt(lm.callbacks.Callback):
    """Raises KeyboardInterrupt from a hook, as a Ctrl-C landing in Python code between chunks does."""

    def __init__(self, hook, epoch):
        super().__init__()
        self.hook, self.epoch, self.current = hook, epoch, 0
        self.batches_seen = []

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch
        if self.hook == "on_epoch_begin" and epoch == self.epoch:
            raise KeyboardInterrupt

    def on_batch_end(self, batch, logs=None):
        self.batches_seen.append((self.current, batch))
        if self.hook == "on_batch_end" and self.current == self.epoch:
            raise KeyboardInterrupt

    def on_epoch_end(self, epoch, logs=None):
        if self.hook == "on_epoch_end" and epoch == self.epoch:
            raise KeyboardInterrupt


def _toy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3000, 8))
    y = (x[:, :3] @ np.ones(3) > 0).astype(float)
    model = lm.Sequential([lm.layers.Dense(8, activation="tanh", input_shape=(8,)),
                           lm.layers.Dense(1, activation="sigmoid")], seed=3)
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    return model, x, y


def test_keyboard_interrupt_in_a_callback_keeps_counters_consistent():
    steps = 3000 // 30  # batch_size 30
    for hook, epoch, want_iterations, want_epochs in (("on_epoch_begin", 2, 2 * steps, 2),
                                                      ("on_epoch_end", 1, 2 * steps, 2)):
        model, x, y = _toy()
        cb = _InterruptAt(hook, epoch)
        try:
            model.fit(x, y, batch_size=30, epochs=5, verbose=0, callbacks=[cb])
        except KeyboardInterrupt:
            pass
        else:
            raise AssertionError("KeyboardInterrupt was swallowed")
        assert model.optimizer.iterations == want_iterations, hook
        assert model.epochs_trained == want_epochs, hook
        # A finished epoch whose on_epoch_end hook was interrupted is counted (its shuffle was used).
        assert model.history.epoch == list(range(want_epochs if hook == "on_epoch_begin" else want_epochs - 1))
        model.fit(x, y, batch_size=30, epochs=1, verbose=0)
        assert model.optimizer.iterations == want_iterations + steps

    model, x, y = _toy()
    cb = _InterruptAt("on_batch_end", 1)
    try:
        model.fit(x, y, batch_size=30, epochs=5, verbose=0, callbacks=[cb])
    except KeyboardInterrupt:
        pass
    last_epoch, last_batch = cb.batches_seen[-1]
    assert last_epoch == 1
    assert model.optimizer.iterations == steps + last_batch + 1
    # An epoch counts as trained once all its batches ran (its shuffle is used up), even when
    # the interrupt came before its on_epoch_end; History holds the epochs that ended.
    assert model.epochs_trained == (2 if last_batch + 1 == steps else 1)
    assert model.history.epoch == [0]
