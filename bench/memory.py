"""Peak RSS of a Fashion-MNIST fit (784-512-10 MLP, RMSprop, batch 128), one framework per
process, and the test accuracy it reached.

Run by run.py as ``python bench/memory.py {lamina|torch|keras} --data DIR --epochs 5 --threads N``
(DIR as written by ``python bench/run.py --save-data DIR``);
prints one JSON line. Peak RSS is the process's high-water mark at the end (``VmHWM``; ``ru_maxrss`` where /proc is
missing - see ``_peak_mb`` for why not ru_maxrss alone), so it includes the interpreter, the
imports and the data; ``rss_before_fit_mb`` is the resident size
just before training (after imports and data loading); ``fit_peak_rss_mb`` is the peak during
fit + test evaluation alone (the peak mark is reset before the fit where Linux allows it), so
``fit_peak - before`` is what training itself added on top of the loaded data.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH = 128
LAMINA_MIN_ACCURACY = 0.87  # after 5 epochs on Fashion-MNIST
FRAMEWORKS = ("lamina", "torch", "keras")


def _ru_maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _status_mb(field: str) -> Optional[float]:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0  # kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _peak_mb() -> float:
    """Peak RSS of this process's own memory: VmHWM where Linux has it, else ru_maxrss.

    ru_maxrss alone is misleading in a child: at exec, Linux folds the high-water mark of the
    address space being replaced into it - with subprocess's vfork that is the *parent's*, so a
    child of a 500 MB benchmark process would report >= 500 MB whatever it does.
    """
    hwm = _status_mb("VmHWM")
    return _ru_maxrss_mb() if hwm is None else hwm


def _reset_peak() -> bool:
    """Resets the peak-RSS mark (Linux >= 4.0: ``echo 5 > /proc/self/clear_refs``), so that the
    data loading's transient copies do not hide what the fit itself needs."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _current_mb() -> float:
    """Resident set size now (Linux /proc), else the peak so far."""
    rss = _status_mb("VmRSS")
    return _peak_mb() if rss is None else rss


def _fit_lamina(data: Any, epochs: int) -> float:
    from train import lamina_model
    model = lamina_model()
    model.fit(data.x_train, data.y_train_onehot, batch_size=BATCH, epochs=epochs, verbose=0)
    probs = model.predict(data.x_test)
    return float((probs.argmax(axis=1) == data.y_test).mean())


def _fit_torch(data: Any, epochs: int) -> float:
    import torch
    from train import torch_epoch, torch_model
    model = torch_model()
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    model.train()
    for _ in range(epochs):
        torch_epoch(model, opt, loss_fn, x, y, BATCH)
    model.eval()
    with torch.no_grad():
        pred = model(torch.from_numpy(data.x_test)).argmax(dim=1).numpy()
    return float((pred == data.y_test).mean())


def _fit_keras(data: Any, epochs: int) -> float:
    from train import keras_model
    model = keras_model()
    model.fit(data.x_train, data.y_train_onehot, batch_size=BATCH, epochs=epochs, verbose=0)
    probs = model.predict(data.x_test, batch_size=1024, verbose=0)
    return float((probs.argmax(axis=1) == data.y_test).mean())


FITS = {"lamina": _fit_lamina, "torch": _fit_torch, "keras": _fit_keras}


def child(framework: str, epochs: int, threads: int, data_dir: str) -> Dict[str, Any]:
    sys.path.insert(0, HERE)
    from common import Data
    from worker import setup_threads
    setup_threads(framework, threads)
    data = Data.read(data_dir)
    _ = data.y_train_onehot if framework != "torch" else None  # build the one-hot targets before the mark
    gc.collect()
    load_peak = _peak_mb()
    reset = _reset_peak()
    before = _current_mb()
    start = time.perf_counter()
    acc = FITS[framework](data, epochs)
    seconds = time.perf_counter() - start
    fit_peak = _peak_mb()
    return {"framework": framework, "epochs": epochs, "batch": BATCH,
            "peak_rss_mb": max(load_peak, fit_peak), "rss_before_fit_mb": before,
            "fit_peak_rss_mb": fit_peak if reset else None, "fit_seconds": seconds,
            "ru_maxrss_mb": _ru_maxrss_mb(), "test_accuracy": acc, "data": data.source}


def run(epochs: int, threads: int, data_dir: str, frameworks: List[str]) -> List[Dict[str, Any]]:
    """Each framework in its own fresh interpreter (same environment as this one)."""
    rows = []
    for framework in frameworks:
        cmd = [sys.executable, os.path.join(HERE, "memory.py"), framework, "--epochs", str(epochs),
               "--threads", str(threads), "--data", data_dir]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            rows.append({"framework": framework, "error": proc.stderr.strip().splitlines()[-1:]})
            continue
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        if framework == "lamina" and epochs >= 5 and "Fashion" in row["data"]:
            row["meets_accuracy_target"] = row["test_accuracy"] >= LAMINA_MIN_ACCURACY
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("framework", choices=FRAMEWORKS)
    parser.add_argument("--data", required=True, help="folder written by python bench/run.py --save-data DIR")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    print(json.dumps(child(args.framework, args.epochs, args.threads, args.data)))


if __name__ == "__main__":
    main()
