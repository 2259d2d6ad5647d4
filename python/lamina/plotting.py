"""Learning curves from a ``History`` (needs matplotlib: ``pip install lamina[plot]``)."""

from __future__ import annotations

import math
from typing import Any, Dict, Iterable, List, Optional, Sequence


def _quantities(history: Dict[str, Sequence[float]]) -> List[str]:
    """Base names (without ``val_``), loss first, then in the order they were logged."""
    names: List[str] = []
    for key in history:
        base = key[4:] if key.startswith("val_") else key
        if base not in names:
            names.append(base)
    if "loss" in names:
        names.remove("loss")
        names.insert(0, "loss")
    return names


def plot_history(history: Any, metrics: Optional[Iterable[str]] = None) -> Any:
    """Plots learning curves and returns the matplotlib ``Figure``.

    ``history`` is what ``fit`` returns (or its ``.history`` dict). One panel per quantity —
    the loss first, then each metric (and e.g. ``learning_rate`` when a callback logged it) —
    with the training curve and, when present, the ``val_`` curve against the epoch number
    (1-based, as the progress display counts). ``metrics`` picks the quantities to draw, by
    name without ``val_`` (e.g. ``["loss", "accuracy"]``).

    >>> fig = model.fit(x, y, validation_split=0.2, epochs=20).plot()   # doctest: +SKIP
    >>> fig.savefig("curves.png")                                        # doctest: +SKIP
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("plot_history needs matplotlib, which is not installed: "
                          "pip install lamina[plot]  (or: pip install matplotlib)") from exc

    if isinstance(history, dict):
        logs, epochs = history, None
    elif isinstance(getattr(history, "history", None), dict):
        logs, epochs = history.history, list(getattr(history, "epoch", []) or []) or None
    else:
        raise TypeError(f"history must be a History (what fit returns) or its .history dict, "
                        f"received {type(history).__name__}")
    available = _quantities(logs)
    if not available or not any(len(v) for v in logs.values()):
        raise ValueError("the history holds no epochs to plot: train with fit(..., epochs >= 1) first")
    if metrics is None:
        names = available
    else:
        if isinstance(metrics, str):
            metrics = [metrics]
        names = []
        for name in metrics:
            base = name[4:] if isinstance(name, str) and name.startswith("val_") else name
            if base not in available:
                raise ValueError(f"metrics: {name!r} is not in the history; available: {', '.join(available)}")
            if base not in names:
                names.append(base)
        if not names:
            raise ValueError("metrics must name at least one quantity, received an empty list")

    cols = min(len(names), 3)
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.8 * cols, 3.6 * rows), squeeze=False,
                             layout="constrained")
    flat = list(axes.ravel())
    for ax, name in zip(flat, names):
        for key, label, style in ((name, "training", "-"), ("val_" + name, "validation", "--")):
            values = logs.get(key)
            if not values:
                continue
            x = [e + 1 for e in epochs] if epochs is not None and len(epochs) == len(values) \
                else list(range(1, len(values) + 1))
            ax.plot(x, [float(v) for v in values], style, marker="o" if len(values) <= 30 else None,
                    markersize=3, label=label)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(True, alpha=0.3)
        ax.legend()
    for ax in flat[len(names):]:
        ax.set_visible(False)
    return fig
