// Elementwise loops (activations, optimizer rules, the fused small-batch update) are compiled
// twice on x86-64 with GCC: for the baseline ISA and for x86-64-v3 (AVX2 + FMA), and the loader
// picks the clone the CPU supports (GCC function multiversioning with an ifunc resolver, the
// sanctioned way to ship per-ISA code in one binary). Elsewhere the plain version is built.
#pragma once

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(LAMINA_NO_CLONES)
#define LAMINA_VECTORIZE __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define LAMINA_VECTORIZE
#endif

// For the helpers such a loop calls (a dispatch switch, a functor's math): inlined into each
// clone, so they are compiled for the clone's ISA rather than called as baseline code.
#if defined(__GNUC__)
#define LAMINA_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define LAMINA_ALWAYS_INLINE inline
#endif
