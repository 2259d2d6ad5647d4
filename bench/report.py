"""The printed report of a bench/run.py result (the JSON it writes holds every figure)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

PEER_COLUMNS = (("lamina_bf16", "lamina bf16"), ("torch", "torch"), ("keras", "keras/jax"), ("torch_bf16", "torch bf16"),
                ("sklearn", "sklearn"))
WIDTH = 14  # wide enough for "not installed"


def fmt(value: Optional[float], spec: str = ",.0f", width: int = 10) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}{spec}}"


def cell(row: Dict[str, Any], name: str) -> str:
    status = row["status"].get(name)
    if status is None:
        return f"{'':>{WIDTH}}"  # not measured at this batch size
    if status != "ok" or row["sps"].get(name) is None:
        text = "not installed" if status.startswith("not installed") else "failed"
        return f"{text:>{WIDTH}}"
    return fmt(row["sps"][name], width=WIDTH)


def pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def samples_table(title: str, rows: List[Dict[str, Any]], peak: Optional[float]) -> None:
    print(f"\n{title}")
    if rows and rows[0]["limit_sps"]:
        flop = rows[0]["flop_per_sample"]
        print(f"arithmetic limit: {peak:.0f} GFLOP/s ÷ {flop / 1e6:.2f} MFLOP per sample = "
              f"{rows[0]['limit_sps']:,.0f} samples/s")
    columns = [c for c, _ in PEER_COLUMNS if any(c in r["status"] for r in rows)]
    heads = dict(PEER_COLUMNS)
    print(f"{'batch':>6}{'samples':>8}{'lamina':>{WIDTH}}" + "".join(f"{heads[c]:>{WIDTH}}" for c in columns)
          + f"{'best peer':>{WIDTH}}{'ratio':>7}{'lamina/limit':>13}{'peer/limit':>11}")
    for r in rows:
        best = r["best_peer"]
        fractions = r["fraction_of_limit"]
        print(f"{r['batch']:>6}{fmt(r['samples_per_pass'], 'd', 8)}{cell(r, 'lamina')}"
              + "".join(cell(r, c) for c in columns)
              + f"{(best or '-'):>{WIDTH}}{fmt(r['ratio_vs_best_peer'], '.2f', 7)}"
              + f"{pct(fractions.get('lamina')):>13}{pct(fractions.get(best) if best else None):>11}")
    failures = {(c, s) for r in rows for c, s in r["status"].items() if s.startswith("failed")}
    for c, s in sorted(failures):
        print(f"  {c}: {s[:160]}")


def print_header(meta: Dict[str, Any]) -> None:
    v = meta["versions"]
    print()
    print(f"lamina benchmark  {meta['date']}  mode={meta['mode']}  threads={meta['threads']}  "
          f"one process per contender, {meta['statistic']}")
    flags = " ".join(f for f, on in meta["cpu_flags"].items() if on) or "none of " + " ".join(meta["cpu_flags"])
    print(f"machine: {meta['cpu']}, {meta['cores']} cores; flags: {flags}")
    build = meta.get("thread_setup", {}).get("train", {}).get("lamina", {}).get("lamina_build") \
        or next((s["lamina_build"] for part in meta.get("thread_setup", {}).values() for s in part.values()
                 if "lamina_build" in s), None)
    kernel = f" ({build['gemm_kernel']}, openmp={build['openmp']})" if build else ""
    print(f"versions: lamina {v.get('lamina') or (build or {}).get('version')}{kernel}; numpy {v['numpy']}; "
          f"torch {v['torch']}; keras {v['keras']}; jax {v['jax']}; scikit-learn {v['scikit-learn']}")
    blas = [b for b in meta["numpy_blas"] if b.get("user_api") == "blas"] or meta["numpy_blas"]
    for b in blas:
        print("numpy BLAS: " + ", ".join(f"{k}={val}" for k, val in b.items() if k not in ("filepath", "num_threads") and val is not None))
    if meta["openblas_env_removed_by_reexec"]:
        print(f"OPENBLAS env removed by re-exec: {meta['openblas_env_removed_by_reexec']}")
    if meta["openblas_env_now"]:
        print(f"WARNING: measuring WITH {meta['openblas_env_now']} (slows numpy; "
              f"run without --keep-openblas-env or with env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)")
    print(f"data: {meta['data']}")
    load0, load1 = meta["load_avg_at_start"], meta.get("load_avg_at_end")
    busy = "" if load0 is None or load0[0] < 0.5 else "  WARNING: busy at start - figures are noisy"
    print(f"load average (1/5/15 min): {load0} at start, {load1} at end (includes this run){busy}")
    print(f"rounds: {meta['repeats']}, contenders alternating (A B, then B A); ratio = lamina / best float32 peer "
          f"(> 1: lamina faster); x/limit = samples/s × FLOP per sample ÷ the GEMM peak")


def print_report(res: Dict[str, Any]) -> None:
    meta = res["meta"]
    print_header(meta)
    peak = res.get("peak", {}).get("gflops")
    if peak:
        print(f"GEMM peak: {peak:.1f} GFLOP/s ({res['peak']['source']})")

    if res.get("gemm"):
        print("\n1. GEMM GFLOP/s, C = op(A)·op(B), 784-512-10 MLP shapes at batch 128 (and 1024³), one process each")
        print(f"{'shape':<18}{'dtype':<9}{'m×n×k':>16}{'lamina':>10}{'numpy':>10}{'ratio':>8}")
        for r in res["gemm"]:
            mnk = f"{r['m']}×{r['n']}×{r['k']}"
            bad = "  RESULTS DIFFER" if r["results_agree"] is False else ""
            print(f"{r['shape']:<18}{r['dtype']:<9}{mnk:>16}{fmt(r['lamina_gflops'], '.1f')}"
                  f"{fmt(r['numpy_gflops'], '.1f')}{fmt(r['ratio'], '.2f', 8)}{bad}")

    if res.get("train"):
        samples_table("2. Training samples/s, 784-512(relu)-10(softmax), RMSprop(1e-3), categorical CE, one epoch per pass "
                      "(sklearn: MLPClassifier adam; torch bf16: autocast)", res["train"], peak)
    if res.get("predict"):
        samples_table("3. Predict samples/s (softmax probabilities out)", res["predict"], peak)

    if res.get("memory"):
        epochs = meta["memory_epochs"]
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

    print(f"\ntotal {meta['seconds']:.0f} s; JSON written to {meta['json']}")
