// The one place where the outside world may see and change a training step's gradient (phase 4:
// forward -> loss_and_output_gradient -> backward -> gradient hook -> clip -> update). A
// distributed run sums the block across processes here; tests record it.
#pragma once
#include <cstdint>

#include "lamina/matrix.h"

namespace lamina {

struct StepInfo {
    std::int64_t step;  // the optimizer update this gradient is for, from 0 (iterations so far)
    index_t rows;       // samples in the batch
};

template <typename T>
class GradientHook {
public:
    virtual ~GradientHook() = default;
    // grad (size): the whole gradient block, in the parameter layout, formed and writable.
    // Called once per step, before clipping and the update; an exception leaves the
    // parameters and the optimizer state as they were before the step.
    virtual void on_gradient(T* grad, index_t size, const StepInfo& step) = 0;
};

}  // namespace lamina
