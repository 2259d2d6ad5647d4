#!/usr/bin/env bash
# Runs a small lamina workload (build, fit, predict, evaluate, train_on_batch, gradient_check,
# save/load, rejected calls) under valgrind memcheck and reports the invalid accesses, uses of
# uninitialised values and definite leaks whose stack passes through lamina's extension.
#
#   scripts/valgrind.sh            # uses the python on PATH (or $PYTHON) and the lamina it imports
#   PYTHON=path/to/python scripts/valgrind.sh
#
# PYTHONMALLOC=malloc makes Python use malloc directly, so valgrind sees every block and
# pymalloc's arenas raise no false alarms. Exit status 1 when lamina has findings.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
LOG=${VG_LOG:-$(mktemp /tmp/lamina-valgrind.XXXXXX.log)}
WORK=$(mktemp -d /tmp/lamina-valgrind.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

cat > "$WORK/workload.py" <<'PY'
import os, sys
import numpy as np
import lamina as lm

rng = np.random.default_rng(0)
x = rng.normal(size=(300, 12)).astype(np.float32)
y = rng.integers(0, 4, size=300)
for dtype in ("float32", "float64"):
    model = lm.Sequential([lm.layers.Dense(24, activation="relu", input_shape=(12,)),
                           lm.layers.Dropout(0.2),
                           lm.layers.Dense(16, activation="gelu", kernel_regularizer=lm.regularizers.L2(1e-3)),
                           lm.layers.Dense(4, activation="softmax")], seed=1, dtype=dtype)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy", "f1"])
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, validation_split=0.2, track_gradient_norms=True)
    model.fit(x, y, batch_size=64, epochs=1, verbose=0)  # the large-batch path
    model.train_on_batch(x[:5], y[:5])
    model.predict(x, batch_size=7)
    model.evaluate(x, y)
    lm.gradient_check(model, x[:3].astype(np.float64), y[:3], max_params=50)
    path = os.path.join(sys.argv[1], f"m-{dtype}.lamina")
    model.save(path)
    again = lm.load_model(path)
    assert np.array_equal(again.predict(x), model.predict(x))
    # (no failed allocations here: valgrind's operator new exits instead of throwing bad_alloc)
    for bad in (lambda: model.fit(x[:, :3], y, verbose=0), lambda: model.fit(x, y + 10, verbose=0),
                lambda: model.set_weights([np.zeros(2)])):
        try:
            bad()
        except ValueError:
            pass
reg = lm.Sequential([lm.layers.Dense(8, activation="tanh", input_shape=(12,)), lm.layers.Dense(1)], seed=0)
reg.compile(optimizer=lm.optimizers.SGD(momentum=0.9, nesterov=True, clipnorm=1.0), loss="huber")
reg.fit(x, x[:, 0], epochs=1, batch_size=16, verbose=0)
print("workload done")
PY

start=$(date +%s)
echo "== valgrind memcheck on $PY (log: $LOG)"
PYTHONMALLOC=malloc OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} valgrind --tool=memcheck --leak-check=full \
  --show-leak-kinds=definite --errors-for-leak-kinds=definite --num-callers=40 --track-origins=yes \
  --log-file="$LOG" "$PY" "$WORK/workload.py" "$WORK" || { echo "== the workload failed (exit $?)"; exit 2; }
end=$(date +%s)

status=0
"$PY" - "$LOG" <<'PY' || status=$?
import re, sys
text = open(sys.argv[1]).read()
records, current = [], []
for line in text.splitlines():
    body = re.sub(r"^==\d+== ?", "", line)
    if not body.strip():
        if current:
            records.append(current)
        current = []
    else:
        current.append(body)
if current:
    records.append(current)
kinds = ("Invalid read", "Invalid write", "Invalid free", "Mismatched free", "uninitialised", "Uninitialised",
         "definitely lost", "Source and destination overlap", "Syscall param")
ours = [r for r in records if any(k in r[0] for k in kinds) and any("lamina/_core" in l or "_core.cpython" in l or "lamina::" in l for l in r)]
others = [r for r in records if any(k in r[0] for k in kinds) and r not in ours]
summary = [l for l in text.splitlines() if "ERROR SUMMARY" in l or "definitely lost:" in l]
print("\n".join(summary))
print(f"== {len(ours)} finding(s) in lamina's code; {len(others)} elsewhere (Python, numpy, libgomp: not ours)")
for r in ours[:20]:
    print("\n".join(r))
    print("--")
sys.exit(1 if ours else 0)
PY
echo "== valgrind run took $((end - start)) s"
exit $status
