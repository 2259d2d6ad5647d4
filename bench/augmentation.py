"""Cost per batch of each augmentation layer, on Fashion-MNIST-shaped batches (28 x 28 images).

Two views, each the median of several repeats:

1. the layer alone: ``model(x, training=True)`` on a batch, minus the same call through a layer
   that does nothing (``GaussianNoise(0)``), so the call and the output copy cancel out;
2. inside ``fit``: microseconds per batch added to a 784-512(relu)-10(softmax) MLP trained with
   RMSprop, the augmentation placed first (so it needs no backward).

    python bench/augmentation.py                  # batch 128, threads 1 and 2
    python bench/augmentation.py --batch 32 --threads 2 --repeats 7

Figures and the machine they came from go in bench/RESULTS.md; the machine is shared, so quote
ranges over runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Callable, List, Tuple

import numpy as np

import lamina as lm
from lamina.layers import (Dense, Flatten, GaussianNoise, Input, RandomFlip, RandomRotation, RandomTranslation,
                           RandomZoom)

LAYERS: List[Tuple[str, Callable[[], Any]]] = [
    ("RandomFlip('horizontal')", lambda: RandomFlip("horizontal")),
    ("RandomFlip()", lambda: RandomFlip()),
    ("RandomTranslation(0.1, 0.1)", lambda: RandomTranslation(0.1, 0.1)),
    ("RandomTranslation(.., 'constant')", lambda: RandomTranslation(0.1, 0.1, fill_mode="constant")),
    ("RandomRotation(0.05)", lambda: RandomRotation(0.05)),
    ("RandomZoom(0.1)", lambda: RandomZoom(0.1)),
    ("RandomZoom(0.1, 'nearest' interp.)", lambda: RandomZoom(0.1, interpolation="nearest")),
    ("GaussianNoise(0.1)", lambda: GaussianNoise(0.1)),
]


def _median_seconds(run: Callable[[], Any], calls: int, repeats: int) -> float:
    run()  # warm-up: workspaces reach the batch size
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            run()
        times.append((time.perf_counter() - started) / calls)
    return statistics.median(times)


def layer_alone(make: Callable[[], Any], x: np.ndarray, repeats: int) -> float:
    """Microseconds per batch of the layer's training forward, the call overhead removed."""
    def seconds(layer: Any) -> float:
        model = lm.Sequential([Input(shape=(28, 28)), layer], seed=0)
        return _median_seconds(lambda: model(x, training=True), calls=200, repeats=repeats)

    return (seconds(make()) - seconds(GaussianNoise(0.0))) * 1e6


def in_fit(make: Any, x: np.ndarray, y: np.ndarray, batch: int, repeats: int) -> float:
    """Microseconds per batch of one fit epoch over x (make=None: without augmentation)."""
    layers = [Input(shape=(28, 28))] + ([make()] if make else []) + [
        Flatten(), Dense(512, activation="relu"), Dense(10, activation="softmax")]
    model = lm.Sequential(layers, seed=0)
    model.compile(optimizer=lm.optimizers.RMSprop(learning_rate=1e-3), loss="sparse_categorical_crossentropy")
    steps = -(-len(x) // batch)
    return _median_seconds(lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0), 1, repeats) / steps * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--fit-rows", type=int, default=8192, help="rows per fit epoch (view 2)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.random((args.batch, 28, 28), dtype=np.float32)
    x_fit = rng.random((args.fit_rows, 28, 28), dtype=np.float32)
    y_fit = rng.integers(0, 10, args.fit_rows)
    print(f"lamina {lm.__version__}, batch {args.batch} of 28x28 float32, median of {args.repeats}")
    for threads in (int(t) for t in args.threads.split(",")):
        lm.set_num_threads(threads)
        base = in_fit(None, x_fit, y_fit, args.batch, args.repeats)
        print(f"\nthreads={threads}   (fit without augmentation: {base:.0f} us per batch)")
        print(f"{'layer':36s} {'alone us/batch':>15s} {'ns/image':>9s} {'fit +us/batch':>14s}")
        for name, make in LAYERS:
            alone = layer_alone(make, x, args.repeats)
            added = in_fit(make, x_fit, y_fit, args.batch, args.repeats) - base
            print(f"{name:36s} {alone:15.1f} {alone * 1e3 / args.batch:9.0f} {added:14.1f}")


if __name__ == "__main__":
    main()
