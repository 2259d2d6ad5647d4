"""Model files: load time of a crafted deep file, and the Python memory a save / load takes.

    PYTHONPATH=python python bench/model_files.py            # 128-entry file, 120 MB model

Memory is tracemalloc's peak (numpy buffers are traced; the C++ network's own blocks are not).
"""

import argparse
import functools
import os
import tempfile
import time
import tracemalloc

import lamina as lm


def traced_peak(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, nargs="+", default=[128, 1024, 4096])
    parser.add_argument("--units", type=int, default=3000, help="Dense(units) on 10,000 inputs")
    args = parser.parse_args()
    folder = tempfile.mkdtemp()
    for n in args.entries:
        deep = lm.Sequential([lm.layers.Input(shape=(1,))] + [lm.layers.Dense(1) for _ in range(n - 1)], seed=0)
        path = os.path.join(folder, "deep.lamina")
        deep.save(path)
        started = time.perf_counter()
        try:
            lm.load_model(path, max_layers=n)
        except TypeError:  # a lamina without loader limits
            lm.load_model(path)
        print(f"load a {n}-entry file ({os.path.getsize(path):,} bytes): {time.perf_counter() - started:.3f} s")
    path = os.path.join(folder, "big.lamina")
    for optimizer in (None, "adam"):
        model = lm.Sequential([lm.layers.Dense(args.units, input_shape=(10_000,))], seed=0)
        if optimizer:
            model.compile(optimizer, "mse")
        else:
            model.build()
        weights_mb = model.count_params() * 4 / 2**20
        save = traced_peak(functools.partial(model.save, path)) / 2**20
        load = traced_peak(functools.partial(lm.load_model, path)) / 2**20
        print(f"{weights_mb:.0f} MB of weights, {optimizer or 'uncompiled'}: file {os.path.getsize(path) / 2**20:.0f} MB, "
              f"save peak {save:.0f} MB, load peak {load:.0f} MB")
        os.unlink(path)


if __name__ == "__main__":
    main()
