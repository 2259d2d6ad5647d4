"""Training and predict samples/s of one checkout, for before/after runs between two builds:

    python bench/train_ab.py <tree> [dtype]     # prints one JSON line (dtype: float32, mixed_bfloat16)

bench/train.py's model (784-512(relu)-10(softmax), RMSprop 1e-3) from <tree>'s own python/ and
bench/ (built with scripts/dev_build.sh), Fashion-MNIST, 2 threads: best of 3 passes over 300 /
2,000 / 6,000 / 16,384 samples at batch 1 / 10 / 32 / 128, and predict on 10,000 test rows at
batch 1024. Run the two trees alternately, in fresh processes, several rounds.
"""

import json
import sys
import time

tree = sys.argv[1]
dtype = sys.argv[2] if len(sys.argv) > 2 else "float32"
if dtype not in ("float32", "mixed_bfloat16"):
    raise SystemExit(f"dtype must be float32 or mixed_bfloat16, received {dtype!r}")
sys.path.insert(0, tree + "/bench")
sys.path.insert(0, tree + "/python")

import train  # noqa: E402
from common import load_data  # noqa: E402

import lamina as lm  # noqa: E402

lm.set_num_threads(2)
data = load_data()
out = {}
for batch, n in ((1, 300), (10, 2000), (32, 6000), (128, 16384)):
    make = train.lamina_bf16_trainer if dtype == "mixed_bfloat16" else train.lamina_trainer
    trainer = make(data, batch, n)
    out[str(batch)] = n / min(trainer() for _ in range(3))
model = train.lamina_model(dtype=dtype)
x = data.x_test[:10000]
model.predict(x[:2048], batch_size=1024)
times = []
for _ in range(3):
    start = time.perf_counter()
    model.predict(x, batch_size=1024)
    times.append(time.perf_counter() - start)
out["predict1024"] = len(x) / min(times)
print(json.dumps(out))
