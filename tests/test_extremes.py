"""Extreme hyper-parameters and sizes: divergence shows up as a plain ``nan`` loss that
``TerminateOnNaN`` stops on, and networks too large to allocate raise ``MemoryError`` or
``ValueError`` instead of crashing the process.

The allocation probes run in a subprocess under an address-space limit, so a bug can neither
take the machine's memory nor kill the test runner.
"""

import json
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import lamina as lm


def _regression(lr, optimizer="sgd", dtype="float32"):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype(dtype) * 10
    y = (x @ rng.normal(size=(8, 2))).astype(dtype)
    model = lm.Sequential([lm.layers.Dense(32, activation="relu", input_shape=(8,)), lm.layers.Dense(2)],
                          seed=0, dtype=dtype)
    opt = lm.optimizers.get(optimizer)
    opt.learning_rate = lr
    model.compile(optimizer=opt, loss="mse", metrics=["mean_absolute_error"])
    return model, x, y


@pytest.mark.parametrize("optimizer,exponent", [("sgd", 3), ("sgd", 30), ("adam", 30), ("rmsprop", 25)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_diverging_learning_rate_ends_in_a_nan_loss(optimizer, exponent, dtype):
    # Adam and RMSprop move each weight by about the learning rate per step, so in float64 the
    # rate must be large enough for the weights to overflow: 1e30 only gets the loss to 1e124.
    if dtype == "float64" and optimizer != "sgd":
        exponent = 200
    model, x, y = _regression(10.0 ** exponent, optimizer, dtype)
    history = model.fit(x, y, epochs=30, batch_size=16, verbose=0)
    losses = history.history["loss"]
    assert len(losses) == 30  # no callback: fit runs every epoch, it does not raise
    assert math.isnan(losses[-1]), losses
    # Once NaN, it stays NaN (no silent resurrection through clipping or max()).
    first = next(i for i, v in enumerate(losses) if math.isnan(v))
    assert all(math.isnan(v) for v in losses[first:]), losses
    assert math.isnan(model.evaluate(x, y)[0])


def test_terminate_on_nan_stops_and_the_display_says_nan_plainly(capsys):
    model, x, y = _regression(1e30)
    history = model.fit(x, y, epochs=50, batch_size=16, verbose=2, callbacks=[lm.callbacks.TerminateOnNaN()])
    out, err = capsys.readouterr()
    assert len(history.epoch) < 50
    assert model.stop_training
    # TerminateOnNaN says why it stopped, and the epoch line shows the value as nan.
    assert "invalid loss (nan)" in out, out
    lines = [l for l in err.splitlines() if l.startswith("Epoch ")]
    assert len(lines) == len(history.epoch)
    assert "loss: nan" in lines[-1], lines
    assert "loss: inf" not in err and "NaN" not in err
    # It stopped at the first epoch whose loss was not finite.
    losses = history.history["loss"]
    assert not math.isfinite(losses[-1]) and all(math.isfinite(v) for v in losses[:-1])
    iterations_per_epoch = math.ceil(256 / 16)
    assert model.optimizer.iterations <= len(history.epoch) * iterations_per_epoch


@pytest.mark.parametrize("kwargs", [
    dict(optimizer=lm.optimizers.SGD(learning_rate=1e-30)),
    dict(optimizer=lm.optimizers.SGD(learning_rate=1e-3, momentum=1.0)),
    dict(optimizer=lm.optimizers.Adam(learning_rate=1e-3, epsilon=1e-300)),
    dict(optimizer=lm.optimizers.Adam(learning_rate=1e-3, beta_1=0.0, beta_2=0.0)),
    dict(optimizer=lm.optimizers.RMSprop(learning_rate=1e-3, rho=0.0)),
    dict(optimizer=lm.optimizers.Adagrad(learning_rate=1e-3, initial_accumulator_value=0.0, epsilon=1e-300)),
    dict(optimizer=lm.optimizers.SGD(learning_rate=1.0, clipnorm=1e-30)),
    dict(optimizer=lm.optimizers.SGD(learning_rate=1.0, clipvalue=1e-30)),
    dict(optimizer=lm.optimizers.SGD(learning_rate=1.0, global_clipnorm=1e-30)),
])
def test_extreme_but_legal_optimizer_settings_train_without_error(kwargs):
    model, x, y = _regression(1e-3)
    model.compile(loss="mse", **kwargs)
    history = model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    assert len(history.history["loss"]) == 2
    assert model.optimizer.iterations == 16
    # Settings that cannot diverge keep the weights finite.
    if not getattr(kwargs["optimizer"], "momentum", 0.0) == 1.0:
        assert all(np.isfinite(w).all() for w in model.get_weights()), kwargs


def test_a_huge_regularization_penalty_gives_a_non_finite_loss_not_an_error():
    model = lm.Sequential([lm.layers.Dense(4, input_shape=(3,), kernel_regularizer=lm.regularizers.L2(1e308))],
                          seed=0, dtype="float64")
    model.compile(optimizer="sgd", loss="mse")
    loss = model.evaluate(np.ones((2, 3)), np.ones((2, 4)))
    assert math.isinf(loss) or math.isnan(loss) or loss > 1e300


def test_batch_size_far_larger_than_the_data_is_one_batch():
    """Keras accepts batch_size > samples: one batch of all the data. 10**12 would need terabytes
    if workspaces were sized by batch_size instead of min(batch_size, samples)."""
    model, x, y = _regression(1e-3)
    model.fit(x, y, batch_size=10**12, epochs=1, verbose=0)
    assert model.optimizer.iterations == 1
    model.evaluate(x, y, batch_size=10**12)
    model.predict(x, batch_size=10**12)


# ---------------------------------------------------------------------------------- allocation
PROBE = textwrap.dedent(r"""
    import json, resource, sys
    limit = 4 * 2**30  # never let a probe take more than 4 GB, whatever lamina asks for
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import numpy as np
    import lamina as lm
    code = sys.argv[1]
    try:
        exec(code)
        outcome = "ok"
    except (MemoryError, ValueError) as exc:
        outcome = type(exc).__name__
    except BaseException as exc:
        outcome = f"{type(exc).__name__}: {exc}"
    print(json.dumps({"outcome": outcome}))
""")


def _probe(code, tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    proc = subprocess.run([sys.executable, str(script), code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"the process died (rc {proc.returncode}) running {code!r}: {proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])["outcome"]


@pytest.mark.parametrize("code", [
    "lm.Sequential([lm.layers.Dense(10**12, input_shape=(4,))], seed=0)",
    "lm.Sequential([lm.layers.Dense(10**6, input_shape=(10**7,))], seed=0)",
    "lm.Sequential([lm.layers.Dense(2**62, input_shape=(4,))], seed=0)",
    "lm.Sequential([lm.layers.Dense(2**40, input_shape=(2**40,))], seed=0, dtype='float64')",
    # ~1.2 GB of parameters, x3 with gradients and Adam's slots: beyond the 4 GB limit
    "m = lm.Sequential([lm.layers.Dense(3 * 10**8, input_shape=(1,))], seed=0); m.compile('adam', 'mse')",
    # the network fits; the activation workspaces for one huge batch do not
    "m = lm.Sequential([lm.layers.Dense(10**5, input_shape=(2,))], seed=0); m.predict(np.zeros((10**5, 2)), batch_size=10**5)",
    "m = lm.Sequential([lm.layers.Dense(10**5, input_shape=(2,)), lm.layers.Dense(1)], seed=0); m.compile('sgd', 'mse');"
    " m.fit(np.zeros((10**5, 2)), np.zeros(10**5), batch_size=10**5, verbose=0)",
])
def test_networks_too_large_to_allocate_raise_instead_of_crashing(code, tmp_path):
    assert _probe(code, tmp_path) in ("MemoryError", "ValueError")


@pytest.mark.parametrize("inputs,units", [(6148914691236517206, 3), (3, 6148914691236517206), (2**32, 2**32)])
def test_parameter_counts_that_overflow_64_bits_are_refused(inputs, units, tmp_path):
    """inputs * units wraps around int64: the model must not be built with a wrapped count."""
    code = (f"m = lm.Sequential([lm.layers.Dense({units}, input_shape=({inputs},))], seed=0)\n"
            f"assert m.count_params() == {inputs} * {units} + {units}, m.count_params()")
    assert _probe(code, tmp_path) in ("MemoryError", "ValueError")


def test_a_large_batch_size_on_small_data_takes_small_memory(tmp_path):
    """fit(batch_size=10**7) on 256 rows of an 8-32-2 network: one batch of 256 rows, a few MB."""
    code = ("import resource\n"
            "x = np.zeros((256, 8), np.float32); y = np.zeros((256, 2), np.float32)\n"
            "m = lm.Sequential([lm.layers.Dense(32, activation='relu', input_shape=(8,)), lm.layers.Dense(2)], seed=0)\n"
            "m.compile('sgd', 'mse')\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "m.fit(x, y, batch_size=10**7, verbose=0)\n"
            "grew = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024\n"
            "assert grew < 200, f'fit took {grew:.0f} MB more'\n")
    assert _probe(code, tmp_path) == "ok"
