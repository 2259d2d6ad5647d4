"""Callbacks: each one's behaviour against scripted logs (driven directly) and in a real fit."""

import csv
import math

import numpy as np
import pytest

import lamina as lm
from lamina import load_model
from lamina.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TerminateOnNaN,
)


def make_model(seed=0, optimizer="sgd", dropout=False):
    layers = [lm.layers.Dense(6, activation="tanh", input_shape=(3,))]
    if dropout:
        layers.append(lm.layers.Dropout(0.25))
    layers.append(lm.layers.Dense(2))
    model = lm.Sequential(layers, seed=seed)
    model.compile(optimizer=optimizer, loss="mse", metrics=["mae"])
    model.build()
    return model


def regression_data(n=64, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = np.stack([x[:, 0] - x[:, 1], 0.5 * x[:, 2]], axis=1).astype(np.float32)
    return x, y


def drive(callback, model, values, monitor="val_loss"):
    """Runs on_train_begin, then on_epoch_end with scripted monitor values; returns the epoch after
    which model.stop_training first became True (or None), then on_train_end."""
    callback.set_model(model)
    model.stop_training = False
    callback.on_train_begin({})
    stopped = None
    for epoch, value in enumerate(values):
        callback.on_epoch_end(epoch, {"loss": 1.0, monitor: value})
        if model.stop_training:
            stopped = epoch
            break
    callback.on_train_end({})
    return stopped


class Script(Callback):
    """Writes a scripted value into the epoch's logs (runs before the callbacks after it) and
    records the weights at each epoch end."""

    def __init__(self, values, key="score"):
        super().__init__()
        self.values, self.key, self.weights = values, key, []

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]
        self.weights.append(self.model.get_weights())


# ---------------------------------------------------------------------------------- EarlyStopping
@pytest.mark.parametrize("values, kwargs, stop_epoch", [
    ([1.0, 0.8, 0.85, 0.9, 0.7], dict(patience=2), 3),
    ([1.0, 0.8, 0.85, 0.9, 0.7], dict(patience=3), None),
    ([1.0, 0.8, 0.85], dict(patience=0), 2),
    ([1.0, 1.0], dict(patience=0), 1),                         # equal is not an improvement
    ([1.0, 0.95, 0.92, 0.5], dict(patience=2, min_delta=0.1), 2),  # small gains do not count
    ([1.0, 0.95, 0.92, 0.5], dict(patience=2, min_delta=-0.1), 2),  # sign of min_delta ignored
    ([0.9, 0.8, 0.85], dict(patience=2, baseline=0.5), 2),     # never beats the baseline
    ([0.9, 0.8, 0.85], dict(patience=2), None),
    ([5.0, 6.0, 3.0, 3.0, 3.0], dict(patience=1, start_from_epoch=2), 3),
])
def test_early_stopping_stops_at_the_right_epoch(values, kwargs, stop_epoch):
    model = make_model()
    es = EarlyStopping(monitor="val_loss", **kwargs)
    assert drive(es, model, values) == stop_epoch
    assert es.stopped_epoch == (stop_epoch or 0)


def test_early_stopping_max_mode_for_accuracy_and_explicit_modes():
    model = make_model()
    assert EarlyStopping(monitor="val_accuracy").mode == "max"
    assert EarlyStopping(monitor="val_f1").mode == "max"
    assert EarlyStopping(monitor="val_loss").mode == "min"
    assert EarlyStopping(monitor="mean_absolute_error").mode == "min"
    assert drive(EarlyStopping(monitor="val_accuracy", patience=1), model, [0.5, 0.7, 0.6, 0.8], "val_accuracy") == 2
    assert drive(EarlyStopping(monitor="val_thing", mode="max", patience=1), model, [1, 2, 1], "val_thing") == 2
    assert drive(EarlyStopping(monitor="val_thing", mode="min", patience=1), model, [1, 2, 1], "val_thing") == 1


def test_early_stopping_is_reusable_across_fits():
    model = make_model()
    es = EarlyStopping(patience=1)
    assert drive(es, model, [1.0, 2.0]) == 1
    assert drive(es, model, [5.0, 4.0, 3.0]) is None  # best was reset by on_train_begin


