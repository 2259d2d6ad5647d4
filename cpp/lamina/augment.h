// Image augmentation as forward/backward pairs over a batch of images stored one per row,
// channels last: row r holds image r as (height, width, channels), pixel (y, x, ch) at
// (y * width + x) * channels + ch.
//
// Each image gets its own transform, drawn by draw_transforms from a counter-based stream, so
// the draws do not depend on the thread count or on how the batch is split among threads.
// Geometric transforms are affine maps from an output pixel to the input point it samples
// (Keras's convention: input = A (x, y, 1)); backward is the transpose of the sampling.
#pragma once
#include <cstdint>

#include "lamina/matrix.h"
#include "lamina/random.h"

namespace lamina {

enum class FillMode { Reflect, Wrap, Constant, Nearest };  // Keras's fill_mode
enum class Interpolation { Bilinear, Nearest };

// Which random transform a layer draws (Keras's layer names).
enum class AugmentKind { Flip, Translation, Rotation, Zoom };

// Everything an augmentation layer needs; factors are Keras's (lower, upper) ranges.
struct AugmentSpec {
    index_t height = 0, width = 0, channels = 1;
    bool flip_horizontal = false, flip_vertical = false;  // Flip: each with probability 1/2
    // Translation: fractions of the height / width; Zoom: zoom - 1 (positive zooms out);
    // Rotation: height_* hold the angle range as fractions of 2 pi.
    double height_lower = 0.0, height_upper = 0.0;
    double width_lower = 0.0, width_upper = 0.0;
    bool zoom_keep_aspect = true;  // Zoom without a width factor: the width zooms as the height
    FillMode fill_mode = FillMode::Reflect;
    Interpolation interpolation = Interpolation::Bilinear;
    double fill_value = 0.0;  // Constant fill
};

// Per image: 6 numbers. Flip: (flip x, flip y, 0...) as 0/1; the others: the affine map
// (a0, a1, a2, b0, b1, b2) with x_in = a0 x + a1 y + a2, y_in = b0 x + b1 y + b2.
constexpr index_t kTransformSize = 6;

// transforms (n, kTransformSize) for images [0, n) of a batch, from stream rng.
void draw_transforms(AugmentKind kind, const AugmentSpec& spec, const CounterRng& rng, double* transforms,
                     index_t n);

// out, in: (n, h * w * c); transforms from draw_transforms. out must not alias in.
template <typename T>
void augment_forward(AugmentKind kind, const AugmentSpec& spec, T* out, const T* in, const double* transforms,
                     index_t n);

// din, dout: (n, h * w * c). din = (d out / d in)^T dout for the same transforms; din is
// overwritten (not accumulated) and must not alias dout.
template <typename T>
void augment_backward(AugmentKind kind, const AugmentSpec& spec, T* din, const T* dout, const double* transforms,
                      index_t n);

// out, in: (count). out = in + stddev * N(0, 1), one normal per element from rng; out may alias in.
template <typename T>
void gaussian_noise_forward(T* out, const T* in, index_t count, double stddev, const CounterRng& rng);

}  // namespace lamina
