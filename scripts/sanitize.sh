#!/usr/bin/env bash
# Builds lamina._core with -fsanitize=address,undefined into a throwaway venv and runs the test
# suite under it. Any AddressSanitizer or UndefinedBehaviorSanitizer report fails the run.
#
#   scripts/sanitize.sh                      # the whole suite except slow tests and the tests that
#                                            # exhaust memory on purpose (ASan's operator new aborts
#                                            # instead of throwing std::bad_alloc; RSS is meaningless)
#   scripts/sanitize.sh tests/test_io.py -x  # arguments go to pytest instead of the default
#
# Environment: SAN_VENV (default /tmp/lamina-sanitize-venv; reused when it exists),
# PYTHON (the interpreter to base the venv on, default python3),
# SAN_JOBS (build parallelism, default 2), OMP_NUM_THREADS (default 2).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${SAN_VENV:-/tmp/lamina-sanitize-venv}
PYTHON=${PYTHON:-python3}
LOG=${SAN_LOG:-$VENV/sanitize-$(date +%Y%m%d-%H%M%S).log}
start=$(date +%s)

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  # Build requirements (no build isolation, so the venv can be reused) and the test extras.
  "$VENV/bin/pip" install -q numpy pybind11 scikit-build-core tqdm pytest hypothesis matplotlib
fi

echo "== building the sanitized extension ($VENV)"
CMAKE_BUILD_PARALLEL_LEVEL=${SAN_JOBS:-2} "$VENV/bin/pip" install -q --no-build-isolation --no-deps "$ROOT" \
  -Ccmake.define.LAMINA_SANITIZE=ON -Ccmake.build-type=RelWithDebInfo -Cbuild-dir="$ROOT/build/sanitize"
built=$(date +%s)
echo "== build took $((built - start)) s"

ASAN_LIB=$(g++ -print-file-name=libasan.so)
UBSAN_LIB=$(g++ -print-file-name=libubsan.so)
export LD_PRELOAD="$ASAN_LIB $UBSAN_LIB"
# Python itself "leaks" by design: leak checking is off; everything else aborts on the first error.
# Reports go to files as well as stderr: pytest captures a test's stderr and an abort loses it.
REPORTS="$VENV/reports"
rm -rf "$REPORTS" && mkdir -p "$REPORTS"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:allocator_may_return_null=1:log_path=$REPORTS/asan}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:log_path=$REPORTS/ubsan}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
export PYTHONFAULTHANDLER=1

# Run from outside the source tree so `import lamina` finds the sanitized install, not python/.
cd "$VENV"
"$VENV/bin/python" -c "import lamina, lamina._core as c; print('lamina', lamina.__version__, 'from', c.__file__)"
if [ $# -eq 0 ]; then
  set -- "$ROOT/tests" -m "not slow" -k "not (test_leaks or too_large_to_allocate or overflow_64_bits \
or batch_size_far_larger or large_batch_size_on_small_data or declaring_a_huge_network)"
fi
status=0
"$VENV/bin/python" -m pytest -q -p no:cacheprovider --rootdir="$ROOT" -c "$ROOT/pyproject.toml" "$@" 2>&1 | tee "$LOG" \
  || status=$?
end=$(date +%s)

if grep -qE "ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer" "$LOG" || [ -n "$(ls -A "$REPORTS")" ]; then
  echo "== SANITIZER REPORTS FOUND (see $LOG and $REPORTS):"
  grep -hnE "ERROR: AddressSanitizer|runtime error:|SUMMARY:|#[0-9] .*lamina" "$LOG" "$REPORTS"/* 2>/dev/null | head -40
  status=${status:-1}; [ "$status" -eq 0 ] && status=1
else
  echo "== no sanitizer reports"
fi
echo "== build $((built - start)) s, tests $((end - built)) s, total $((end - start)) s; pytest exit $status; log $LOG"
exit "$status"
