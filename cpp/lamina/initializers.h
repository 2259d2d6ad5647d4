// Weight initializers with Keras's names and formulas (variance scaling).
#pragma once
#include <cstdint>
#include <string>

#include "lamina/matrix.h"

namespace lamina {

enum class InitKind {
    GlorotUniform,
    GlorotNormal,
    HeUniform,
    HeNormal,
    LecunUniform,
    LecunNormal,
    Zeros,
    Ones,
    Constant,
    RandomNormal,     // mean = value, stddev = value2
    RandomUniform,    // on [value, value2)
    TruncatedNormal,  // mean = value, stddev = value2, redrawn beyond two stddevs
};

struct Initializer {
    InitKind kind = InitKind::GlorotUniform;
    double value = 0.0;   // Constant's value; the random ones' mean or lower bound
    double value2 = 0.0;  // the random ones' stddev or upper bound
};

// Fills w[0:count] for a tensor with the given fans. Each element draws from its own counter,
// so the result does not depend on the thread count.
template <typename T>
void initialize(T* w, index_t count, index_t fan_in, index_t fan_out, const Initializer& init,
                std::uint64_t seed, std::uint64_t stream);

}  // namespace lamina
