// bfloat16 groundwork for mixed precision: float -> bfloat16 conversion and a micro-kernel over
// packed bfloat16 panels with float32 accumulation, each with a portable twin that gives the same
// bits. gemm_bf16.h builds the blocked, threaded product of dtype="mixed_bfloat16" on them.
//
// Conversion is round-to-nearest-even with the semantics of VCVTNEPS2BF16: a subnormal input
// becomes a zero of the same sign, a NaN stays a NaN (sign and top payload bits kept, quiet bit
// set), a finite value that rounds past the largest bfloat16 becomes infinity. Unlike a plain
// truncate-and-round of the bits, subnormals are therefore not kept (they are below bfloat16's
// useful range for weights and activations anyway).
//
// Declarations only (no inline code), so the AVX512_BF16 translation unit can include it safely.
#pragma once
#include <cstdint>

#include "lamina/matrix.h"

namespace lamina {

using bf16_t = std::uint16_t;

// One value, portable.
bf16_t bf16_from_float(float x);
float bf16_to_float(bf16_t h);

// out[i] = bf16_from_float(x[i]) for i < n; with the AVX512_BF16 instruction when bf16_kernels().
void bf16_round(const float* x, index_t n, bf16_t* out);
void bf16_round_portable(const float* x, index_t n, bf16_t* out);

// Panels for the bfloat16 micro-kernel hold depth steps in pairs (what VDPBF16PS multiplies):
//   A (mr <= kBf16MR rows, k):  element (i, p) at ap[(p / 2) * 2 * kBf16MR + 2 * i + p % 2]
//   B (k, nr <= kBf16NR cols):  element (p, j) at bp[(p / 2) * 2 * kBf16NR + 2 * j + p % 2]
// converted with bf16_from_float; rows past mr, columns past nr and the odd step of an odd k
// are zero. Buffers hold ceil(k / 2) * 2 * kBf16MR (A) / kBf16NR (B) values.
constexpr index_t kBf16MR = 12, kBf16NR = 32;
void bf16_pack_a(const float* a, index_t lda, index_t mr, index_t k, bf16_t* ap);
void bf16_pack_b(const float* b, index_t ldb, index_t k, index_t nr, bf16_t* bp);

// The general pair panel both are: `width` lanes (kBf16MR or kBf16NR), the first `valid` read
// from src and the rest zero, over k depth steps; element (lane l, step p) at
// dst[(p / 2) * 2 * width + 2 * l + p % 2], the odd step of an odd k zero.
//   lanes_are_rows:  lane l is src row l, step p its column p  (src (valid, k), row stride ld)
//   otherwise:       lane l is src column l, step p its row p  (src (k, valid), row stride ld)
// So a transposed operand is packed as it is read. With the AVX512_BF16 conversion when
// bf16_kernels(), else the portable twin; the same bits either way.
void bf16_pack_panel(const float* src, index_t ld, bool lanes_are_rows, index_t width, index_t valid, index_t k,
                     bf16_t* dst);
void bf16_pack_panel_portable(const float* src, index_t ld, bool lanes_are_rows, index_t width, index_t valid,
                              index_t k, bf16_t* dst);

// Pairs q0 .. q1 of depth steps of B (k, n) (pair q: rows 2q and 2q + 1, the odd step past an
// odd k zero) into the 16-lane groups of pair panels: group g (columns 16 g .. 16 g + 15, those
// past n zero) of pair q at dst + (g / 2) * panel_stride + (g % 2) * half_stride + q * pair_stride,
// lane l's pair at 2 l. The values bf16_pack_panel writes there, so panels can be refreshed a few
// rows at a time when only those changed. A group's pairs are written in order, so its stores
// run along memory. With the AVX512_BF16 conversion when bf16_kernels(); the same bits either way.
void bf16_pack_pair_groups(const float* B, index_t ldb, index_t k, index_t n, index_t q0, index_t q1, bf16_t* dst,
                           index_t pair_stride, index_t panel_stride, index_t half_stride);
void bf16_pack_pair_groups_portable(const float* B, index_t ldb, index_t k, index_t n, index_t q0, index_t q1,
                                    bf16_t* dst, index_t pair_stride, index_t panel_stride, index_t half_stride);

// C (mr, nr) = [C +] a (mr, k) * b (k, nr), float32, from packed panels (see above). Each
// element is one float32 chain over the pairs in ascending order, adding the pair's odd step
// first, then its even step, each addition a single rounding (round-to-nearest-even) with
// subnormal inputs and results taken as zero: VDPBF16PS's arithmetic, which the portable twin
// spells out, so both give the same bits whatever MXCSR says. The sum is added to C (accumulate)
// with one ordinary float32 addition.
void bf16_gemm_tile(index_t k, const bf16_t* ap, const bf16_t* bp, bool accumulate, float* c, index_t ldc,
                    index_t mr, index_t nr);
void bf16_gemm_tile_portable(index_t k, const bf16_t* ap, const bf16_t* bp, bool accumulate, float* c,
                             index_t ldc, index_t mr, index_t nr);

// C (m, n) = A (m, k) B (k, n), all row-major float32, through packed bfloat16 panels one tile at a
// time (no depth blocking, no threads: the entry the tests use to compare the kernel with its
// twin). portable forces the twin.
void bf16_gemm(index_t m, index_t n, index_t k, const float* A, index_t lda, const float* B, index_t ldb, float* C,
               index_t ldc, bool portable);

// Whether bf16_round / bf16_gemm_tile use AVX512_BF16: the CPU has it (with AVX-512F/BW/VL) and the
// GEMM kernel in use is avx512 (LAMINA_GEMM_KERNEL=avx2 or generic turns it off too).
bool bf16_kernels();

namespace bf16_detail {
// Defined in bf16_avx512.cpp (only when LAMINA_HAVE_AVX512BF16_TU; call only if the CPU has
// AVX512_BF16, AVX-512F, AVX-512BW and AVX-512VL).
void round_avx512bf16(const float* x, index_t n, bf16_t* out);
void gemm_tile_avx512bf16(index_t k, const bf16_t* ap, const bf16_t* bp, bool accumulate, float* c,
                          index_t ldc, index_t mr, index_t nr);
void pack_panel_avx512bf16(const float* src, index_t ld, bool lanes_are_rows, index_t width, index_t valid,
                           index_t k, bf16_t* dst);
void pack_pair_groups_avx512bf16(const float* B, index_t ldb, index_t k, index_t n, index_t q0, index_t q1,
                                 bf16_t* dst, index_t pair_stride, index_t panel_stride, index_t half_stride);
}  // namespace bf16_detail

}  // namespace lamina
