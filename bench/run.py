"""lamina side-by-side benchmark: GEMM vs numpy, training and predict vs PyTorch (float32 and
autocast bf16), Keras 3 on JAX and scikit-learn, peak memory of a 5-epoch fit. Every contender
runs in a fresh process of its own (worker.py); this script only orchestrates, alternating the
contenders round by round, and prints a table (report.py) and writes JSON.

    python bench/run.py                       # full run, ~5 minutes on 2 cores
    python bench/run.py --quick               # ~1-2 minutes
    python bench/run.py --json out.json --threads 2 --only gemm,train

See bench/README.md for the protocol and /work/shared/BENCHMARK.md for the reference figures.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
PARTS = ("gemm", "train", "predict", "memory")

# What each contender's worker imports; a contender whose modules are missing is "not installed".
MODULES = {"lamina": ("lamina",), "lamina_bf16": ("lamina",), "numpy": ("numpy",), "torch": ("torch",), "torch_bf16": ("torch",),
           "keras": ("keras", "jax"), "sklearn": ("sklearn",)}
FLOAT32_PEERS = ("torch", "keras", "sklearn")  # the candidates for "best peer"; the bf16 columns are shown beside them
MIN_ROUNDS = 3
TRAIN_BUDGET_FULL, TRAIN_BUDGET_QUICK = 40.0, 8.0  # seconds of rounds per batch size before they are cut short


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="lamina vs numpy / PyTorch / Keras-on-JAX / scikit-learn, one process each.")
    parser.add_argument("--quick", action="store_true", help="fewer samples and rounds (~1-2 minutes)")
    parser.add_argument("--json", default=os.path.join(HERE, "results.json"),
                        help="where to write the results (default bench/results.json)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for every contender (default: the cores this process may use)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="rounds per measurement (default 5, quick 3; the median is reported)")
    parser.add_argument("--only", default=",".join(PARTS), help="comma-separated subset of " + ",".join(PARTS))
    parser.add_argument("--random-data", action="store_true", help="use random data even if Fashion-MNIST is present")
    parser.add_argument("--keep-openblas-env", action="store_true",
                        help="do not re-exec without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE")
    parser.add_argument("--save-data", metavar="DIR",
                        help="only write the benchmark's arrays to DIR (for running bench/worker.py by hand) and exit")
    return parser.parse_args()


def reexec_without_openblas_env(args: argparse.Namespace) -> None:
    """OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (set by some environments) make numpy's OpenBLAS
    choose slower kernels, which would flatter lamina. They are read when numpy loads, so the
    only clean fix is a fresh process without them: re-exec ourselves once (the workers inherit
    the cleaned environment), remembering what was removed for the report.
    ``--keep-openblas-env`` measures with them instead."""
    from common import OPENBLAS_VARS, REEXEC_MARKER
    found = {k: os.environ[k] for k in OPENBLAS_VARS if k in os.environ}
    if not found or args.keep_openblas_env or REEXEC_MARKER in os.environ:
        return
    env = {k: v for k, v in os.environ.items() if k not in OPENBLAS_VARS}
    env[REEXEC_MARKER] = json.dumps(found)
    print(f"[bench] re-exec'ing without {', '.join(f'{k}={v}' for k, v in found.items())}", flush=True)
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


def installed(contender: str) -> bool:
    """Without importing anything: the orchestrator must not load a contender's runtime."""
    return all(importlib.util.find_spec(m) is not None for m in MODULES[contender])


# ----------------------------------------------------------------------------- workers
class WorkerProcess:
    """A ``worker.py --serve`` child: JSON lines in on stdin, replies out on stdout."""

    def __init__(self, contender: str, part: str, threads: int, quick: bool, data_dir: str) -> None:
        self.contender = contender
        cmd = [sys.executable, os.path.join(HERE, "worker.py"), contender, part, "--serve",
               "--threads", str(threads), "--data", data_dir] + (["--quick"] if quick else [])
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True, bufsize=1)

    def send(self, msg: Dict[str, Any]) -> None:
        try:
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the worker died; read() reports why

    def read(self) -> Dict[str, Any]:
        line = self.proc.stdout.readline()
        if line:
            return json.loads(line)
        self.proc.wait()
        self.stderr.seek(0)
        tail = [ln for ln in self.stderr.read().splitlines() if ln.strip()][-1:]
        return {"error": f"worker exited with {self.proc.returncode}: {' '.join(tail)[:200]}"}

    def request(self, msg: Dict[str, Any]) -> Dict[str, Any]:
        self.send(msg)
        return self.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()