@pytest.mark.parametrize("patience, expect_epochs", [(2, 4), (10, 6)])
def test_restore_best_weights_restores_the_best_epoch(patience, expect_epochs):
    """Stopped early or not (Keras 3), the weights are the ones at the end of the best epoch."""
    x, y = regression_data()
    model = make_model(optimizer="adam")
    script = Script([3.0, 1.0, 2.0, 2.5, 4.0, 1.5])
    es = EarlyStopping(monitor="score", patience=patience, restore_best_weights=True)
    history = model.fit(x, y, epochs=6, batch_size=16, verbose=0, callbacks=[script, es])
    assert len(history.epoch) == expect_epochs
    assert es.best_epoch == 1
    assert history.history["score"][:2] == [3.0, 1.0]
    for got, want in zip(model.get_weights(), script.weights[1]):
        np.testing.assert_array_equal(got, want)
    assert not np.array_equal(script.weights[1][0], script.weights[-1][0])  # training did move them


def test_restore_best_weights_with_terminate_on_nan_and_no_finite_epoch():
    """A fit that diverges in its first epoch has no best epoch: nothing to restore, no error."""
    x, y = regression_data(256)
    model = make_model(optimizer=lm.optimizers.SGD(learning_rate=1e6))
    es = EarlyStopping(monitor="loss", restore_best_weights=True)
    history = model.fit(x, y, epochs=5, batch_size=8, verbose=0, callbacks=[TerminateOnNaN(), es])
    assert history.epoch == [0] and es.best is None


def test_early_stopping_without_restore_keeps_the_last_weights():
    x, y = regression_data()
    model = make_model(optimizer="adam")
    script = Script([3.0, 1.0, 2.0, 2.5])
    model.fit(x, y, epochs=4, verbose=0, callbacks=[script, EarlyStopping(monitor="score", patience=5)])
    for got, want in zip(model.get_weights(), script.weights[-1]):
        np.testing.assert_array_equal(got, want)


def test_early_stopping_in_a_real_fit_on_val_loss():
    x, y = regression_data(96)
    model = make_model(optimizer=lm.optimizers.SGD(learning_rate=0.05))
    history = model.fit(x, y, epochs=40, verbose=0, validation_split=0.25,
                        callbacks=[EarlyStopping(patience=0, min_delta=10.0)])
    # min_delta=10 makes every epoch after the first a non-improvement: stops after epoch 1.
    assert history.epoch == [0, 1]


def test_unknown_monitor_raises_naming_the_key_and_the_available_ones():
    x, y = regression_data()
    model = make_model()
    with pytest.raises(ValueError, match=r"'val_loss'.*validation_split.*'loss', 'mean_absolute_error'"):
        model.fit(x, y, epochs=2, verbose=0, callbacks=[EarlyStopping()])
    with pytest.raises(ValueError, match="'val_acc'"):
        drive(ReduceLROnPlateau(monitor="val_acc"), model, [1.0])
    with pytest.raises(ValueError, match="'val_acc'"):
        drive(ModelCheckpoint("unused.lamina", monitor="val_acc", save_best_only=True), model, [1.0])


