"""Predict samples/s with a BatchNormalization folded into the Dense before it (its inference
affine map runs in the GEMM's tile epilogue) against the same weights kept apart by a
``Dropout(0.0)`` (an identity that stops the fold; the two give the same bits).

Network: 784-512(linear) -> BatchNormalization -> relu -> 10(softmax), float32, random inputs.
Each contender runs in a fresh process of its own, alternating round by round; the report gives
each round's best-of-7 and the ratio of the medians.

    python bench/batch_norm_fold.py [--rounds 5] [--batch 1024] [--rows 10240]

Figures and the machine go in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Dict, List

import numpy as np

CONTENDERS = ("folded", "apart")


def worker(contender: str, batch: int, rows: int) -> None:
    """In its own process: best of 7 predict passes over ``rows`` rows, printed as JSON."""
    import lamina as lm
    from lamina.layers import Activation, BatchNormalization, Dense, Dropout

    between = [Dropout(0.0)] if contender == "apart" else []
    model = lm.Sequential([Dense(512, input_shape=(784,)), *between, BatchNormalization(), Activation("relu"),
                           Dense(10, activation="softmax")], seed=0)
    folds = list(model._net.folded_batch_norms())
    x = np.random.default_rng(0).random((rows, 784), dtype=np.float32)
    model.predict(x, batch_size=batch, verbose=0)
    best = 0.0
    for _ in range(7):
        start = time.perf_counter()
        model.predict(x, batch_size=batch, verbose=0)
        best = max(best, rows / (time.perf_counter() - start))
    print(json.dumps({"contender": contender, "samples_per_s": best, "folded_layers": folds}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--rows", type=int, default=10240)
    parser.add_argument("--worker", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.batch, args.rows)
        return
    rates: Dict[str, List[float]] = {c: [] for c in CONTENDERS}
    for r in range(args.rounds):
        order = CONTENDERS if r % 2 == 0 else CONTENDERS[::-1]
        for contender in order:
            out = subprocess.run([sys.executable, __file__, "--worker", contender, "--batch", str(args.batch),
                                  "--rows", str(args.rows)], check=True, capture_output=True, text=True,
                                 env=dict(os.environ))
            rates[contender].append(json.loads(out.stdout)["samples_per_s"])
    print(f"predict samples/s at batch {args.batch}, {args.rounds} rounds (load {os.getloadavg()[0]:.2f})")
    for contender in CONTENDERS:
        print(f"{contender:>7}: median {statistics.median(rates[contender]):>10,.0f}  rounds "
              + ", ".join(f"{v:,.0f}" for v in rates[contender]))
    print(f"folded / apart: {statistics.median(rates['folded']) / statistics.median(rates['apart']):.3f}")


if __name__ == "__main__":
    main()
