#include "lamina/augment.h"

#include <algorithm>
#include <cmath>

#include "lamina/thread_team.h"
#include "lamina/threading.h"

namespace lamina {

namespace {

constexpr double kTwoPi = 6.283185307179586;
// Sample coordinates are clamped to this before rounding to an integer, so a cast never
// overflows; any point this far out is outside every image.
constexpr double kFarAway = 4503599627370496.0;  // 2^52

// Draws per image: the counters (r * kDrawsPerImage + k) are image r's.
constexpr std::uint64_t kDrawsPerImage = 4;

// A tap index i along an axis of size n, mapped inside [0, n) by the fill mode, or -1 (Constant:
// the tap reads fill_value). Reflect: (d c b a | a b c d | d c b a); Wrap: (a b c d | a b c d).
index_t fix_index(index_t i, index_t n, FillMode mode) {
    if (i >= 0 && i < n) return i;
    switch (mode) {
        case FillMode::Constant: return -1;
        case FillMode::Nearest: return i < 0 ? 0 : n - 1;
        case FillMode::Wrap: {
            const index_t m = i % n;
            return m < 0 ? m + n : m;
        }
        case FillMode::Reflect: {
            index_t m = i % (2 * n);
            if (m < 0) m += 2 * n;
            return m < n ? m : 2 * n - 1 - m;
        }
    }
    return -1;
}

// floor(v) as an integer, by truncation: std::floor is a library call on baseline x86-64
// (no SSE4.1 round instruction), once per tap coordinate.
index_t floor_index(double v) {
    if (!(v >= -kFarAway)) v = -kFarAway;  // NaN lands here too
    if (v > kFarAway) v = kFarAway;
    const auto i = static_cast<index_t>(v);
    return double(i) > v ? i - 1 : i;
}

// v rounded to the nearest integer, halves to even (as numpy's round, which Keras uses).
index_t round_index(double v) {
    const index_t f = floor_index(v);
    const double d = v - double(f);
    return d > 0.5 || (d == 0.5 && (f & 1) != 0) ? f + 1 : f;
}

// The input pixels (y * width + x, or -1 for the fill value) and weights that output pixel
// (x, y) of an image with transform t samples; returns how many (1 or 4).
// (xs, ys): the input point, t applied to (x, y).
inline int sample_taps(const AugmentSpec& s, double xs, double ys, index_t* pixel, double* weight) {
    if (s.interpolation == Interpolation::Nearest) {
        const index_t xi = fix_index(round_index(xs), s.width, s.fill_mode);
        const index_t yi = fix_index(round_index(ys), s.height, s.fill_mode);
        pixel[0] = xi < 0 || yi < 0 ? -1 : yi * s.width + xi;
        weight[0] = 1.0;
        return 1;
    }
    const index_t x0 = floor_index(xs), y0 = floor_index(ys);
    const double fx = xs - double(x0), fy = ys - double(y0);
    if (x0 >= 0 && x0 + 1 < s.width && y0 >= 0 && y0 + 1 < s.height) {  // inside: no fill mode to apply
        const index_t p = y0 * s.width + x0;
        pixel[0] = p, pixel[1] = p + 1, pixel[2] = p + s.width, pixel[3] = p + s.width + 1;
        weight[0] = (1 - fy) * (1 - fx), weight[1] = (1 - fy) * fx, weight[2] = fy * (1 - fx), weight[3] = fy * fx;
        return 4;
    }
    const index_t xa = fix_index(x0, s.width, s.fill_mode), xb = fix_index(x0 + 1, s.width, s.fill_mode);
    const index_t ya = fix_index(y0, s.height, s.fill_mode), yb = fix_index(y0 + 1, s.height, s.fill_mode);
    const index_t xi[4] = {xa, xb, xa, xb}, yi[4] = {ya, ya, yb, yb};
    const double w[4] = {(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx};
    for (int k = 0; k < 4; ++k) {
        pixel[k] = xi[k] < 0 || yi[k] < 0 ? -1 : yi[k] * s.width + xi[k];
        weight[k] = w[k];
    }
    return 4;
}

// Calls visit(offset, taps, pixel, weight) for every output pixel of one image with transform t,
// offset being the pixel's position in the image's row (y * width + x) * channels.
template <typename Visit>
void each_output_pixel(const AugmentSpec& s, const double* t, Visit visit) {
    index_t pixel[4];
    double weight[4];
    const AugmentSpec local = s;  // kept in registers: the visitor's stores cannot reach it
    for (index_t y = 0; y < local.height; ++y) {
        const double xy = t[1] * double(y) + t[2], yy = t[4] * double(y) + t[5];
        for (index_t x = 0; x < local.width; ++x) {
            const int taps = sample_taps(local, t[0] * double(x) + xy, t[3] * double(x) + yy, pixel, weight);
            visit((y * local.width + x) * local.channels, taps, pixel, weight);
        }
    }
}

double between(double lower, double upper, double u) { return lower + (upper - lower) * u; }

bool parallel_over(index_t n, index_t size) { return n > 1 && n * size >= kParallelMinFlops / 4; }

// out, in: one image (h, w, c) each; the flip t = (flip x, flip y) maps pixels one to one.
template <typename T>
void flip_image(const AugmentSpec& s, T* out, const T* in, const double* t) {
    const index_t h = s.height, w = s.width, c = s.channels;
    const bool fx = t[0] != 0.0, fy = t[1] != 0.0;
    for (index_t y = 0; y < h; ++y) {
        const T* src_row = in + (fy ? h - 1 - y : y) * w * c;
        T* dst_row = out + y * w * c;
        if (c == 1) {  // grey images: whole rows at once
            if (fx)
                std::reverse_copy(src_row, src_row + w, dst_row);
            else
                std::copy(src_row, src_row + w, dst_row);
            continue;
        }
        for (index_t x = 0; x < w; ++x) {
            const T* src = src_row + (fx ? w - 1 - x : x) * c;
            for (index_t ch = 0; ch < c; ++ch) dst_row[x * c + ch] = src[ch];
        }
    }
}

}  // namespace

void draw_transforms(AugmentKind kind, const AugmentSpec& s, const CounterRng& rng, double* transforms, index_t n) {
    const double h = double(s.height), w = double(s.width);
    for (index_t r = 0; r < n; ++r) {
        const std::uint64_t c = static_cast<std::uint64_t>(r) * kDrawsPerImage;
        const double u0 = rng.uniform(c), u1 = rng.uniform(c + 1);
        double* t = transforms + r * kTransformSize;
        std::fill(t, t + kTransformSize, 0.0);
        switch (kind) {
            case AugmentKind::Flip:
                t[0] = s.flip_horizontal && u0 < 0.5 ? 1.0 : 0.0;
                t[1] = s.flip_vertical && u1 < 0.5 ? 1.0 : 0.0;
                break;
            case AugmentKind::Translation: {
                // A positive shift moves the content down / right: output (x, y) reads (x - dx, y - dy).
                const double dy = between(s.height_lower, s.height_upper, u0) * h;
                const double dx = between(s.width_lower, s.width_upper, u1) * w;
                t[0] = 1.0, t[2] = -dx, t[4] = 1.0, t[5] = -dy;
                break;
            }
            case AugmentKind::Rotation: {
                // About the image centre; Keras's matrix (a positive angle turns counter-clockwise).
                const double angle = between(s.height_lower, s.height_upper, u0) * kTwoPi;
                const double cs = std::cos(angle), sn = std::sin(angle);
                t[0] = cs, t[1] = -sn, t[2] = ((w - 1) - (cs * (w - 1) - sn * (h - 1))) / 2;
                t[3] = sn, t[4] = cs, t[5] = ((h - 1) - (sn * (w - 1) + cs * (h - 1))) / 2;
                break;
            }
            case AugmentKind::Zoom: {
                // About the centre; a zoom above 1 reads a larger area (the content shrinks).
                const double zy = 1.0 + between(s.height_lower, s.height_upper, u0);
                const double zx = s.zoom_keep_aspect ? zy : 1.0 + between(s.width_lower, s.width_upper, u1);
                t[0] = zx, t[2] = (w - 1) / 2 * (1 - zx);
                t[4] = zy, t[5] = (h - 1) / 2 * (1 - zy);
                break;
            }
        }
    }
}

template <typename T>
void augment_forward(AugmentKind kind, const AugmentSpec& s, T* out, const T* in, const double* transforms,
                     index_t n) {
    const index_t c = s.channels, size = s.height * s.width * c;
    const T fill = static_cast<T>(s.fill_value);
    parallel_for(parallel_over(n, size), n, [&](index_t r) {
        const double* t = transforms + r * kTransformSize;
        const T* src = in + r * size;
        T* dst = out + r * size;
        if (kind == AugmentKind::Flip) {
            flip_image(s, dst, src, t);
            return;
        }
        each_output_pixel(s, t, [&](index_t offset, int taps, const index_t* pixel, const double* weight) {
            if (taps == 4 && (pixel[0] | pixel[1] | pixel[2] | pixel[3]) >= 0) {  // no fill: the common case
                const T w0 = static_cast<T>(weight[0]), w1 = static_cast<T>(weight[1]),
                        w2 = static_cast<T>(weight[2]), w3 = static_cast<T>(weight[3]);
                const T *p0 = src + pixel[0] * c, *p1 = src + pixel[1] * c, *p2 = src + pixel[2] * c,
                        *p3 = src + pixel[3] * c;
                for (index_t ch = 0; ch < c; ++ch)  // the general loop's order of additions
                    dst[offset + ch] = ((w0 * p0[ch] + w1 * p1[ch]) + w2 * p2[ch]) + w3 * p3[ch];
                return;
            }
            for (index_t ch = 0; ch < c; ++ch) {
                T acc = T(0);
                for (int k = 0; k < taps; ++k)
                    acc += static_cast<T>(weight[k]) * (pixel[k] < 0 ? fill : src[pixel[k] * c + ch]);
                dst[offset + ch] = acc;
            }
        });
    });
}

template <typename T>
void augment_backward(AugmentKind kind, const AugmentSpec& s, T* din, const T* dout, const double* transforms,
                      index_t n) {
    const index_t c = s.channels, size = s.height * s.width * c;
    // Each thread owns whole images: the scatter below never races and its order is fixed.
    parallel_for(parallel_over(n, size), n, [&](index_t r) {
        const double* t = transforms + r * kTransformSize;
        const T* g = dout + r * size;
        T* d = din + r * size;
        if (kind == AugmentKind::Flip) {
            flip_image(s, d, g, t);  // a flip is its own transpose
            return;
        }
        std::fill(d, d + size, T(0));
        each_output_pixel(s, t, [&](index_t offset, int taps, const index_t* pixel, const double* weight) {
            for (int k = 0; k < taps; ++k) {
                if (pixel[k] < 0) continue;  // the fill value is a constant: no gradient
                const T wk = static_cast<T>(weight[k]);
                T* di = d + pixel[k] * c;
                for (index_t ch = 0; ch < c; ++ch) di[ch] += wk * g[offset + ch];
            }
        });
    });
}

template <typename T>
void gaussian_noise_forward(T* out, const T* in, index_t count, double stddev, const CounterRng& rng) {
    // Elements 2p and 2p + 1 take the two normals of counter p.
    const index_t pairs = (count + 1) / 2;
    parallel_for(count >= kParallelMinFlops / 4, pairs, [&](index_t p) {
        double z[2];
        rng.normal_pair(static_cast<std::uint64_t>(p), &z[0], &z[1]);
        for (index_t i = 2 * p; i < std::min(count, 2 * p + 2); ++i)
            out[i] = in[i] + static_cast<T>(stddev * z[i - 2 * p]);
    });
}

#define LAMINA_INSTANTIATE_AUGMENT(T)                                                                      \
    template void augment_forward<T>(AugmentKind, const AugmentSpec&, T*, const T*, const double*, index_t); \
    template void augment_backward<T>(AugmentKind, const AugmentSpec&, T*, const T*, const double*, index_t); \
    template void gaussian_noise_forward<T>(T*, const T*, index_t, double, const CounterRng&);
LAMINA_INSTANTIATE_AUGMENT(float)
LAMINA_INSTANTIATE_AUGMENT(double)

}  // namespace lamina
