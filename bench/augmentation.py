"""Cost per batch of each augmentation layer, on Fashion-MNIST-shaped batches (28 x 28 images).

Two views:

1. the layer alone: ``model(x, training=True)`` on a batch, minus the same call through a layer
   that does nothing (``GaussianNoise(0)``), so the call and the output copy cancel out. The
   layers are timed in turn, round after round, and each reports its fastest and its median
   round: on a shared machine the fastest is the steadiest estimate of the cost;
2. inside ``fit``: microseconds per batch added to a 784-512(relu)-10(softmax) MLP trained with
   RMSprop, the augmentation placed first (so it needs no backward); median of the repeats, and
   noisy on a busy machine (it is a difference of two ~2.5 ms figures);
3. between two Dense layers, forward and backward: the layer's share of one full-batch
   ``loss_and_gradient(training=True)`` of Dense(784) -> Reshape(28, 28) -> layer -> Flatten ->
   Dense(10), timed in turn as in view 1.

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
from lamina.layers import Dense, Flatten, GaussianNoise, Input, RandomFlip, RandomRotation, RandomTranslation, RandomZoom, Reshape

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


def layers_alone(x: np.ndarray, repeats: int, calls: int = 100) -> List[Tuple[float, float]]:
    """(fastest, median) microseconds per batch of each LAYERS entry's training forward, the call
    overhead (a GaussianNoise(0) model's) removed; all models are timed in turn each round."""
    models = [lm.Sequential([Input(shape=(28, 28)), layer], seed=0)
              for layer in [GaussianNoise(0.0)] + [make() for _, make in LAYERS]]
    rounds: List[List[float]] = [[] for _ in models]
    for model in models:
        model(x, training=True)  # warm-up
    for _ in range(repeats):
        for model, times in zip(models, rounds):
            started = time.perf_counter()
            for _ in range(calls):
                model(x, training=True)
            times.append((time.perf_counter() - started) / calls * 1e6)
    base_min, base_median = min(rounds[0]), statistics.median(rounds[0])
    return [(min(t) - base_min, statistics.median(t) - base_median) for t in rounds[1:]]


def layers_inside(x: np.ndarray, repeats: int, calls: int = 20) -> List[float]:
    """Fastest-round microseconds per batch each LAYERS entry adds, forward and backward, between
    two Dense layers (against Reshape alone)."""
    flat = x.reshape(len(x), -1).astype(np.float64)
    y = np.zeros((len(x), 10))
    nets = []
    for layer in [None] + [make() for _, make in LAYERS]:
        middle = [layer] if layer is not None else []
        model = lm.Sequential([Input(shape=(784,)), Dense(784), Reshape((28, 28)), *middle, Flatten(), Dense(10)],
                              seed=0, dtype="float32")
        model.compile(optimizer="sgd", loss="mse")
        nets.append(model._net)
    rounds: List[List[float]] = [[] for _ in nets]
    xs = flat.astype(np.float32)
    ys = y.astype(np.float32)
    for net in nets:
        net.loss_and_gradient(xs, ys, True)  # warm-up
    for _ in range(repeats):
        for net, times in zip(nets, rounds):
            started = time.perf_counter()
            for _ in range(calls):
                net.loss_and_gradient(xs, ys, True)
            times.append((time.perf_counter() - started) / calls * 1e6)
    return [min(t) - min(rounds[0]) for t in rounds[1:]]


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
    parser.add_argument("--repeats", type=int, default=9)
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
        print(f"{'layer':36s} {'alone us/batch: min':>20s} {'median':>7s} {'ns/image':>9s} {'fit +us/batch':>14s} "
              f"{'fwd+bwd inside':>15s}")
        inside = layers_inside(x, args.repeats)
        for (name, make), (fastest, median), both in zip(LAYERS, layers_alone(x, args.repeats), inside):
            added = in_fit(make, x_fit, y_fit, args.batch, args.repeats) - base
            print(f"{name:36s} {fastest:20.1f} {median:7.1f} {fastest * 1e3 / args.batch:9.0f} {added:14.1f} {both:15.1f}")


if __name__ == "__main__":
    main()