@pytest.mark.parametrize("factory, arg", [
    (lambda: EarlyStopping(patience=-1), "patience"),
    (lambda: EarlyStopping(patience=1.5), "patience"),
    (lambda: EarlyStopping(mode="up"), "mode"),
    (lambda: EarlyStopping(monitor=""), "monitor"),
    (lambda: EarlyStopping(monitor=3), "monitor"),
    (lambda: EarlyStopping(min_delta=float("nan")), "min_delta"),
    (lambda: EarlyStopping(start_from_epoch=-2), "start_from_epoch"),
    (lambda: EarlyStopping(baseline=float("inf")), "baseline"),
    (lambda: EarlyStopping(restore_best_weights="yes"), "restore_best_weights"),
    (lambda: EarlyStopping(verbose=3), "verbose"),
    (lambda: ModelCheckpoint(None), "filepath"),
    (lambda: ModelCheckpoint("a", save_best_only=1), "save_best_only"),
    (lambda: ModelCheckpoint("a", mode="best"), "mode"),
    (lambda: LearningRateScheduler(0.1), "schedule"),
    (lambda: ReduceLROnPlateau(factor=1.0), "factor"),
    (lambda: ReduceLROnPlateau(factor=0.0), "factor"),
    (lambda: ReduceLROnPlateau(patience=-1), "patience"),
    (lambda: ReduceLROnPlateau(cooldown=-1), "cooldown"),
    (lambda: ReduceLROnPlateau(min_lr=-1e-3), "min_lr"),
    (lambda: CSVLogger(""), "filename"),
    (lambda: CSVLogger("log.csv", separator=";;"), "separator"),
    (lambda: CSVLogger("log.csv", append="no"), "append"),
])
def test_constructor_arguments_are_checked(factory, arg):
    with pytest.raises(ValueError, match=f"{arg}="):
        factory()


# ---------------------------------------------------------------------------------- ModelCheckpoint
def test_model_checkpoint_save_best_only_writes_only_on_improvement(tmp_path):
    x, y = regression_data()
    model = make_model()
    script = Script([3.0, 1.0, 2.0, 0.5, 0.5])
    ckpt = ModelCheckpoint(str(tmp_path / "ckpt-{epoch:02d}-{score:.2f}.lamina"), monitor="score",
                           save_best_only=True)
    model.fit(x, y, epochs=5, verbose=0, callbacks=[script, ckpt])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["ckpt-01-3.00.lamina", "ckpt-02-1.00.lamina", "ckpt-04-0.50.lamina"]
    assert [p.rsplit("/", 1)[-1] for p in ckpt.saved] == names
    best = load_model(tmp_path / "ckpt-04-0.50.lamina")
    for got, want in zip(best.get_weights(), script.weights[3]):
        np.testing.assert_array_equal(got, want)


def test_model_checkpoint_one_path_holds_the_best_epoch(tmp_path):
    x, y = regression_data()
    model = make_model()
    script = Script([0.3, 0.7, 0.9, 0.4], key="val_accuracy")  # mode auto: max
    path = tmp_path / "best.lamina"
    model.fit(x, y, epochs=4, verbose=0, callbacks=[script, ModelCheckpoint(path, monitor="val_accuracy",
                                                                             save_best_only=True)])
    best = load_model(path)
    for got, want in zip(best.get_weights(), script.weights[2]):
        np.testing.assert_array_equal(got, want)
    assert best.epochs_trained == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.lamina"]  # no temp files left


def test_model_checkpoint_every_epoch_and_bad_field(tmp_path):
    x, y = regression_data()
    model = make_model()
    model.fit(x, y, epochs=3, verbose=0, callbacks=[ModelCheckpoint(tmp_path / "e{epoch}-{loss:.1e}.lamina")])
    assert sorted(p.name.split("-")[0] for p in tmp_path.iterdir()) == ["e1", "e2", "e3"]
    with pytest.raises(ValueError, match=r"'val_loss'.*available: epoch, loss, mean_absolute_error"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[ModelCheckpoint(tmp_path / "m-{val_loss}.lamina")])


# ---------------------------------------------------------------------------------- learning rate
def test_learning_rate_scheduler_sets_the_rate_that_training_uses():
    x, y = regression_data(80)
    rates = [0.2, 0.1, 0.05]
    model = make_model(dropout=True)
    sched = LearningRateScheduler(lambda epoch, lr: rates[epoch])
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[sched])
    assert model.optimizer.learning_rate == 0.05
    assert history.history["learning_rate"] == pytest.approx(rates)
    # The same thing by hand: one epoch at a time with the optimizer's rate set beforehand.
    twin = make_model(dropout=True)
    for lr in rates:
        twin.optimizer.learning_rate = lr
        twin.fit(x, y, epochs=1, batch_size=16, verbose=0)
    for got, want in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(got, want)


