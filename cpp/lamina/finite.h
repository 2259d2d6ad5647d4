// Input validation at memory speed: is every element of a float block finite?
#pragma once
#include "lamina/matrix.h"

namespace lamina {

// p (n): true when no element is NaN or +-inf.
template <typename T>
bool all_finite(const T* p, index_t n);

}  // namespace lamina
