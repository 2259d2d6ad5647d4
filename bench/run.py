"""lamina side-by-side benchmark: GEMM vs numpy, training and predict vs PyTorch (and
scikit-learn), peak memory of a 5-epoch fit. Prints a table of ratios and writes JSON.

    python bench/run.py                       # full run, ~3-5 minutes on 2 cores
    python bench/run.py --quick               # under a minute
    python bench/run.py --json out.json --threads 2

See bench/README.md for the protocol and /work/shared/BENCHMARK.md for the reference figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="lamina vs numpy / PyTorch / scikit-learn, side by side.")
    parser.add_argument("--quick", action="store_true", help="fewer samples and repeats (under a minute)")
    parser.add_argument("--json", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results.json"),
                        help="where to write the results (default bench/results.json)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for every library (default: the cores this process may use)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per measurement (median is reported)")
    parser.add_argument("--only", default="gemm,train,predict,memory",
                        help="comma-separated subset of gemm,train,predict,memory")
    parser.add_argument("--random-data", action="store_true", help="use random data even if Fashion-MNIST is present")
    parser.add_argument("--keep-openblas-env", action="store_true",
                        help="do not re-exec without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE")
    return parser.parse_args()


def reexec_without_openblas_env(args: argparse.Namespace) -> None:
    """OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (set by some environments) make numpy's OpenBLAS
    choose slower kernels, which would flatter lamina. They are read when numpy loads, so the
    only clean fix is a fresh process without them: re-exec ourselves once, remembering what
    was removed for the report. ``--keep-openblas-env`` measures with them instead."""
    from common import OPENBLAS_VARS, REEXEC_MARKER
    found = {k: os.environ[k] for k in OPENBLAS_VARS if k in os.environ}
    if not found or args.keep_openblas_env or REEXEC_MARKER in os.environ:
        return
    env = {k: v for k, v in os.environ.items() if k not in OPENBLAS_VARS}
    env[REEXEC_MARKER] = json.dumps(found)
    print(f"[bench] re-exec'ing without {', '.join(f'{k}={v}' for k, v in found.items())}", flush=True)
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


def fmt(value, spec: str = ",.0f", width: int = 10) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}{spec}}"


def print_report(res: dict) -> None:
    meta = res["meta"]
    print()
    print(f"lamina benchmark  {meta['date']}  mode={meta['mode']}  threads={meta['threads']}")
    print(f"machine: {meta['cpu']}, {meta['cores']} cores;  lamina {meta['versions']['lamina']} "
          f"({meta['lamina_build']['gemm_kernel']}, openmp={meta['lamina_build']['openmp']});  "
          f"numpy {meta['versions']['numpy']};  torch {meta['versions']['torch']};  "
          f"scikit-learn {meta['versions']['scikit-learn']}")
    blas = [b for b in meta["numpy_blas"] if b.get("user_api") == "blas"] or meta["numpy_blas"]
    for b in blas:
        print("numpy BLAS: " + ", ".join(f"{k}={v}" for k, v in b.items() if k != "filepath" and v is not None))
    if meta["openblas_env_removed_by_reexec"]:
        print(f"OPENBLAS env removed by re-exec: {meta['openblas_env_removed_by_reexec']}")
    if meta["openblas_env_now"]:
        print(f"WARNING: measuring WITH {meta['openblas_env_now']} (slows numpy; "
              f"run without --keep-openblas-env or with env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)")
    print(f"data: {meta['data']}")
    load0, load1 = meta["load_avg_1min_at_start"], meta.get("load_avg_1min_at_end")
    busy = "" if load0 is None or load0 < 0.5 else \
        "  WARNING: load >= 0.5 at start - unless it was this run's own warm-up, ratios are noisy"
    print(f"load average (1 min): {load0:.2f} at start, {load1:.2f} at end (includes this run){busy}")
    print(f"repeats: {meta['repeats']} (median reported; ratio = lamina / peer, > 1 means lamina is faster)")

    if res.get("gemm"):
        print("\n1. GEMM GFLOP/s, C = op(A)·op(B), 784-512-10 MLP shapes at batch 128")
        print(f"{'shape':<18}{'dtype':<9}{'m×n×k':>16}{'lamina':>10}{'numpy':>10}{'ratio':>8}")
        for r in res["gemm"]:
            mnk = f"{r['m']}×{r['n']}×{r['k']}"
            bad = "" if r["results_agree"] else "  RESULTS DIFFER"
            print(f"{r['shape']:<18}{r['dtype']:<9}{mnk:>16}{fmt(r['lamina_gflops'], '.1f')}"
                  f"{fmt(r['numpy_gflops'], '.1f')}{fmt(r['ratio'], '.2f', 8)}{bad}")

    if res.get("train"):
        print("\n2. Training samples/s, 784-512(relu)-10(softmax), RMSprop(1e-3), categorical CE "
              "(sklearn: MLPClassifier adam)")
        print(f"{'batch':>6}{'samples':>9}{'lamina':>10}{'torch':>10}{'ratio':>8}{'sklearn':>10}{'ratio':>8}")
        for r in res["train"]:
            print(f"{r['batch']:>6}{r['samples_per_repeat']:>9}{fmt(r['lamina_sps'])}{fmt(r['torch_sps'])}"
                  f"{fmt(r['ratio_vs_torch'], '.2f', 8)}{fmt(r['sklearn_sps'])}{fmt(r['ratio_vs_sklearn'], '.2f', 8)}")

    if res.get("predict"):
        print("\n3. Predict samples/s (softmax probabilities out)")
        print(f"{'batch':>6}{'samples':>9}{'lamina':>10}{'torch':>10}{'ratio':>8}")
        for r in res["predict"]:
            print(f"{r['batch']:>6}{r['samples']:>9}{fmt(r['lamina_sps'])}{fmt(r['torch_sps'])}"
                  f"{fmt(r['ratio_vs_torch'], '.2f', 8)}")

    if res.get("memory"):
        epochs = res["meta"]["memory_epochs"]
        print(f"\n4. Peak RSS of a {epochs}-epoch fit at batch 128, one process each")
        print(f"{'framework':<10}{'peak MB':>9}{'pre-fit MB':>11}{'fit peak':>9}{'added':>7}{'fit s':>8}{'test acc':>10}")
        for r in res["memory"]:
            if "error" in r:
                print(f"{r['framework']:<10} failed: {r['error']}")
                continue
            flag = {True: "  (>= 0.87 ok)", False: "  (BELOW 0.87)"}.get(r.get("meets_accuracy_target"), "")
            fit_peak = r["fit_peak_rss_mb"]
            added = None if fit_peak is None else fit_peak - r["rss_before_fit_mb"]
            print(f"{r['framework']:<10}{r['peak_rss_mb']:>9.0f}{r['rss_before_fit_mb']:>11.0f}"
                  f"{fmt(fit_peak, '.0f', 9)}{fmt(added, '.0f', 7)}"
                  f"{r['fit_seconds']:>8.1f}{r['test_accuracy']:>10.4f}{flag}")
        mem = {r["framework"]: r for r in res["memory"] if "error" not in r}
        if "lamina" in mem and "torch" in mem:
            lam, tor = mem["lamina"], mem["torch"]
            line = f"peak RSS ratio lamina/torch: {lam['peak_rss_mb'] / tor['peak_rss_mb']:.2f}"
            if lam["fit_peak_rss_mb"] is not None and tor["fit_peak_rss_mb"] is not None:
                added = [(r["fit_peak_rss_mb"] - r["rss_before_fit_mb"]) for r in (lam, tor)]
                line += f"; memory the fit added: lamina {added[0]:.0f} MB vs torch {added[1]:.0f} MB"
            print(line)

    for line in res["skipped"]:
        print(f"skipped: {line}")
    print(f"\ntotal {res['meta']['seconds']:.0f} s; JSON written to {res['meta']['json']}")


def main() -> None:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    args = parse_args()
    reexec_without_openblas_env(args)

    import time
    started = time.perf_counter()
    from common import load_data, machine_info, set_threads

    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - {"gemm", "train", "predict", "memory"}
    if unknown:
        sys.exit(f"--only: unknown part(s) {sorted(unknown)}")
    threads = args.threads or len(os.sched_getaffinity(0))
    repeats = args.repeats or (3 if args.quick else 5)
    skipped = []

    try:
        import torch
        torch.set_num_threads(threads)
        have_torch = True
    except ImportError:
        have_torch = False
    thread_setup = set_threads(threads)  # after torch import, so threadpoolctl sees every BLAS
    data = load_data(force_random=args.random_data)
    meta = machine_info()
    meta.update({"mode": "quick" if args.quick else "full", "threads": threads, "thread_setup": thread_setup,
                 "repeats": repeats, "data": data.source, "json": os.path.abspath(args.json),
                 "command": " ".join([os.path.basename(sys.executable)] + sys.argv)})
    res = {"meta": meta, "skipped": skipped}

    def stage(name: str) -> None:
        print(f"[bench] {name} ... ({time.perf_counter() - started:.0f} s)", flush=True)

    if "gemm" in only:
        stage("gemm")
        import gemm
        res["gemm"] = gemm.run(repeats, min_seconds=0.03 if args.quick else 0.08)
    if "train" in only:
        stage("train")
        import train
        res["train"] = train.run(data, repeats, args.quick, skipped)
    elif not have_torch:
        skipped.append("PyTorch not installed: torch comparisons skipped")
    if "predict" in only:
        stage("predict")
        import predict
        res["predict"] = predict.run(data, repeats, args.quick, have_torch)
    if "memory" in only:
        stage("memory")
        import memory
        epochs = 1 if args.quick else 5
        meta["memory_epochs"] = epochs
        res["memory"] = memory.run(epochs, threads, args.random_data, have_torch)

    meta["seconds"] = time.perf_counter() - started
    meta["load_avg_1min_at_end"] = os.getloadavg()[0]
    with open(args.json, "w") as fh:
        json.dump(res, fh, indent=1)
    print_report(res)


if __name__ == "__main__":
    main()
