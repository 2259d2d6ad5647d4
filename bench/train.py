"""Training contenders for the 784-512(relu)-10(softmax) MLP, RMSprop(lr=1e-3), categorical
cross-entropy: lamina, PyTorch (float32 and autocast bfloat16), Keras 3 on JAX, and
scikit-learn's MLPClassifier (Adam) at batch 128.

``TRAINERS[name](data, batch, n)`` builds and warms up one contender and returns a callable that
times one pass over the first ``n`` training rows in shuffled minibatches of ``batch`` and
returns the seconds per pass. The model keeps training across passes. Each is imported and run
in its own worker process (worker.py), never beside another contender.
"""

from __future__ import annotations

from typing import Any, Callable, Dict

import numpy as np
from common import N_CLASSES, N_FEATURES, N_HIDDEN, Data, timed_per_call

BATCH_SIZES = (1, 10, 32, 128, 512)
SKLEARN_BATCHES = (128,)
BF16_BATCHES = (32, 128)  # lamina's mixed_bfloat16 and torch's autocast bf16, beside float32

MIN_SECONDS = 0.3  # a measurement repeats its pass until at least this long (common.timed_per_call)

# Samples trained per timed pass, by batch size, rounded down to whole batches (samples_for) so
# no contender meets a short last batch (a new shape for a jit-compiled step).
SAMPLES_FULL = {1: 1000, 10: 8000, 32: 20000, 128: 60000, 512: 60000}
SAMPLES_QUICK = {1: 150, 10: 1000, 32: 3000, 128: 8192, 512: 8192}


def samples_for(batch: int, quick: bool) -> int:
    n = (SAMPLES_QUICK if quick else SAMPLES_FULL)[batch]
    return n - n % batch


def contenders_for(batch: int) -> tuple:
    """Names of the contenders measured at this batch size, lamina first."""
    names = ["lamina", "torch", "keras"]
    if batch in BF16_BATCHES:
        names += ["lamina_bf16", "torch_bf16"]
    if batch in SKLEARN_BATCHES:
        names.append("sklearn")
    return tuple(names)


def _warmup_rows(batch: int) -> int:
    """Whole batches, at least three and about 64 rows."""
    return max(3, 64 // batch) * batch


# ----------------------------------------------------------------------------- lamina
def lamina_model(seed: int = 0, dtype: str = "float32") -> Any:
    import lamina as lm
    model = lm.Sequential([
        lm.layers.Dense(N_HIDDEN, activation="relu", input_shape=(N_FEATURES,)),
        lm.layers.Dense(N_CLASSES, activation="softmax"),
    ], seed=seed, dtype=dtype)
    model.compile(optimizer=lm.optimizers.RMSprop(learning_rate=1e-3), loss="categorical_crossentropy")
    return model


def _fit_timer(model: Any, data: Data, batch: int, n: int, warmups: int) -> Callable[[], float]:
    """Times ``model.fit(x[:n], onehot[:n], batch_size=batch, epochs=1, verbose=0)``, the call the
    seed makes, after ``warmups`` fits on a few batches."""
    x, y = data.x_train[:n], data.y_train_onehot[:n]
    w = _warmup_rows(batch)
    for _ in range(warmups):
        model.fit(x[:w], y[:w], batch_size=batch, epochs=1, verbose=0)
    return lambda: timed_per_call(lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0), MIN_SECONDS)


def lamina_trainer(data: Data, batch: int, n: int) -> Callable[[], float]:
    return _fit_timer(lamina_model(), data, batch, n, warmups=1)


def lamina_bf16_trainer(data: Data, batch: int, n: int) -> Callable[[], float]:
    """The same model with ``dtype="mixed_bfloat16"`` (bfloat16 Dense products)."""
    return _fit_timer(lamina_model(dtype="mixed_bfloat16"), data, batch, n, warmups=1)


# ----------------------------------------------------------------------------- keras on jax
def keras_model(seed: int = 0) -> Any:
    """The seed's model, verbatim in Keras 3 (KERAS_BACKEND=jax is set by worker.py)."""
    import keras
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input(shape=(N_FEATURES,)),
        keras.layers.Dense(N_HIDDEN, activation="relu"),
        keras.layers.Dense(N_CLASSES, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=1e-3), loss="categorical_crossentropy")
    return model


def keras_trainer(data: Data, batch: int, n: int) -> Callable[[], float]:
    # The first fit traces and compiles the step; the second takes the compiled path once more,
    # so the timed passes see neither compilation nor first-call dispatch setup.
    return _fit_timer(keras_model(), data, batch, n, warmups=2)


# ----------------------------------------------------------------------------- torch
def torch_model(seed: int = 0) -> Any:
    import torch
    from torch import nn
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(N_FEATURES, N_HIDDEN), nn.ReLU(), nn.Linear(N_HIDDEN, N_CLASSES))


def torch_epoch(model: Any, opt: Any, loss_fn: Any, x: Any, y: Any, batch: int, bf16: bool = False) -> None:
    """One pass over (x, y) in shuffled minibatches, the way a PyTorch tutorial writes it;
    with ``bf16`` the forward pass and loss run under ``torch.autocast("cpu", torch.bfloat16)``
    (the backward pass follows the forward's dtypes; no gradient scaler is needed for bf16)."""
    import contextlib

    import torch
    n = x.shape[0]
    perm = torch.randperm(n)
    for start in range(0, n, batch):
        idx = perm[start:start + batch]
        xb, yb = x[idx], y[idx]
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
            loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()


def _torch_trainer(data: Data, batch: int, n: int, bf16: bool) -> Callable[[], float]:
    import torch
    model = torch_model()
    model.train()
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)  # Keras's rho and epsilon
    loss_fn = torch.nn.CrossEntropyLoss()  # on logits: softmax + cross-entropy fused
    x, y = torch.from_numpy(data.x_train[:n]), torch.from_numpy(data.y_train[:n])
    w = _warmup_rows(batch)
    torch_epoch(model, opt, loss_fn, x[:w], y[:w], batch, bf16)
    return lambda: timed_per_call(lambda: torch_epoch(model, opt, loss_fn, x, y, batch, bf16), MIN_SECONDS)


def torch_trainer(data: Data, batch: int, n: int) -> Callable[[], float]:
    return _torch_trainer(data, batch, n, bf16=False)


def torch_bf16_trainer(data: Data, batch: int, n: int) -> Callable[[], float]:
    return _torch_trainer(data, batch, n, bf16=True)


# ----------------------------------------------------------------------------- scikit-learn
def sklearn_trainer(data: Data, batch: int, n: int) -> Callable[[], float]:
    from sklearn.neural_network import MLPClassifier
    clf = MLPClassifier(hidden_layer_sizes=(N_HIDDEN,), solver="adam", batch_size=batch,
                        learning_rate_init=1e-3, shuffle=True, random_state=0)
    x, y = data.x_train[:n], data.y_train[:n]
    clf.partial_fit(x[: 3 * batch], y[: 3 * batch], classes=np.arange(N_CLASSES))  # warm-up
    # partial_fit is one pass over the data given, in shuffled minibatches of batch_size.
    return lambda: timed_per_call(lambda: clf.partial_fit(x, y), MIN_SECONDS)


TRAINERS: Dict[str, Callable[[Data, int, int], Callable[[], float]]] = {
    "lamina": lamina_trainer, "lamina_bf16": lamina_bf16_trainer, "torch": torch_trainer, "torch_bf16": torch_bf16_trainer,
    "keras": keras_trainer, "sklearn": sklearn_trainer,
}
