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
};

InitKind init_from_name(const std::string& name);  // throws std::invalid_argument

struct Initializer {
    InitKind kind = InitKind::GlorotUniform;
    double value = 0.0;  // used by Constant
};

// Fills w[0:count] for a tensor with the given fans. Each element draws from its own counter,
// so the result does not depend on the thread count.
template <typename T>
void initialize(T* w, index_t count, index_t fan_in, index_t fan_out, const Initializer& init,
                std::uint64_t seed, std::uint64_t stream);

}  // namespace lamina
