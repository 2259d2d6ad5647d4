#!/bin/sh
# Build the standalone GEMM harness and run it on every kernel table this CPU has (the GEMM
# kernels and the rank-n update), the thread team's own test, and the bfloat16 packers against
# their twins.
#   cpp/tests_native/run_tests.sh           correctness
#   cpp/tests_native/run_tests.sh bench     GFLOP/s (the default kernel; set LAMINA_GEMM_KERNEL for another)
set -e
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/lamina_gemm_test}
mkdir -p "$OUT"
FLAGS="-O3 -fopenmp -std=c++17 -Wall -Wextra -DLAMINA_HAVE_AVX2_TU=1 -DLAMINA_HAVE_AVX512_TU=1 -I cpp ${EXTRA_FLAGS:-}"
g++ $FLAGS -mavx2 -mfma -c cpp/lamina/gemm_avx2.cpp -o "$OUT/gemm_avx2.o"
g++ $FLAGS -mavx512f -mavx512vl -mfma -mpopcnt -c cpp/lamina/gemm_avx512.cpp -o "$OUT/gemm_avx512.o"
g++ $FLAGS cpp/tests_native/gemm_test.cpp cpp/lamina/gemm.cpp cpp/lamina/gemm_generic.cpp \
    cpp/lamina/rank_update.cpp cpp/lamina/threading.cpp cpp/lamina/thread_team.cpp "$OUT/gemm_avx2.o" "$OUT/gemm_avx512.o" -o "$OUT/gemm_test"
g++ $FLAGS cpp/tests_native/thread_team_test.cpp cpp/lamina/thread_team.cpp cpp/lamina/threading.cpp \
    -o "$OUT/thread_team_test"
g++ $FLAGS -DLAMINA_HAVE_AVX512BF16_TU=1 -mavx512f -mavx512vl -mavx512bw -mavx512bf16 \
    -c cpp/lamina/bf16_avx512.cpp -o "$OUT/bf16_avx512.o"
g++ $FLAGS -DLAMINA_HAVE_AVX512BF16_TU=1 cpp/tests_native/bf16_pack_test.cpp cpp/lamina/bf16.cpp cpp/lamina/gemm.cpp \
    cpp/lamina/gemm_generic.cpp cpp/lamina/rank_update.cpp cpp/lamina/threading.cpp cpp/lamina/thread_team.cpp \
    "$OUT/gemm_avx2.o" "$OUT/gemm_avx512.o" "$OUT/bf16_avx512.o" -o "$OUT/bf16_pack_test"
if [ "$1" = "bench" ]; then
  "$OUT/gemm_test" "$@"
  exit 0
fi
for kernel in $("$OUT/gemm_test" kernels); do LAMINA_GEMM_KERNEL=$kernel "$OUT/gemm_test" "$@"; done
"$OUT/thread_team_test"
"$OUT/bf16_pack_test"
