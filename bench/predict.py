"""Predict samples/s of the 784-512-10 MLP, lamina vs PyTorch (``model.eval()``, ``torch.no_grad()``).

Batch 1: one call per sample (online inference), so per-call overhead counts.
Batch 1024: the test set in chunks of 1024 - ``model.predict(x, batch_size=1024)`` for lamina,
a loop over 1024-row slices for torch. Both return softmax probabilities as a numpy array.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List

import numpy as np
from common import Data, alternate, median, ratio, timed_per_call
from train import lamina_model, torch_model

SAMPLES_FULL = {1: 3000, 1024: 10000}
SAMPLES_QUICK = {1: 500, 1024: 10000}
MIN_SECONDS = 0.3  # each measurement repeats the pass over the samples for at least this long


def lamina_predictor(x: np.ndarray, batch: int) -> Callable[[], float]:
    model = lamina_model()
    model.build((None, x.shape[1]))
    if batch == 1:
        rows = [x[i:i + 1] for i in range(len(x))]

        def work() -> None:
            for r in rows:
                model.predict(r, batch_size=1)
    else:
        def work() -> None:
            model.predict(x, batch_size=batch)
    work()  # warm-up
    return lambda: timed_per_call(work, MIN_SECONDS)


def torch_predictor(x: np.ndarray, batch: int) -> Callable[[], float]:
    import torch
    model = torch_model()
    model.eval()
    xt = torch.from_numpy(x)

    if batch == 1:
        rows = [xt[i:i + 1] for i in range(len(xt))]

        def work() -> None:
            with torch.no_grad():
                for r in rows:
                    torch.softmax(model(r), dim=1).numpy()
    else:
        def work() -> None:
            with torch.no_grad():
                outs = [torch.softmax(model(xt[i:i + batch]), dim=1) for i in range(0, len(xt), batch)]
                torch.cat(outs).numpy()

    work()
    return lambda: timed_per_call(work, MIN_SECONDS)


def run(data: Data, repeats: int, quick: bool, have_torch: bool) -> List[Dict[str, Any]]:
    samples = SAMPLES_QUICK if quick else SAMPLES_FULL
    rows = []
    for batch, n in samples.items():
        x = np.ascontiguousarray(data.x_test[:n])
        contenders = {"lamina": lamina_predictor(x, batch)}
        if have_torch:
            contenders["torch"] = torch_predictor(x, batch)
        times = alternate(contenders, repeats)
        rate: Dict[str, Any] = {name: n / median(t) for name, t in times.items()}
        rows.append({"batch": batch, "samples": n, "lamina_sps": rate["lamina"],
                     "torch_sps": rate.get("torch"), "ratio_vs_torch": ratio(rate["lamina"], rate.get("torch")),
                     "seconds_all": times})
    return rows
