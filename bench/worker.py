"""One contender's measurements, in a process of its own.

    python bench/worker.py CONTENDER PART --data DIR [--threads N] [--quick] (--batch B | --case DTYPE:LABEL)
                           [--rounds R] [--json-out PATH]
    python bench/worker.py CONTENDER PART --data DIR [--threads N] [--quick] --serve

CONTENDER is lamina, numpy, torch, torch_bf16, keras or sklearn; PART is train, predict or gemm.
DIR holds the arrays run.py wrote (common.Data.save), so a peer's process never imports lamina.
The first form measures one thing R times and writes JSON; ``--serve`` (used by run.py) keeps
the process, and its warmed-up models, alive and answers JSON lines on stdin, so run.py can
alternate contenders round by round without paying their start-up (Keras/JAX: seconds) again:

    {"prepare": {"batch": 32}}  -> {"ok": true, "info": {...}}   build and warm up
    {"run": true}               -> {"value": 12345.6}            samples/s, or GFLOP/s for gemm

Replies go to the original stdout; anything a library prints goes to stderr.
The thread count is set before the contender is imported (see setup_threads).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import traceback
from typing import Any, Callable, Dict, Optional, TextIO

HERE = os.path.dirname(os.path.abspath(__file__))
CONTENDERS = ("lamina", "lamina_bf16", "numpy", "torch", "torch_bf16", "keras", "sklearn")
PARTS = ("train", "predict", "gemm")
_KEEP: list = []  # the threadpoolctl limiter lives as long as the process


def setup_threads(contender: str, threads: int) -> Dict[str, Any]:
    """The same thread count for every contender; returns what was done, for the report.

    Before the import: OMP_NUM_THREADS for every OpenMP runtime; for Keras, KERAS_BACKEND=jax and,
    at N = 1, XLA_FLAGS=--xla_cpu_multi_thread_eigen=false. XLA has no thread-count flag (jax 0.10
    rejects ``intra_op_parallelism_threads``, a TensorFlow session option, as an unknown flag):
    it sizes its CPU thread pools from the process's CPU affinity, which JAX's maintainers give
    as the way to limit it (jax-ml/jax#1539). So with fewer threads than allowed cores every
    worker, whatever its contender, is pinned to the same first N cores.
    After the import: ``lm.set_num_threads``, ``torch.set_num_threads`` and threadpoolctl's
    limit on any BLAS (numpy's OpenBLAS is loaded in every worker).
    """
    done: Dict[str, Any] = {"threads": threads}
    os.environ["OMP_NUM_THREADS"] = str(threads)
    allowed = sorted(os.sched_getaffinity(0))
    if threads < len(allowed):
        os.sched_setaffinity(0, allowed[:threads])
        done["cpu_affinity"] = allowed[:threads]
    if contender == "keras":
        os.environ["KERAS_BACKEND"] = "jax"
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
        if threads == 1:
            os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
        done["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "")
        import jax
        import keras
        done["jax_devices"] = [str(d) for d in jax.devices()]
        done["keras_backend"] = keras.backend.backend()
    elif contender.startswith("lamina"):
        import lamina as lm
        lm.set_num_threads(threads)
        done["lamina"] = lm.get_num_threads()
        done["lamina_build"] = lm.build_info()
    elif contender.startswith("torch"):
        import torch
        torch.set_num_threads(threads)
        done["torch"] = torch.get_num_threads()
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
        _KEEP.append(threadpool_limits(limits=threads))
        done["threadpools"] = [{k: i.get(k) for k in ("user_api", "internal_api", "version", "num_threads", "architecture")}
                               for i in threadpool_info()]
    except ImportError:
        done["threadpools"] = "threadpoolctl not installed: BLAS threads not limited"
    return done


class Worker:
    """One contender, one part; holds the measurement being taken (one model at a time)."""

    def __init__(self, contender: str, part: str, data_dir: Optional[str], quick: bool) -> None:
        sys.path.insert(0, HERE)
        self.contender, self.part, self.quick = contender, part, quick
        self.data = None
        if part != "gemm":
            from common import Data
            self.data = Data.read(data_dir)
        self.measure: Optional[Callable[[], float]] = None
        self.samples = 0

    def prepare(self, key: Dict[str, Any]) -> Dict[str, Any]:
        self.measure = None
        gc.collect()
        info: Dict[str, Any] = {}
        if self.part == "train":
            import train
            batch = int(key["batch"])
            self.samples = train.samples_for(batch, self.quick)
            timer = train.TRAINERS[self.contender](self.data, batch, self.samples)
        elif self.part == "predict":
            import numpy as np
            import predict
            batch = int(key["batch"])
            self.samples = (predict.SAMPLES_QUICK if self.quick else predict.SAMPLES_FULL)[batch]
            timer = predict.PREDICTORS[self.contender](np.ascontiguousarray(self.data.x_test[:self.samples]), batch)
        else:
            import gemm
            rate, info = gemm.measurer(self.contender, key["dtype"], key["label"], min_seconds=0.03 if self.quick else 0.08)
            self.measure = rate
            return info
        self.measure = lambda: self.samples / timer()
        info["samples"] = self.samples
        return info

    def run(self) -> float:
        if self.measure is None:
            raise RuntimeError("run before prepare")
        return self.measure()


def serve(worker: Worker, setup: Dict[str, Any], reply: TextIO) -> None:
    def send(obj: Dict[str, Any]) -> None:
        reply.write(json.dumps(obj) + "\n")
        reply.flush()

    send({"ready": True, "info": setup})
    for line in sys.stdin:
        msg = json.loads(line)
        try:
            if "prepare" in msg:
                send({"ok": True, "info": worker.prepare(msg["prepare"])})
            else:
                send({"value": worker.run()})
        except Exception as exc:  # noqa: BLE001 - reported to run.py, which goes on without this contender
            traceback.print_exc()
            send({"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:200]})


def parse_key(args: argparse.Namespace) -> Dict[str, Any]:
    if args.part == "gemm":
        if not args.case:
            sys.exit("gemm needs --case DTYPE:LABEL, e.g. --case 'float32:peak    1024³'")
        dtype, _, label = args.case.partition(":")
        return {"dtype": dtype, "label": label}
    if args.batch is None:
        sys.exit(f"{args.part} needs --batch")
    return {"batch": args.batch}


def main() -> None:
    parser = argparse.ArgumentParser(description="One contender's measurement in its own process (see module docstring).")
    parser.add_argument("contender", choices=CONTENDERS)
    parser.add_argument("part", choices=PARTS)
    parser.add_argument("--data", help="folder written by common.Data.save (train, predict)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--serve", action="store_true", help="answer JSON lines on stdin (run.py)")
    parser.add_argument("--batch", type=int)
    parser.add_argument("--case", help="gemm: DTYPE:LABEL, a label of gemm.SHAPES or gemm.PEAK")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json-out")
    args = parser.parse_args()
    if args.part != "gemm" and not args.data:
        sys.exit("--data DIR is needed for train and predict (python bench/run.py --save-data DIR writes it)")

    reply = sys.stdout
    if args.serve:  # keep stdout for replies; libraries' prints go to stderr
        reply = os.fdopen(os.dup(1), "w")
        os.dup2(2, 1)
    try:
        setup = setup_threads(args.contender, args.threads)
        worker = Worker(args.contender, args.part, args.data, args.quick)
    except ImportError as exc:
        reply.write(json.dumps({"error": f"not installed ({exc.name or exc})"}) + "\n")
        reply.flush()
        sys.exit(3)
    if args.serve:
        serve(worker, setup, reply)
        return

    from common import SETTLE_SECONDS
    key = parse_key(args)
    info = worker.prepare(key)
    values = []
    for _ in range(args.rounds):
        time.sleep(SETTLE_SECONDS)
        values.append(worker.run())
    out = {"contender": args.contender, "part": args.part, "key": key, "values": values, "info": info, "setup": setup}
    text = json.dumps(out, indent=1)
    if args.json_out:
        with open(args.json_out, "w") as fh:
            fh.write(text)
    print(text)


if __name__ == "__main__":
    main()
