"""Fashion-MNIST test accuracy of the seed network trained in float32 and in mixed_bfloat16 (issue
13's target: within 0.005 of float32).

    python bench/mixed_accuracy.py                  # 5 epochs, batch 128, seed 0, 2 threads
    python bench/mixed_accuracy.py --epochs 5 --seed 1 --threads 2

bench/train.py's model (784-512(relu)-10(softmax), RMSprop 1e-3, categorical cross-entropy),
inputs / 255, trained on the 60,000 training images and evaluated on the 10,000 test images,
once per dtype in this process. Prints one JSON line with both accuracies, their difference and
the bfloat16 product kernel the CPU ran (``lamina._core.bf16_gemm_kernel()``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import train  # noqa: E402
from common import load_data  # noqa: E402

import lamina as lm  # noqa: E402
from lamina import _core  # noqa: E402

BATCH = 128


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    lm.set_num_threads(args.threads)
    data = load_data()
    accuracy = {}
    for dtype in ("float32", "mixed_bfloat16"):
        model = train.lamina_model(seed=args.seed, dtype=dtype)
        model.fit(data.x_train, data.y_train_onehot, epochs=args.epochs, batch_size=BATCH, verbose=0)
        probs = model.predict(data.x_test, batch_size=1024, verbose=0)
        accuracy[dtype] = float((probs.argmax(axis=1) == data.y_test).mean())
    print(json.dumps({"epochs": args.epochs, "seed": args.seed, "batch": BATCH,
                      "bf16_kernel": _core.bf16_gemm_kernel(), "accuracy": accuracy,
                      "mixed_minus_float32": accuracy["mixed_bfloat16"] - accuracy["float32"]}))


if __name__ == "__main__":
    main()