def test_learning_rate_scheduler_constant_matches_a_model_compiled_with_that_rate():
    x, y = regression_data(80)
    model = make_model(optimizer="adam")
    model.fit(x, y, epochs=2, verbose=0, callbacks=[LearningRateScheduler(lambda epoch: 0.03)])  # 1-arg form
    twin = make_model(optimizer=lm.optimizers.Adam(learning_rate=0.03))
    twin.fit(x, y, epochs=2, verbose=0)
    for got, want in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(got, want)
    other = make_model(optimizer="adam")
    other.fit(x, y, epochs=2, verbose=0)
    assert not np.array_equal(other.get_weights()[0], twin.get_weights()[0])


def test_learning_rate_scheduler_receives_the_current_rate_and_checks_the_result(capsys):
    x, y = regression_data()
    model = make_model(optimizer=lm.optimizers.SGD(learning_rate=0.08))
    seen = []

    def halve(epoch, lr):
        seen.append((epoch, lr))
        return lr / 2

    model.fit(x, y, epochs=3, verbose=0, callbacks=[LearningRateScheduler(halve, verbose=1)])
    assert seen == [(0, 0.08), (1, 0.04), (2, 0.02)]
    assert "Epoch 3: LearningRateScheduler setting learning rate to 0.01" in capsys.readouterr().out
    for bad in (0.0, -1.0, float("nan"), "0.1", None):
        with pytest.raises(ValueError, match="learning rate"):
            model.fit(x, y, epochs=1, verbose=0, callbacks=[LearningRateScheduler(lambda e, lr, b=bad: b)])


def test_reduce_lr_on_plateau_reduces_after_patience_with_cooldown_and_floor():
    model = make_model(optimizer=lm.optimizers.SGD(learning_rate=1.0))
    rlr = ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, cooldown=1, min_lr=0.2)
    rlr.set_model(model)
    rlr.on_train_begin({})
    rates = []
    for epoch in range(9):
        logs = {"val_loss": 1.0}
        rlr.on_epoch_end(epoch, logs)
        rates.append(model.optimizer.learning_rate)
        assert logs["learning_rate"] == rates[-1]
    assert rates == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2, 0.2]


def test_reduce_lr_on_plateau_improvement_resets_the_wait():
    model = make_model(optimizer=lm.optimizers.SGD(learning_rate=1.0))
    rlr = ReduceLROnPlateau(factor=0.1, patience=2, min_delta=0.05)
    rlr.set_model(model)
    rlr.on_train_begin({})
    rates = []
    for epoch, value in enumerate([1.0, 0.9, 0.8, 0.78, 0.7, 0.69, 0.68]):
        rlr.on_epoch_end(epoch, {"val_loss": value})
        rates.append(model.optimizer.learning_rate)
    # 0.78 and 0.69 are within min_delta: no improvement; 0.68 is the second in a row -> reduce.
    assert rates == pytest.approx([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.1])


def test_reduce_lr_on_plateau_in_a_real_fit_changes_the_core_rate():
    x, y = regression_data()
    model = make_model(optimizer=lm.optimizers.SGD(learning_rate=0.1))
    script = Script([1.0, 1.0, 1.0, 1.0], key="val_loss")
    history = model.fit(x, y, epochs=4, verbose=0, callbacks=[script, ReduceLROnPlateau(patience=1, factor=0.5)])
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.025, 0.0125])
    assert model._net.learning_rate == pytest.approx(0.0125)


# ---------------------------------------------------------------------------------- CSVLogger
def read_csv(path, sep=","):
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter=sep))


