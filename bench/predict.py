"""Predict contenders for the 784-512-10 MLP: lamina, PyTorch (``model.eval()``,
``torch.no_grad()``; float32 and autocast bfloat16) and Keras 3 on JAX.

Batch 1: one call per sample (online inference), so per-call overhead counts.
Batch 1024: the test set in chunks of 1024. All return softmax probabilities as a numpy array.

``PREDICTORS[name](x, batch)`` builds and warms up one contender and returns a callable that
times one pass over the rows of ``x`` and returns the seconds per pass.
"""

from __future__ import annotations

from typing import Callable, Dict

import numpy as np
from common import timed_per_call
from train import keras_model, lamina_model, torch_model

SAMPLES_FULL = {1: 3000, 1024: 10000}
SAMPLES_QUICK = {1: 500, 1024: 10000}
BF16_BATCHES = (1024,)
MIN_SECONDS = 0.3  # each measurement repeats the pass over the samples for at least this long


def contenders_for(batch: int) -> tuple:
    return ("lamina", "torch", "keras") + (("lamina_bf16", "torch_bf16") if batch in BF16_BATCHES else ())


def _timed(work: Callable[[], object]) -> Callable[[], float]:
    work()  # warm-up (and, for Keras, the compilation of each batch shape met)
    work()
    return lambda: timed_per_call(work, MIN_SECONDS)


def lamina_predictor(x: np.ndarray, batch: int, dtype: str = "float32") -> Callable[[], float]:
    model = lamina_model(dtype=dtype)
    model.build((None, x.shape[1]))
    if batch == 1:
        rows = [x[i:i + 1] for i in range(len(x))]
        return _timed(lambda: [model.predict(r, batch_size=1) for r in rows])
    return _timed(lambda: model.predict(x, batch_size=batch))


def lamina_bf16_predictor(x: np.ndarray, batch: int) -> Callable[[], float]:
    return lamina_predictor(x, batch, dtype="mixed_bfloat16")


def keras_predictor(x: np.ndarray, batch: int) -> Callable[[], float]:
    """``model.predict`` at 1024; at batch 1 ``predict_on_batch``, Keras's call for one small
    input (``predict`` builds a data adapter per call and is slower per sample)."""
    model = keras_model()
    if batch == 1:
        rows = [x[i:i + 1] for i in range(len(x))]
        return _timed(lambda: [np.asarray(model.predict_on_batch(r)) for r in rows])
    return _timed(lambda: model.predict(x, batch_size=batch, verbose=0))


def _torch_predictor(x: np.ndarray, batch: int, bf16: bool) -> Callable[[], float]:
    import contextlib

    import torch
    model = torch_model()
    model.eval()
    xt = torch.from_numpy(x)

    def probs(chunk: "torch.Tensor") -> "torch.Tensor":
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
            logits = model(chunk)
        return torch.softmax(logits.float(), dim=1)

    def work() -> None:
        with torch.no_grad():
            if batch == 1:
                for i in range(len(xt)):
                    probs(xt[i:i + 1]).numpy()
            else:
                torch.cat([probs(xt[i:i + batch]) for i in range(0, len(xt), batch)]).numpy()

    return _timed(work)


def torch_predictor(x: np.ndarray, batch: int) -> Callable[[], float]:
    return _torch_predictor(x, batch, bf16=False)


def torch_bf16_predictor(x: np.ndarray, batch: int) -> Callable[[], float]:
    return _torch_predictor(x, batch, bf16=True)


PREDICTORS: Dict[str, Callable[[np.ndarray, int], Callable[[], float]]] = {
    "lamina": lamina_predictor, "lamina_bf16": lamina_bf16_predictor, "torch": torch_predictor, "torch_bf16": torch_bf16_predictor,
    "keras": keras_predictor,
}