def rounds(procs: Dict[str, WorkerProcess], names: List[str], repeats: int, budget: Optional[float],
           errors: Dict[str, str]) -> Dict[str, List[float]]:
    """Each contender's measurement in turn (A B C, then C B A, ...), ``repeats`` rounds.

    Alternating spreads a slow phase of a shared machine over every contender, so the ratio of
    medians stays meaningful; with a budget, rounds stop once it is spent (after MIN_ROUNDS).
    Before each measurement the machine idles for SETTLE_SECONDS: a library's worker threads
    keep spinning a while after its last call (OpenBLAS's for about 0.1 s) and, on 2 cores,
    would take a core from the next contender even from another process.
    """
    from common import SETTLE_SECONDS
    values: Dict[str, List[float]] = {c: [] for c in names}
    start = time.perf_counter()
    for r in range(repeats):
        if budget is not None and r >= min(MIN_ROUNDS, repeats) and time.perf_counter() - start > budget:
            break
        for c in (names if r % 2 == 0 else names[::-1]):
            if c in errors:
                continue
            time.sleep(SETTLE_SECONDS)
            reply = procs[c].request({"run": True})
            if "error" in reply:
                errors[c] = "failed: " + reply["error"]
            else:
                values[c].append(reply["value"])
    return values


def measure_part(part: str, keys: Sequence[Dict[str, Any]], names_for: Callable[[Dict[str, Any]], Sequence[str]],
                 ctx: Dict[str, Any], budget: Optional[float] = None) -> List[Dict[str, Any]]:
    """One worker per contender for this part, started together (nothing is timed while they
    import); then, per key (a batch size or a GEMM case), every contender prepares (builds and
    warms up) and the rounds alternate them. Returns per key the values and each contender's status."""
    wanted: List[str] = []
    for key in keys:
        wanted += [c for c in names_for(key) if c not in wanted]
    status: Dict[str, str] = {c: "not installed" for c in wanted if not installed(c)}
    procs = {c: WorkerProcess(c, part, ctx["threads"], ctx["quick"], ctx["data_dir"]) for c in wanted if c not in status}
    setups: Dict[str, Any] = {}
    for c, p in procs.items():
        hello = p.read()
        if "error" in hello:
            status[c] = hello["error"] if hello["error"].startswith("not installed") else "failed: " + hello["error"]
        else:
            setups[c] = hello["info"]
    ctx["setup"].setdefault(part, {}).update(setups)
    rows = []
    try:
        for key in keys:
            names = [c for c in names_for(key) if c not in status]
            errors: Dict[str, str] = {}
            for c in names:
                procs[c].send({"prepare": key})
            infos = {}
            for c in names:
                reply = procs[c].read()
                if "error" in reply:
                    errors[c] = "failed: " + reply["error"]
                else:
                    infos[c] = reply["info"]
            values = rounds(procs, names, ctx["repeats"], budget, errors)
            row_status = {c: status.get(c) or errors.get(c) or "ok" for c in names_for(key)}
            rows.append({"key": key, "values": values, "info": infos, "status": row_status})
            print(f"[bench]   {part} {key}: " + ", ".join(f"{c} {row_status[c] if row_status[c] != 'ok' else len(values[c])}"
                                                   for c in names_for(key)), flush=True)
    finally:
        for p in procs.values():
            p.close()
    return rows


# ----------------------------------------------------------------------------- parts
def run_gemm(ctx: Dict[str, Any], only_peak: bool) -> List[Dict[str, Any]]:
    import gemm
    from common import median, ratio
    dtypes = ("float32",) if ctx["quick"] else tuple(gemm.DTYPES)  # --quick: float32 only
    keys = [{"dtype": d, "label": lab} for d, lab in gemm.cases(only_peak, dtypes)]
    contenders = ("numpy",) if only_peak else ("lamina", "numpy")
    out = []
    for row in measure_part("gemm", keys, lambda key: contenders, ctx):
        _, ta, tb, m, n, k = gemm.shape(row["key"]["label"])
        rate = {c: (median(v) if v else None) for c, v in row["values"].items()}
        out.append({"shape": row["key"]["label"], "dtype": row["key"]["dtype"], "trans_a": ta, "trans_b": tb,
                    "m": m, "n": n, "k": k, "lamina_gflops": rate.get("lamina"), "numpy_gflops": rate.get("numpy"),
                    "ratio": ratio(rate.get("lamina"), rate.get("numpy")),
                    "results_agree": row["info"].get("lamina", {}).get("results_agree"),
                    "all": row["values"], "status": row["status"]})
    return out


