"""Elementwise activation speed: lamina's core kernels beside numpy's ufuncs, each in its own process.

    python bench/activations.py                  # lamina (the one Python imports) and numpy
    python bench/activations.py --tree <other>   # lamina from another built checkout as well (before/after)

Forward pass of each activation over a 4096 x 512 float32 array (8 MB, the size of a wide layer's
activations at a large batch), 2 threads for lamina; best of 5 rounds of 10 calls, in Gelem/s.
numpy's column is the natural numpy expression for the same function (several passes where numpy
has no single ufunc), for scale, not a contender lamina trains with.
"""

import argparse
import json
import os
import subprocess
import sys
import time

NAMES = ["relu", "tanh", "sigmoid", "elu", "softplus", "gelu"]
ROWS, COLS, ROUNDS, CALLS = 4096, 512, 5, 10


def _rate(fn, size):
    fn()
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(CALLS):
            fn()
        best = min(best, (time.perf_counter() - start) / CALLS)
    return size / best / 1e9


def _numpy_forms(np, z, out):
    def sigmoid():
        np.negative(z, out=out)
        np.exp(out, out=out)
        np.add(out, 1.0, out=out)
        np.reciprocal(out, out=out)

    return {
        "relu": lambda: np.maximum(z, 0.0, out=out),
        "tanh": lambda: np.tanh(z, out=out),
        "sigmoid": sigmoid,
        "elu": lambda: np.where(z > 0, z, np.expm1(z)),
        "softplus": lambda: np.logaddexp(np.float32(0.0), z, out=out),
    }


def worker(contender, tree):
    if tree:
        sys.path.insert(0, os.path.join(tree, "python"))
    import numpy as np

    z = (np.random.default_rng(0).standard_normal((ROWS, COLS)) * 2).astype(np.float32)
    rates = {}
    if contender == "numpy":
        with np.errstate(over="ignore"):
            for name, fn in _numpy_forms(np, z, np.empty_like(z)).items():
                rates[name] = _rate(fn, z.size)
    else:
        import lamina as lm
        from lamina import _core

        lm.set_num_threads(2)
        for name in NAMES:
            act = _core.Activation[name]
            rates[name] = _rate(lambda act=act: _core.activation_forward(act, z), z.size)
    print(json.dumps(rates))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", help="another built checkout whose lamina to run beside this one's")
    parser.add_argument("--worker", choices=["lamina", "numpy"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.tree)
        return
    runs = [("lamina", None), ("numpy", None)] + ([("lamina (--tree)", args.tree)] if args.tree else [])
    columns = {}
    for label, tree in runs:
        command = [sys.executable, __file__, "--worker", label.split()[0]] + (["--tree", tree] if tree else [])
        line = subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        columns[label] = json.loads(line)
    print("Gelem/s, float32 4096x512 forward; " + ", ".join(columns))
    print(f"{'activation':10s}" + "".join(f"{label:>18s}" for label in columns))
    for name in NAMES:
        cells = "".join(f"{columns[label][name]:18.2f}" if name in columns[label] else f"{'-':>18s}"
                        for label in columns)
        print(f"{name:10s}{cells}")


if __name__ == "__main__":
    main()
