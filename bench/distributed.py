"""Data-parallel scaling, measured honestly: at the same global batch and epochs, one process
with 2 threads, one process with 1 thread, and 2 MPI ranks with 1 thread each (batch per rank =
global batch / 2). Reports the time per epoch and, for the ranks, the allreduce's share of it.

    python bench/distributed.py            # batch 32 / 256 / 2048 x about 10k / 100k / 1M parameters
    python bench/distributed.py --quick    # fewer rows, one timed epoch

Each setting runs in its own fresh process (``--worker``), on random float32 data (the shapes
matter, not the values), a 784-style MLP features-hidden(relu)-10(softmax) trained with Adam.
On a 2-core machine this shows correctness and overhead, not speed-up: two ranks share the
two cores one process with 2 threads would use. bench/README.md models N machines.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any, Dict, List

import numpy as np

import lamina as lm

# name -> (features, hidden units, rows per epoch); parameters = features * hidden + hidden * 11 + 10
MODELS = {"10k": (64, 128, 65536), "100k": (256, 384, 16384), "1M": (784, 1250, 4096)}
BATCHES = (32, 256, 2048)
SETUPS = (("1 process x 2 threads", 1, 2), ("1 process x 1 thread", 1, 1), ("2 ranks x 1 thread", 2, 1))


class EpochClock(lm.callbacks.Callback):
    """Each epoch's wall time and this rank's share of it in the allreduce."""

    def __init__(self, ctx: Any) -> None:
        super().__init__()
        self.ctx = ctx
        self.seconds: List[float] = []
        self.shares: List[float] = []
        self.started = self.reduced = 0.0

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.started = time.perf_counter()
        self.reduced = self.ctx.allreduce_seconds if self.ctx is not None else 0.0

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        seconds = time.perf_counter() - self.started
        self.seconds.append(seconds)
        if self.ctx is not None:
            self.shares.append((self.ctx.allreduce_seconds - self.reduced) / seconds)


def worker(args: argparse.Namespace) -> None:
    """One setting: trains, then prints one JSON line (rank 0) with the timed epochs."""
    ctx = lm.distributed.init() if args.ranks > 1 else None
    lm.set_num_threads(args.threads)
    features, hidden, rows = MODELS[args.model]
    rows = rows // 4 if args.quick else rows
    rng = np.random.default_rng(0)
    x = rng.random((rows, features), dtype=np.float32)
    y = rng.integers(0, 10, rows)
    if ctx is not None:
        x, y = ctx.shard(x, y)
    model = lm.Sequential([lm.layers.Dense(hidden, activation="relu", input_shape=(features,)),
                           lm.layers.Dense(10, activation="softmax")], seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    batch = args.batch // args.ranks
    epochs = 2 if args.quick else 4  # the first warms up (workspaces, caches) and is not reported
    clock = EpochClock(ctx)
    model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, callbacks=[clock], distributed=ctx)
    times, shares = clock.seconds[1:], clock.shares[1:]
    if ctx is not None:  # the slowest rank's share: the others wait for it inside the allreduce
        shares = list(np.max(ctx.comm.allgather(shares), axis=0))
    if ctx is None or ctx.is_root:
        print(json.dumps({"params": model.count_params(), "rows": rows, "epoch_seconds": min(times),
                          "allreduce_share": (float(np.median(shares)) if shares else None)}))


def run_setting(args: argparse.Namespace, model: str, batch: int, ranks: int, threads: int) -> Dict[str, Any]:
    command = [sys.executable, __file__, "--worker", "--model", model, "--batch", str(batch),
               "--ranks", str(ranks), "--threads", str(threads)] + (["--quick"] if args.quick else [])
    if ranks > 1:
        command = [lm.distributed.launcher(), "-n", str(ranks)] + command
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", choices=sorted(MODELS), default="10k")
    parser.add_argument("--batch", type=int, default=256, help="global batch")
    parser.add_argument("--ranks", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    sys.path.insert(0, os.path.dirname(__file__))
    from common import cpu_model

    cpu, cores = cpu_model()
    print(f"CPU: {cpu} ({cores} cores); load average at start {os.getloadavg()[0]:.2f}")
    print(f"{'params':>8} {'batch':>6}  " + "  ".join(f"{name:>22}" for name, _, _ in SETUPS) + "  allreduce share")
    rows: List[Dict[str, Any]] = []
    for model in MODELS:
        for batch in BATCHES:
            results = [run_setting(args, model, batch, ranks, threads) for _, ranks, threads in SETUPS]
            rows.append({"model": model, "batch": batch, "results": results})
            cells = "  ".join(f"{r['epoch_seconds'] * 1e3:>19.1f} ms" for r in results)
            print(f"{results[0]['params']:>8,} {batch:>6}  {cells}  {results[-1]['allreduce_share']:>14.0%}",
                  flush=True)
    print(f"load average at end {os.getloadavg()[0]:.2f}; time per epoch of {rows[0]['results'][0]['rows']:,} "
          f"(10k) / {rows[3]['results'][0]['rows']:,} (100k) / {rows[6]['results'][0]['rows']:,} (1M) rows")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