def summarize(rows: List[Dict[str, Any]], flop_per_sample: int, peak_gflops: Optional[float]) -> List[Dict[str, Any]]:
    """Per batch size: samples/s (median of rounds), the best float32 peer, lamina's ratio to it,
    and each contender's fraction of the arithmetic limit (samples/s × FLOP per sample ÷ peak)."""
    from common import median, ratio
    out = []
    for row in rows:
        sps = {c: (median(v) if v else None) for c, v in row["values"].items()}
        peers = {c: s for c, s in sps.items() if c in FLOAT32_PEERS and s is not None}
        best = max(peers, key=peers.get) if peers else None
        limit = peak_gflops * 1e9 / flop_per_sample if peak_gflops else None
        out.append({
            "batch": row["key"]["batch"], "samples_per_pass": next((i["samples"] for i in row["info"].values()), None),
            "sps": sps, "status": row["status"], "best_peer": best, "best_peer_sps": peers.get(best),
            "ratio_vs_best_peer": ratio(sps.get("lamina"), peers.get(best)),
            "flop_per_sample": flop_per_sample, "limit_sps": limit,
            "fraction_of_limit": {c: ratio(s, limit) for c, s in sps.items()},
            "rounds": {c: len(v) for c, v in row["values"].items()}, "all_sps": row["values"],
        })
    return out


def main() -> None:
    sys.path.insert(0, HERE)
    args = parse_args()
    reexec_without_openblas_env(args)
    started = time.perf_counter()
    from common import PREDICT_FLOP_PER_SAMPLE, TRAIN_FLOP_PER_SAMPLE, load_average, load_data, machine_info

    if args.save_data:
        load_data(force_random=args.random_data).save(args.save_data)
        print(f"arrays written to {args.save_data}")
        return
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - set(PARTS)
    if unknown:
        sys.exit(f"--only: unknown part(s) {sorted(unknown)}")
    threads = args.threads or len(os.sched_getaffinity(0))
    repeats = args.repeats or (3 if args.quick else 5)

    meta = machine_info()
    with tempfile.TemporaryDirectory(prefix="lamina-bench-") as data_dir:
        data = load_data(force_random=args.random_data)
        data.save(data_dir)
        del data
        meta.update({"mode": "quick" if args.quick else "full", "threads": threads, "repeats": repeats,
                     "statistic": "median of rounds", "data": open(os.path.join(data_dir, "source.txt")).read(),
                     "json": os.path.abspath(args.json), "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
                     "train_flop_per_sample": TRAIN_FLOP_PER_SAMPLE, "predict_flop_per_sample": PREDICT_FLOP_PER_SAMPLE})
        ctx: Dict[str, Any] = {"threads": threads, "quick": args.quick, "repeats": repeats, "data_dir": data_dir, "setup": {}}
        res: Dict[str, Any] = {"meta": meta}

        def stage(name: str) -> None:
            print(f"[bench] {name} ... ({time.perf_counter() - started:.0f} s)", flush=True)

        if only & {"gemm", "train", "predict"}:
            stage("gemm" if "gemm" in only else "gemm peak (numpy float32 1024³)")
            gemm_rows = run_gemm(ctx, only_peak="gemm" not in only)
            peak = gemm_rows[0]
            # The limit is the best round, not the median: a slow phase of a shared machine halves a
            # 2-thread OpenBLAS call and would otherwise lift every fraction of the limit.
            rates = peak["all"].get("numpy") or []
            res["peak"] = {"source": f"numpy float32 {peak['m']}×{peak['n']}×{peak['k']}, its own process, best of {len(rates)} rounds",
                           "gflops": max(rates) if rates else None, "all": rates}
            if "gemm" in only:
                res["gemm"] = gemm_rows
        peak_gflops = res.get("peak", {}).get("gflops")
        if "train" in only:
            stage("train")
            import train
            rows = measure_part("train", [{"batch": b} for b in train.BATCH_SIZES], lambda key: train.contenders_for(key["batch"]),
                                ctx, budget=TRAIN_BUDGET_QUICK if args.quick else TRAIN_BUDGET_FULL)
            res["train"] = summarize(rows, TRAIN_FLOP_PER_SAMPLE, peak_gflops)
        if "predict" in only:
            stage("predict")
            import predict
            rows = measure_part("predict", [{"batch": b} for b in predict.SAMPLES_FULL],
                                lambda key: predict.contenders_for(key["batch"]), ctx)
            res["predict"] = summarize(rows, PREDICT_FLOP_PER_SAMPLE, peak_gflops)
        if "memory" in only:
            stage("memory")
            import memory
            epochs = 1 if args.quick else 5
            meta["memory_epochs"] = epochs
            res["memory"] = memory.run(epochs, threads, data_dir, [c for c in memory.FRAMEWORKS if installed(c)])

    meta["thread_setup"] = ctx["setup"]
    meta["seconds"] = time.perf_counter() - started
    meta["load_avg_at_end"] = load_average()
    with open(args.json, "w") as fh:
        json.dump(res, fh, indent=1)
    import report
    report.print_report(res)


if __name__ == "__main__":
    main()