def test_csv_logger_writes_header_and_one_row_per_epoch(tmp_path):
    x, y = regression_data()
    model = make_model()
    path = tmp_path / "log.csv"
    history = model.fit(x, y, epochs=3, verbose=0, validation_split=0.25, callbacks=[CSVLogger(path)])
    rows = read_csv(path)
    assert rows[0] == ["epoch", "loss", "mean_absolute_error", "val_loss", "val_mean_absolute_error"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"]
    for j, key in enumerate(rows[0][1:], start=1):
        assert [float(r[j]) for r in rows[1:]] == history.history[key]  # exact: repr round-trips


def test_csv_logger_append_and_overwrite_and_separator(tmp_path):
    x, y = regression_data()
    model = make_model()
    path = tmp_path / "log.csv"
    model.fit(x, y, epochs=2, verbose=0, callbacks=[CSVLogger(path, separator=";")])
    model.fit(x, y, epochs=2, verbose=0, callbacks=[CSVLogger(path, separator=";", append=True)])
    rows = read_csv(path, ";")
    assert rows[0] == ["epoch", "loss", "mean_absolute_error"]
    assert len(rows) == 5 and all(len(r) == 3 for r in rows)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[CSVLogger(path, separator=";")])
    assert len(read_csv(path, ";")) == 2  # append=False starts the file afresh
    fresh = tmp_path / "new.csv"
    model.fit(x, y, epochs=1, verbose=0, callbacks=[CSVLogger(fresh, append=True)])
    assert read_csv(fresh)[0][0] == "epoch"  # append to a missing file still writes the header


# ---------------------------------------------------------------------------------- stopping
def test_terminate_on_nan_stops_a_diverging_fit(capsys):
    x, y = regression_data(256)
    model = make_model(optimizer=lm.optimizers.SGD(learning_rate=1e6))
    history = model.fit(x, y, epochs=50, batch_size=8, verbose=0, callbacks=[TerminateOnNaN()])
    assert history.epoch == [0]
    assert math.isnan(history.history["loss"][-1])
    out = capsys.readouterr().out
    assert "invalid loss" in out and "terminating training" in out


def test_terminate_on_nan_checks_the_epoch_logs_too():
    model = make_model()
    cb = TerminateOnNaN()
    cb.set_model(model)
    model.stop_training = False
    cb.on_epoch_end(0, {"loss": 1.0})
    assert not model.stop_training
    cb.on_epoch_end(1, {"loss": float("inf")})
    assert model.stop_training


def test_stop_training_from_a_callback_stops_after_the_current_chunk():
    class StopAtFirstChunk(Callback):
        def on_batch_end(self, batch, logs=None):
            self.batch = batch
            self.model.stop_training = True

    batch_size = 512
    x, y = regression_data(batch_size * 10)
    model = make_model()
    cb = StopAtFirstChunk()
    history = model.fit(x, y, epochs=3, batch_size=batch_size, verbose=0, callbacks=[cb])
    chunk = 2048 // batch_size  # the first chunk fit hands the core
    assert model.optimizer.iterations == chunk == cb.batch + 1
    assert history.epoch == [0]
    assert not math.isnan(history.history["loss"][0])


def test_history_runs_last_so_it_records_what_callbacks_add():
    x, y = regression_data()
    model = make_model()
    history = model.fit(x, y, epochs=2, verbose=0, callbacks=[Script([7.0, 8.0], key="extra")])
    assert history.history["extra"] == [7.0, 8.0]


def test_model_checkpoint_creates_missing_folders_like_keras(tmp_path):
    x, y = regression_data()
    model = make_model()
    ckpt = ModelCheckpoint(str(tmp_path / "runs" / "{epoch:02d}" / "model.lamina"))
    model.fit(x, y, epochs=2, verbose=0, callbacks=[ckpt])
    assert ckpt.saved == [str(tmp_path / "runs" / e / "model.lamina") for e in ("01", "02")]
    load_model(ckpt.saved[-1])


def test_model_checkpoint_missing_monitor_fails_at_the_first_epoch_listing_the_keys(tmp_path):
    x, y = regression_data()
    model = make_model()
    seen = []
    counter = Script([0.0] * 3, key="seen")
    counter.on_epoch_begin = lambda epoch, logs=None: seen.append(epoch)
    ckpt = ModelCheckpoint(str(tmp_path / "m.lamina"), monitor="val_mae", save_best_only=True)
    with pytest.raises(ValueError, match=r"'val_mae'.*validation_split.*available: 'loss', "
                                         r"'mean_absolute_error'"):
        model.fit(x, y, epochs=3, verbose=0, callbacks=[counter, ckpt])
    assert seen == [0] and list(tmp_path.iterdir()) == []
