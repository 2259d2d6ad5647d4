"""Training samples/s of the 784-512(relu)-10(softmax) MLP, RMSprop(lr=1e-3), categorical
cross-entropy: lamina vs PyTorch CPU at several batch sizes, and scikit-learn's MLPClassifier
(Adam) at batch 128.

Each repeat trains a fixed number of samples (one pass over the first ``n`` training rows, in
shuffled minibatches) on a model that keeps training across repeats; models are built and
warmed up before timing. The PyTorch side is the plain idiomatic loop: ``torch.randperm``,
index slicing, ``nn.Sequential(Linear, ReLU, Linear)``, ``CrossEntropyLoss`` on logits and
``RMSprop(lr=1e-3, alpha=0.9, eps=1e-7)`` (Keras's rho and epsilon).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

import numpy as np
from common import N_CLASSES, N_FEATURES, N_HIDDEN, Data, alternate, median, ratio, timed_per_call

BATCH_SIZES = (1, 10, 32, 128, 512)
SKLEARN_BATCH = 128

MIN_SECONDS = 0.3  # a measurement repeats its pass until at least this long (common.timed_per_call)
BUDGET_FULL, BUDGET_QUICK = 40.0, 8.0  # seconds per batch size before repeats are cut short

# Samples trained per timed repeat, by batch size.
SAMPLES_FULL = {1: 1000, 10: 8000, 32: 20000, 128: 60000, 512: 60000}
SAMPLES_QUICK = {1: 150, 10: 1000, 32: 3000, 128: 8192, 512: 8192}


# ----------------------------------------------------------------------------- lamina
def lamina_model(seed: int = 0) -> Any:
    import lamina as lm
    model = lm.Sequential([
        lm.layers.Dense(N_HIDDEN, activation="relu", input_shape=(N_FEATURES,)),
        lm.layers.Dense(N_CLASSES, activation="softmax"),
    ], seed=seed)
    model.compile(optimizer=lm.optimizers.RMSprop(learning_rate=1e-3), loss="categorical_crossentropy")
    return model


def lamina_trainer(data: Data, batch: int, n: int) -> Callable[[], float]:
    model = lamina_model()
    x, y = data.x_train[:n], data.y_train_onehot[:n]
    model.fit(x[: max(3 * batch, 64)], y[: max(3 * batch, 64)], batch_size=batch, epochs=1, verbose=0)  # warm-up
    return lambda: timed_per_call(lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0), MIN_SECONDS)


# ----------------------------------------------------------------------------- torch
def torch_model(seed: int = 0) -> Any:
    import torch
    from torch import nn
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(N_FEATURES, N_HIDDEN), nn.ReLU(), nn.Linear(N_HIDDEN, N_CLASSES))


def torch_epoch(model: Any, opt: Any, loss_fn: Any, x: Any, y: Any, batch: int) -> None:
    """One pass over (x, y) in shuffled minibatches, the way a PyTorch tutorial writes it."""
    import torch
    n = x.shape[0]
    perm = torch.randperm(n)
    for start in range(0, n, batch):
        idx = perm[start:start + batch]
        xb, yb = x[idx], y[idx]
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()


def torch_trainer(data: Data, batch: int, n: int) -> Callable[[], float]:
    import torch
    model = torch_model()
    model.train()
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()
    x, y = torch.from_numpy(data.x_train[:n]), torch.from_numpy(data.y_train[:n])
    w = max(3 * batch, 64)
    torch_epoch(model, opt, loss_fn, x[:w], y[:w], batch)  # warm-up
    return lambda: timed_per_call(lambda: torch_epoch(model, opt, loss_fn, x, y, batch), MIN_SECONDS)


# ----------------------------------------------------------------------------- scikit-learn
def sklearn_trainer(data: Data, batch: int, n: int) -> Callable[[], float]:
    from sklearn.neural_network import MLPClassifier
    clf = MLPClassifier(hidden_layer_sizes=(N_HIDDEN,), solver="adam", batch_size=batch,
                        learning_rate_init=1e-3, shuffle=True, random_state=0)
    x, y = data.x_train[:n], data.y_train[:n]
    classes = np.arange(N_CLASSES)
    clf.partial_fit(x[: 3 * batch], y[: 3 * batch], classes=classes)  # warm-up
    # partial_fit is one pass over the data given, in shuffled minibatches of batch_size.
    return lambda: timed_per_call(lambda: clf.partial_fit(x, y), MIN_SECONDS)


# ----------------------------------------------------------------------------- driver
def run(data: Data, repeats: int, quick: bool, skipped: List[str]) -> List[Dict[str, Any]]:
    samples = SAMPLES_QUICK if quick else SAMPLES_FULL
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
        skipped.append("PyTorch not installed: training/predict/memory comparisons with torch skipped "
                       "(pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu)")
    try:
        import sklearn  # noqa: F401
        have_sklearn = True
    except ImportError:
        have_sklearn = False
        skipped.append("scikit-learn not installed: MLPClassifier row skipped (pip install scikit-learn)")

    rows = []
    for batch in BATCH_SIZES:
        n = samples[batch]
        contenders: Dict[str, Callable[[], float]] = {"lamina": lamina_trainer(data, batch, n)}
        if have_torch:
            contenders["torch"] = torch_trainer(data, batch, n)
        if have_sklearn and batch == SKLEARN_BATCH:
            contenders["sklearn"] = sklearn_trainer(data, batch, n)
        # ~3x an idle machine's time for all rounds of this batch size: a busy machine cuts repeats short
        times = alternate(contenders, repeats, budget_seconds=BUDGET_QUICK if quick else BUDGET_FULL)
        rate: Dict[str, Optional[float]] = {name: n / median(t) for name, t in times.items()}
        rows.append({
            "batch": batch, "samples_per_repeat": n,
            "lamina_sps": rate["lamina"], "torch_sps": rate.get("torch"), "sklearn_sps": rate.get("sklearn"),
            "ratio_vs_torch": ratio(rate["lamina"], rate.get("torch")),
            "ratio_vs_sklearn": ratio(rate["lamina"], rate.get("sklearn")),
            "repeats": len(times["lamina"]), "seconds_all": times,
        })
    return rows
