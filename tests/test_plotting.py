"""plot_history: one panel per quantity, training and validation curves against the epoch."""

import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

import lamina as lm
from lamina.callbacks import History
from lamina.plotting import plot_history


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def curves(ax):
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in ax.get_lines()}


def fitted_history(epochs=3, validation=True, **fit_kwargs):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    model = lm.Sequential([lm.layers.Dense(6, activation="relu", input_shape=(4,)),
                           lm.layers.Dense(1, activation="sigmoid")], seed=0)
    model.compile("adam", "binary_crossentropy", metrics=["accuracy", "precision"])
    return model.fit(x, y, epochs=epochs, verbose=0, validation_split=0.25 if validation else 0.0, **fit_kwargs)


def test_one_panel_per_quantity_loss_first_with_training_and_validation():
    history = fitted_history()
    fig = history.plot()
    assert isinstance(fig, matplotlib.figure.Figure)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["loss", "accuracy", "precision"]
    for ax in axes:
        name = ax.get_title()
        lines = curves(ax)
        assert set(lines) == {"training", "validation"}
        assert lines["training"] == ([1, 2, 3], history.history[name])
        assert lines["validation"] == ([1, 2, 3], history.history["val_" + name])
        assert ax.get_xlabel() == "epoch"


def test_without_validation_and_selected_metrics():
    history = fitted_history(validation=False)
    fig = plot_history(history, metrics=["accuracy"])
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["accuracy"]
    assert set(curves(axes[0])) == {"training"}
    fig = plot_history(history.history, metrics=["val_loss", "loss"])  # a plain dict; val_ names map to panels
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["loss"]


def test_x_axis_is_the_epoch_number_after_initial_epoch():
    history = History()
    history.on_train_begin()
    for epoch, (loss, val) in enumerate([(1.0, 1.5), (0.5, 0.9)], start=5):
        history.on_epoch_end(epoch, {"loss": loss, "val_loss": val, "learning_rate": 0.1})
    fig = plot_history(history)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["loss", "learning_rate"]
    assert curves(axes[0])["training"] == ([6, 7], [1.0, 0.5])
    assert curves(axes[0])["validation"] == ([6, 7], [1.5, 0.9])


def test_many_quantities_wrap_into_rows():
    logs = {name: [1.0, 2.0] for name in ["loss", "a", "b", "c", "d"]}
    fig = plot_history(logs)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 5 and len(fig.axes) == 6  # a 2 x 3 grid, the spare panel hidden


def test_errors():
    history = fitted_history(epochs=1)
    with pytest.raises(ValueError, match=r"'recall' is not in the history; available: loss, accuracy, precision"):
        plot_history(history, metrics=["recall"])
    with pytest.raises(ValueError, match="no epochs"):
        plot_history(History())
    with pytest.raises(TypeError, match="History"):
        plot_history([1.0, 2.0])


def test_missing_matplotlib_gives_an_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install lamina\[plot\]"):
        plot_history({"loss": [1.0]})
