// lamina._core: the only file that knows Python. It converts arrays, checks what C++ would
// otherwise trust (shapes, ranges), releases the GIL around the numeric work, and maps
// std::invalid_argument to ValueError.
#include <pybind11/native_enum.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>

#include "lamina/activations.h"
#include "lamina/bf16.h"
#include "lamina/dense.h"
#include "lamina/denormals.h"
#include "lamina/finite.h"
#include "lamina/gemm.h"
#include "lamina/gemm_bf16.h"
#include "lamina/initializers.h"
#include "lamina/losses.h"
#include "lamina/network.h"
#include "lamina/optimizers.h"
#include "lamina/rank_update.h"
#include "lamina/thread_team.h"
#include "lamina/threading.h"
#include "lamina/train.h"

namespace py = pybind11;
using namespace lamina;

namespace {

template <typename T>
using CArray = py::array_t<T, py::array::c_style | py::array::forcecast>;

[[noreturn]] void fail(const std::string& message) { throw std::invalid_argument(message); }

std::string shape_of(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
    return s + (a.ndim() == 1 ? ",)" : ")");
}

template <typename T>
void require_2d(const CArray<T>& a, const char* name, index_t cols = -1) {
    if (a.ndim() != 2) fail(std::string(name) + " must be 2-D, received shape " + shape_of(a));
    if (cols >= 0 && a.shape(1) != cols)
        fail(std::string(name) + " must have " + std::to_string(cols) + " columns, received shape " +
             shape_of(a));
}

// A matrix argument for gemm: 2-D, the given dtype, unit stride along rows; returns its ld.
template <typename T>
index_t leading_dimension(const py::array& a, const char* name) {
    if (!py::isinstance<py::array_t<T>>(a) || a.ndim() != 2)
        fail(std::string(name) + " must be a 2-D array of the same float dtype");
    const auto item = static_cast<py::ssize_t>(sizeof(T));
    if (a.shape(1) > 1 && a.strides(1) != item)
        fail(std::string(name) + " must have unit stride along its last axis");
    if (a.strides(0) < 0 || a.strides(0) % item != 0)
        fail(std::string(name) + " must have a positive row stride");
    const index_t ld = a.strides(0) / item;
    return a.shape(0) > 1 ? ld : std::max<index_t>(ld, a.shape(1));
}

enum class GemmCall { run, naive, plan };

// gemm, its naive twin, or the plan gemm would follow (a dict; c is then not written).
template <typename T>
py::object gemm_binding(bool trans_a, bool trans_b, double alpha, const py::array& a, const py::array& b,
                        double beta, py::array& c, GemmCall call) {
    const index_t lda = leading_dimension<T>(a, "a"), ldb = leading_dimension<T>(b, "b"),
                  ldc = leading_dimension<T>(c, "c");
    if (!c.writeable()) fail("c must be writeable");
    const index_t m = trans_a ? a.shape(1) : a.shape(0), k = trans_a ? a.shape(0) : a.shape(1);
    const index_t kb = trans_b ? b.shape(1) : b.shape(0), n = trans_b ? b.shape(0) : b.shape(1);
    if (k != kb) fail("inner dimensions differ: op(a) is " + std::to_string(m) + "x" + std::to_string(k) +
                      ", op(b) is " + std::to_string(kb) + "x" + std::to_string(n));
    if (c.shape(0) != m || c.shape(1) != n)
        fail("c must have shape (" + std::to_string(m) + ", " + std::to_string(n) + "), received " + shape_of(c));
    const T* A = static_cast<const T*>(a.data());
    const T* B = static_cast<const T*>(b.data());
    T* C = static_cast<T*>(c.mutable_data());
    ThreadScope threads(0);  // the process-wide count, which the plan reports too
    if (call == GemmCall::plan) {
        const GemmPlan plan = gemm_plan<T>(trans_a, trans_b, m, n, k, static_cast<T>(alpha), A, lda, B, ldb,
                                           static_cast<T>(beta));
        py::dict out;
        out["path"] = gemm_path_name(plan.path);
        out["split"] = gemm_split_name(plan.split);
        out["threads"] = plan.threads;
        out["transposed"] = plan.transposed;
        out["kernel"] = gemm_kernel_name();
        return std::move(out);
    }
    py::gil_scoped_release release;
    if (call == GemmCall::naive)
        gemm_naive<T>(trans_a, trans_b, m, n, k, static_cast<T>(alpha), A, lda, B, ldb, static_cast<T>(beta), C, ldc);
    else
        gemm<T>(trans_a, trans_b, m, n, k, static_cast<T>(alpha), A, lda, B, ldb, static_cast<T>(beta), C, ldc);
    return py::none();
}

template <typename T>
py::array_t<T> new_like_2d(index_t rows, index_t cols) {
    return py::array_t<T>({static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(cols)});
}

// None, or one weight per row as a contiguous T array (the values are the core's to check:
// check_sample_weights). Keeps the converted array alive for the call.
template <typename T>
struct Weights {
    CArray<T> array;
    const T* data = nullptr;
};

template <typename T>
Weights<T> sample_weights(const py::object& w, index_t rows) {
    Weights<T> out;
    if (w.is_none()) return out;
    out.array = w.cast<CArray<T>>();
    if (out.array.ndim() != 1 || out.array.shape(0) != rows)
        fail("sample_weight must have shape (" + std::to_string(rows) + ",), one weight per row, received shape " +
             shape_of(out.array));
    out.data = out.array.data();
    return out;
}

// --- kernel entry points used by the reference tests --------------------------------------

template <typename T>
py::array_t<T> activation_forward_binding(Activation act, const CArray<T>& z) {
    require_2d(z, "z");
    auto a = new_like_2d<T>(z.shape(0), z.shape(1));
    activation_forward(act, a.mutable_data(), z.data(), z.shape(0), z.shape(1));
    return a;
}

template <typename T>
py::array_t<T> activation_backward_binding(Activation act, const CArray<T>& da,
                                           const CArray<T>& z, const CArray<T>& a) {
    require_2d(da, "da");
    require_2d(z, "z", da.shape(1));
    require_2d(a, "a", da.shape(1));
    if (z.shape(0) != da.shape(0) || a.shape(0) != da.shape(0)) fail("da, z and a must have the same shape");
    auto dz = new_like_2d<T>(da.shape(0), da.shape(1));
    activation_backward(act, dz.mutable_data(), da.data(), z.data(), a.data(),
                        da.shape(0), da.shape(1));
    return dz;
}

template <typename T>
void check_targets(Loss loss, const CArray<T>& p, const CArray<T>& y) {
    require_2d(p, "p");
    require_2d(y, "y", loss_is_sparse(loss) ? 1 : p.shape(1));
    if (y.shape(0) != p.shape(0)) fail("p and y must have the same number of rows");
    if (loss_is_sparse(loss))
        for (index_t r = 0; r < y.shape(0); ++r)
            if (!(y.data()[r] >= 0 && y.data()[r] < p.shape(1))) fail("label out of range");
}

template <typename T>
py::tuple loss_binding(Loss loss, const CArray<T>& p, const CArray<T>& y, double delta,
                       double scale, const py::object& sample_weight) {
    check_targets(loss, p, y);
    const auto w = sample_weights<T>(sample_weight, p.shape(0));
    if (w.data) check_sample_weights(w.data, p.shape(0));
    auto dp = new_like_2d<T>(p.shape(0), p.shape(1));
    const double value = loss_sum(loss, p.data(), y.data(), p.shape(0), p.shape(1), delta, w.data);
    loss_backward(loss, dp.mutable_data(), p.data(), y.data(), p.shape(0), p.shape(1), delta,
                  static_cast<T>(scale), w.data);
    return py::make_tuple(value, dp);
}

template <typename T>
py::tuple fused_loss_binding(Loss loss, const CArray<T>& z, const CArray<T>& y, double scale,
                             const py::object& sample_weight) {
    check_targets(loss, z, y);
    const auto w = sample_weights<T>(sample_weight, z.shape(0));
    if (w.data) check_sample_weights(w.data, z.shape(0));
    auto dz = new_like_2d<T>(z.shape(0), z.shape(1));
    double value;
    if (loss == Loss::BinaryCrossentropy)
        value = sigmoid_binary_cross_entropy(dz.mutable_data(), z.data(), y.data(), z.shape(0), z.shape(1),
                                             static_cast<T>(scale), w.data);
    else if (loss == Loss::CategoricalCrossentropy || loss == Loss::SparseCategoricalCrossentropy)
        value = softmax_cross_entropy(dz.mutable_data(), z.data(), y.data(), z.shape(0), z.shape(1),
                                      loss_is_sparse(loss), static_cast<T>(scale), w.data);
    else
        fail("only the cross-entropies have a fused form, received loss=" + py::str(py::cast(loss)).cast<std::string>());
    return py::make_tuple(value, dz);
}

template <typename T>
py::object dense_forward_binding(const CArray<T>& x, const CArray<T>& W, const py::object& b,
                                 std::optional<Activation> activation) {
    require_2d(x, "x");
    require_2d(W, "W");
    if (W.shape(0) != x.shape(1)) fail("W must have x.shape[1] rows, received shape " + shape_of(W));
    CArray<T> bias;
    if (!b.is_none()) {
        bias = b.cast<CArray<T>>();
        if (bias.ndim() != 1 || bias.shape(0) != W.shape(1)) fail("b must have shape (units,)");
    }
    auto z = new_like_2d<T>(x.shape(0), W.shape(1));
    const T* bp = b.is_none() ? nullptr : bias.data();
    if (!activation) {
        dense_forward(z.mutable_data(), x.data(), W.data(), bp, x.shape(0), x.shape(1), W.shape(1));
        return z;
    }
    const Activation act = *activation;
    if (!is_elementwise(act)) fail("activation must be elementwise, received activation=" + py::str(py::cast(act)).cast<std::string>());
    auto a = new_like_2d<T>(x.shape(0), W.shape(1));
    dense_forward(z.mutable_data(), x.data(), W.data(), bp, x.shape(0), x.shape(1), W.shape(1), act,
                  a.mutable_data());
    return py::make_tuple(z, a);
}

template <typename T>
py::tuple dense_backward_binding(const CArray<T>& dz, const CArray<T>& x, const CArray<T>& W) {
    require_2d(dz, "dz");
    require_2d(x, "x");
    require_2d(W, "W", dz.shape(1));
    if (x.shape(0) != dz.shape(0) || W.shape(0) != x.shape(1)) fail("dz, x and W shapes do not fit");
    auto dx = new_like_2d<T>(x.shape(0), x.shape(1));
    auto dW = new_like_2d<T>(W.shape(0), W.shape(1));
    py::array_t<T> db(W.shape(1));
    dense_backward(dx.mutable_data(), dW.mutable_data(), db.mutable_data(), dz.data(), x.data(), W.data(),
                   x.shape(0), x.shape(1), W.shape(1));
    return py::make_tuple(dx, dW, db);
}

template <typename T>
py::array_t<T> rank_update_binding(const CArray<T>& x, const CArray<T>& dz) {
    require_2d(x, "x");
    require_2d(dz, "dz");
    if (x.shape(0) != dz.shape(0)) fail("x and dz must have the same number of rows");
    auto g = new_like_2d<T>(x.shape(1), dz.shape(1));
    rank_n_rows(g.mutable_data(), x.data(), x.shape(1), dz.data(), dz.shape(1), x.shape(0), x.shape(1));
    return g;
}

template <typename T>
py::array_t<T> initialize_binding(InitKind kind, index_t count, index_t fan_in, index_t fan_out,
                                  double value, double value2, std::uint64_t seed, std::uint64_t stream) {
    if (count < 0) fail("count must be non-negative");
    py::array_t<T> w(count);
    initialize(w.mutable_data(), count, fan_in, fan_out, Initializer{kind, value, value2}, seed, stream);
    return w;
}

template <typename T>
bool all_finite(const py::array& a) {
    auto c = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(a);
    const T* p = c.data();
    const index_t n = c.size();
    py::gil_scoped_release release;
    ThreadScope threads(0);
    return lamina::all_finite(p, n);
}

// a *= factor in place, for a writable C-contiguous float array (a step's gradient block in a hook).
template <typename T>
void scale_in_place(py::array& a, double factor) {
    T* p = static_cast<T*>(a.mutable_data());
    const index_t n = a.size();
    const T f = static_cast<T>(factor);
    py::gil_scoped_release release;
    for (index_t i = 0; i < n; ++i) p[i] = factor == 0.0 ? T(0) : p[i] * f;  // 0 clears NaN too
}

// --- typed contracts: the enums and structs that cross the binding --------------------------
// Enum members carry the Python names, so Python's name lists come from here. Struct
// constructors take every field by keyword with no default: the defaults live in Python alone.

void bind_contracts(py::module_& m) {
    py::native_enum<Activation>(m, "Activation", "enum.Enum")
        .value("linear", Activation::Linear)
        .value("relu", Activation::Relu)
        .value("leaky_relu", Activation::LeakyRelu)
        .value("elu", Activation::Elu)
        .value("sigmoid", Activation::Sigmoid)
        .value("tanh", Activation::Tanh)
        .value("softmax", Activation::Softmax)
        .value("softplus", Activation::Softplus)
        .value("gelu", Activation::Gelu)
        .finalize();
    py::native_enum<Loss>(m, "Loss", "enum.Enum")
        .value("mean_squared_error", Loss::MeanSquaredError)
        .value("mean_absolute_error", Loss::MeanAbsoluteError)
        .value("huber", Loss::Huber)
        .value("binary_crossentropy", Loss::BinaryCrossentropy)
        .value("categorical_crossentropy", Loss::CategoricalCrossentropy)
        .value("sparse_categorical_crossentropy", Loss::SparseCategoricalCrossentropy)
        .finalize();
    py::native_enum<OptimizerKind>(m, "OptimizerKind", "enum.Enum")
        .value("sgd", OptimizerKind::SGD)
        .value("rmsprop", OptimizerKind::RMSprop)
        .value("adagrad", OptimizerKind::Adagrad)
        .value("adam", OptimizerKind::Adam)
        .value("adamw", OptimizerKind::AdamW)
        .finalize();
    py::native_enum<MetricMode>(m, "MetricMode", "enum.Enum")
        .value("none", MetricMode::None)
        .value("argmax_onehot", MetricMode::ArgmaxOneHot)
        .value("argmax_sparse", MetricMode::ArgmaxSparse)
        .value("threshold", MetricMode::Threshold)
        .finalize();
    py::native_enum<InitKind>(m, "InitKind", "enum.Enum")
        .value("glorot_uniform", InitKind::GlorotUniform)
        .value("glorot_normal", InitKind::GlorotNormal)
        .value("he_uniform", InitKind::HeUniform)
        .value("he_normal", InitKind::HeNormal)
        .value("lecun_uniform", InitKind::LecunUniform)
        .value("lecun_normal", InitKind::LecunNormal)
        .value("zeros", InitKind::Zeros)
        .value("ones", InitKind::Ones)
        .value("constant", InitKind::Constant)
        .value("random_normal", InitKind::RandomNormal)
        .value("random_uniform", InitKind::RandomUniform)
        .value("truncated_normal", InitKind::TruncatedNormal)
        .finalize();
    py::native_enum<LayerKind>(m, "LayerKind", "enum.Enum")
        .value("dense", LayerKind::Dense)
        .value("dropout", LayerKind::Dropout)
        .value("activation", LayerKind::Activation)
        .value("random_flip", LayerKind::RandomFlip)
        .value("random_translation", LayerKind::RandomTranslation)
        .value("random_rotation", LayerKind::RandomRotation)
        .value("random_zoom", LayerKind::RandomZoom)
        .value("gaussian_noise", LayerKind::GaussianNoise)
        .value("batch_normalization", LayerKind::BatchNormalization)
        .value("layer_normalization", LayerKind::LayerNormalization)
        .finalize();
    py::native_enum<FillMode>(m, "FillMode", "enum.Enum")
        .value("reflect", FillMode::Reflect)
        .value("wrap", FillMode::Wrap)
        .value("constant", FillMode::Constant)
        .value("nearest", FillMode::Nearest)
        .finalize();
    py::native_enum<Interpolation>(m, "Interpolation", "enum.Enum")
        .value("bilinear", Interpolation::Bilinear)
        .value("nearest", Interpolation::Nearest)
        .finalize();

    py::class_<AugmentSpec>(m, "AugmentSpec", "An augmentation layer's image shape (h, w, c) and Keras factors.")
        .def(py::init([](index_t height, index_t width, index_t channels, bool flip_horizontal, bool flip_vertical,
                         double height_lower, double height_upper, double width_lower, double width_upper,
                         bool zoom_keep_aspect, FillMode fill_mode, Interpolation interpolation, double fill_value) {
                 AugmentSpec a;
                 a.height = height;
                 a.width = width;
                 a.channels = channels;
                 a.flip_horizontal = flip_horizontal;
                 a.flip_vertical = flip_vertical;
                 a.height_lower = height_lower;
                 a.height_upper = height_upper;
                 a.width_lower = width_lower;
                 a.width_upper = width_upper;
                 a.zoom_keep_aspect = zoom_keep_aspect;
                 a.fill_mode = fill_mode;
                 a.interpolation = interpolation;
                 a.fill_value = fill_value;
                 return a;
             }),
             py::kw_only(), py::arg("height"), py::arg("width"), py::arg("channels"), py::arg("flip_horizontal"),
             py::arg("flip_vertical"), py::arg("height_lower"), py::arg("height_upper"), py::arg("width_lower"),
             py::arg("width_upper"), py::arg("zoom_keep_aspect"), py::arg("fill_mode"), py::arg("interpolation"),
             py::arg("fill_value"))
        .def_readwrite("height", &AugmentSpec::height)
        .def_readwrite("width", &AugmentSpec::width)
        .def_readwrite("channels", &AugmentSpec::channels)
        .def_readwrite("flip_horizontal", &AugmentSpec::flip_horizontal)
        .def_readwrite("flip_vertical", &AugmentSpec::flip_vertical)
        .def_readwrite("height_lower", &AugmentSpec::height_lower)
        .def_readwrite("height_upper", &AugmentSpec::height_upper)
        .def_readwrite("width_lower", &AugmentSpec::width_lower)
        .def_readwrite("width_upper", &AugmentSpec::width_upper)
        .def_readwrite("zoom_keep_aspect", &AugmentSpec::zoom_keep_aspect)
        .def_readwrite("fill_mode", &AugmentSpec::fill_mode)
        .def_readwrite("interpolation", &AugmentSpec::interpolation)
        .def_readwrite("fill_value", &AugmentSpec::fill_value);

    py::class_<Initializer>(m, "Initializer", "An initializer rule and its two parameters.")
        .def(py::init([](InitKind kind, double value, double value2) { return Initializer{kind, value, value2}; }),
             py::kw_only(), py::arg("kind"), py::arg("value"), py::arg("value2"))
        .def_readwrite("kind", &Initializer::kind)
        .def_readwrite("value", &Initializer::value)
        .def_readwrite("value2", &Initializer::value2);

    // A normalization layer's spec, after checking epsilon (the layers share these fields).
    const auto normalization_spec = [](LayerKind kind, double epsilon, bool center, bool scale) {
        if (!(epsilon > 0.0 && std::isfinite(epsilon)))
            fail("epsilon must be positive and finite, received epsilon=" + std::to_string(epsilon));
        LayerSpec s;
        s.kind = kind;
        s.epsilon = epsilon;
        s.center = center;
        s.scale = scale;
        return s;
    };
    py::class_<LayerSpec>(m, "LayerSpec",
                          "One layer as the core builds it; make it with dense(), dropout(), activation_layer(),\n"
                          "augmentation(), gaussian_noise(), batch_normalization() or layer_normalization().")
        .def_static("dense", [](index_t units, Activation activation, bool use_bias, const Initializer& kernel_initializer,
                                const Initializer& bias_initializer, double l1, double l2) {
            if (units <= 0) fail("units must be positive, received units=" + std::to_string(units));
            LayerSpec s;
            s.kind = LayerKind::Dense;
            s.units = units;
            s.activation = activation;
            s.use_bias = use_bias;
            s.kernel_init = kernel_initializer;
            s.bias_init = bias_initializer;
            s.l1 = l1;
            s.l2 = l2;
            return s;
        }, py::kw_only(), py::arg("units"), py::arg("activation"), py::arg("use_bias"), py::arg("kernel_initializer"),
           py::arg("bias_initializer"), py::arg("l1"), py::arg("l2"))
        .def_static("dropout", [](double rate) {
            if (!(rate >= 0.0 && rate < 1.0)) fail("rate must be in [0, 1), received rate=" + std::to_string(rate));
            LayerSpec s;
            s.kind = LayerKind::Dropout;
            s.rate = rate;
            return s;
        }, py::kw_only(), py::arg("rate"))
        .def_static("activation_layer", [](Activation activation) {
            LayerSpec s;
            s.kind = LayerKind::Activation;
            s.activation = activation;
            return s;
        }, py::kw_only(), py::arg("activation"))
        .def_static("augmentation", [](LayerKind kind, const AugmentSpec& augment) {
            AugmentKind which;
            if (!augment_kind(kind, &which))
                fail("kind must be a random_* layer kind, received kind=" + py::str(py::cast(kind)).cast<std::string>());
            LayerSpec s;
            s.kind = kind;
            s.augment = augment;
            return s;
        }, py::kw_only(), py::arg("kind"), py::arg("augment"))
        .def_static("gaussian_noise", [](double stddev) {
            if (!(stddev >= 0.0 && std::isfinite(stddev)))
                fail("stddev must be finite and non-negative, received stddev=" + std::to_string(stddev));
            LayerSpec s;
            s.kind = LayerKind::GaussianNoise;
            s.stddev = stddev;
            return s;
        }, py::kw_only(), py::arg("stddev"))
        .def_static("batch_normalization", [normalization_spec](double momentum, double epsilon, bool center,
                                                                bool scale) {
            if (!(momentum >= 0.0 && momentum <= 1.0))
                fail("momentum must be in [0, 1], received momentum=" + std::to_string(momentum));
            LayerSpec s = normalization_spec(LayerKind::BatchNormalization, epsilon, center, scale);
            s.momentum = momentum;
            return s;
        }, py::kw_only(), py::arg("momentum"), py::arg("epsilon"), py::arg("center"), py::arg("scale"))
        .def_static("layer_normalization", [normalization_spec](double epsilon, bool center, bool scale) {
            return normalization_spec(LayerKind::LayerNormalization, epsilon, center, scale);
        }, py::kw_only(), py::arg("epsilon"), py::arg("center"), py::arg("scale"))
        .def_readonly("kind", &LayerSpec::kind)
        .def_readwrite("units", &LayerSpec::units)
        .def_readwrite("activation", &LayerSpec::activation)
        .def_readwrite("use_bias", &LayerSpec::use_bias)
        .def_readwrite("kernel_initializer", &LayerSpec::kernel_init)
        .def_readwrite("bias_initializer", &LayerSpec::bias_init)
        .def_readwrite("l1", &LayerSpec::l1)
        .def_readwrite("l2", &LayerSpec::l2)
        .def_readwrite("rate", &LayerSpec::rate)
        .def_readwrite("augment", &LayerSpec::augment)
        .def_readwrite("stddev", &LayerSpec::stddev)
        .def_readwrite("epsilon", &LayerSpec::epsilon)
        .def_readwrite("momentum", &LayerSpec::momentum)
        .def_readwrite("center", &LayerSpec::center)
        .def_readwrite("scale", &LayerSpec::scale);

    py::class_<LossConfig>(m, "LossConfig", "The loss the network trains on.")
        .def(py::init([](Loss kind, bool from_logits, double delta) { return LossConfig{kind, from_logits, delta}; }),
             py::kw_only(), py::arg("kind"), py::arg("from_logits"), py::arg("delta"))
        .def_readwrite("kind", &LossConfig::kind)
        .def_readwrite("from_logits", &LossConfig::from_logits)
        .def_readwrite("delta", &LossConfig::delta);

    py::class_<OptimizerConfig>(m, "OptimizerConfig", "Every optimizer hyperparameter; 0 turns a clip off.")
        .def(py::init([](OptimizerKind kind, double learning_rate, double momentum, bool nesterov, double rho,
                         bool centered, double beta_1, double beta_2, bool amsgrad, double epsilon,
                         double initial_accumulator_value, double weight_decay, double clipnorm, double clipvalue,
                         double global_clipnorm) {
                 OptimizerConfig c;
                 c.kind = kind;
                 c.learning_rate = learning_rate;
                 c.momentum = momentum;
                 c.nesterov = nesterov;
                 c.rho = rho;
                 c.centered = centered;
                 c.beta_1 = beta_1;
                 c.beta_2 = beta_2;
                 c.amsgrad = amsgrad;
                 c.epsilon = epsilon;
                 c.initial_accumulator_value = initial_accumulator_value;
                 c.weight_decay = weight_decay;
                 c.clipnorm = clipnorm;
                 c.clipvalue = clipvalue;
                 c.global_clipnorm = global_clipnorm;
                 return c;
             }),
             py::kw_only(), py::arg("kind"), py::arg("learning_rate"), py::arg("momentum"), py::arg("nesterov"),
             py::arg("rho"), py::arg("centered"), py::arg("beta_1"), py::arg("beta_2"), py::arg("amsgrad"),
             py::arg("epsilon"), py::arg("initial_accumulator_value"), py::arg("weight_decay"), py::arg("clipnorm"),
             py::arg("clipvalue"), py::arg("global_clipnorm"))
        .def_readwrite("kind", &OptimizerConfig::kind)
        .def_readwrite("learning_rate", &OptimizerConfig::learning_rate)
        .def_readwrite("momentum", &OptimizerConfig::momentum)
        .def_readwrite("nesterov", &OptimizerConfig::nesterov)
        .def_readwrite("rho", &OptimizerConfig::rho)
        .def_readwrite("centered", &OptimizerConfig::centered)
        .def_readwrite("beta_1", &OptimizerConfig::beta_1)
        .def_readwrite("beta_2", &OptimizerConfig::beta_2)
        .def_readwrite("amsgrad", &OptimizerConfig::amsgrad)
        .def_readwrite("epsilon", &OptimizerConfig::epsilon)
        .def_readwrite("initial_accumulator_value", &OptimizerConfig::initial_accumulator_value)
        .def_readwrite("weight_decay", &OptimizerConfig::weight_decay)
        .def_readwrite("clipnorm", &OptimizerConfig::clipnorm)
        .def_readwrite("clipvalue", &OptimizerConfig::clipvalue)
        .def_readwrite("global_clipnorm", &OptimizerConfig::global_clipnorm);
}

// --- the network ----------------------------------------------------------------------------------

template <typename T>
struct Checked {
    CArray<T> x, y;
    index_t rows, ycols;
};

// Checks x and y against the network before any C++ loop trusts them.
template <typename T>
Checked<T> check_data(Network<T>& net, const CArray<T>& x, const CArray<T>& y) {
    require_2d(x, "x", net.input_dim());
    require_2d(y, "y");
    const bool sparse = loss_is_sparse(net.loss().kind);
    const index_t want = sparse ? 1 : net.output_dim();
    if (y.shape(1) != want)
        fail("y must have " + std::to_string(want) + " columns, received shape " + shape_of(y));
    if (y.shape(0) != x.shape(0)) fail("x and y must have the same number of rows");
    // Label values (and the metric mode's layout) are checked by the core: Network::check_targets.
    return {x, y, x.shape(0), y.shape(1)};
}

template <typename T>
py::array_t<T> view_of(T* data, index_t size, py::handle owner) {
    return py::array_t<T>({static_cast<py::ssize_t>(size)}, {static_cast<py::ssize_t>(sizeof(T))}, data, owner);
}

// Runs fn with the GIL released and the network's lock held, so calls that change a network from
// different Python threads take turns (a running fit or evaluate holds the same lock).
template <typename Net, typename Fn>
auto serialized(Net& net, Fn fn) {
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(net.mutex());
    return fn();
}

// --- the gradient hook: a Python callable on the step's gradient block -----------------------------

// Calls fn(grad, step) with the GIL held; grad is a writable view of the network's gradient
// block, kept alive by the network's Python object (owner: a borrowed handle, valid because the
// network owns this hook). A Python exception leaves the step (see GradientHook) and reaches
// the caller of train_batches as itself.
template <typename T>
class PyGradientHook final : public GradientHook<T> {
public:
    PyGradientHook(py::function fn, py::handle owner) : fn_(std::move(fn)), owner_(owner) {}
    ~PyGradientHook() override {
        py::gil_scoped_acquire gil;
        fn_ = py::function();
    }
    void on_gradient(T* grad, index_t size, const StepInfo& step) override {
        py::gil_scoped_acquire gil;
        fn_(view_of(grad, size, owner_), step.step);
    }

private:
    py::function fn_;
    py::handle owner_;
};

template <typename T>
void set_gradient_hook(py::object self, const py::object& fn) {
    Network<T>& net = self.cast<Network<T>&>();
    if (!fn.is_none() && !PyCallable_Check(fn.ptr()))
        throw py::type_error("gradient hook must be callable or None, received " + std::string(py::repr(fn)));
    std::shared_ptr<GradientHook<T>> hook;
    if (!fn.is_none()) hook = std::make_shared<PyGradientHook<T>>(fn.cast<py::function>(), self);
    py::gil_scoped_release release;  // the old hook's destructor takes the GIL back itself
    std::lock_guard<std::mutex> lock(net.mutex());
    net.set_gradient_hook(std::move(hook));
}

template <typename T>
void bind_network(py::module_& m, const char* name) {
    using Net = Network<T>;
    py::class_<Net>(m, name)
        .def(py::init([](index_t input_dim, std::vector<LayerSpec> layers, std::uint64_t seed) {
                 return new Net(input_dim, std::move(layers), seed);
             }),
             py::arg("input_dim"), py::arg("layers"), py::arg("seed"))
        .def_property_readonly("input_dim", &Net::input_dim)
        .def_property_readonly("output_dim", &Net::output_dim)
        .def_property_readonly("param_count", &Net::param_count)
        .def_property_readonly("seed", &Net::seed)
        .def_readwrite("steps", &Net::steps)
        .def_readwrite("track_gradient_norms", &Net::track_gradient_norms)
        .def_property("dropout_row_offset", [](const Net& net) { return net.dropout_row_offset; }, [](Net& net, index_t r) {
            // Bounded so offset * width stays far inside the 64-bit mask counter.
            constexpr index_t kMaxOffset = index_t(1) << 40;
            if (r < 0 || r > kMaxOffset)
                fail("dropout_row_offset must be in [0, 2^40], received " + std::to_string(r));
            serialized(net, [&] { net.dropout_row_offset = r; });
        }, "Rows before this batch in a larger one (distributed training): dropout draws that batch's masks.")
        .def("parameters", [](py::object self) {
            Net& net = self.cast<Net&>();
            return view_of(net.params(), net.param_count(), self);
        }, "The parameter block as a writable 1-D view (no copy).")
        .def("gradients", [](py::object self) {
            Net& net = self.cast<Net&>();
            T* grads;
            {
                py::gil_scoped_release release;
                std::lock_guard<std::mutex> lock(net.mutex());
                grads = net.grads();  // forms a fused step's kernel gradients first
            }
            return view_of(grads, net.param_count(), self);
        }, "The gradient block of the last step as a writable 1-D view (no copy).")
        .def("set_trainable", [](Net& net, index_t dense_index, bool trainable) {
            py::gil_scoped_release release;
            std::lock_guard<std::mutex> lock(net.mutex());
            net.set_trainable(dense_index, trainable);
        }, py::arg("dense_index"), py::arg("trainable"),
           "Freezes (False) or unfreezes Dense layer dense_index: the update skips its tensors.")
        .def("set_norm_trainable", [](Net& net, index_t norm_index, bool trainable) {
            py::gil_scoped_release release;
            std::lock_guard<std::mutex> lock(net.mutex());
            net.set_norm_trainable(norm_index, trainable);
        }, py::arg("norm_index"), py::arg("trainable"),
           "Freezes (False) or unfreezes normalization layer norm_index: the update skips gamma and beta,\n"
           "and a BatchNormalization normalizes with its moving statistics.")
        .def("norm_params", [](Net& net) {
            py::list out;
            for (const auto& p : net.norm_params())
                out.append(py::dict(py::arg("layer") = p.layer, py::arg("features") = p.features,
                                    py::arg("gamma_offset") = p.gamma_offset, py::arg("beta_offset") = p.beta_offset,
                                    py::arg("mean_offset") = p.mean_offset, py::arg("var_offset") = p.var_offset));
            return out;
        }, "Each normalization layer's offsets in the parameter block (-1: absent).")
        .def("folded_batch_norms", &Net::folded_batch_norms,
             "The layers (indices) that are a BatchNormalization run, outside training, in the epilogue of\n"
             "the linear Dense before it (same bits as running it on its own).")
        .def("set_gradient_hook", &set_gradient_hook<T>, py::arg("hook"),
             "hook(gradient, step) is called once per training step with the whole gradient block\n"
             "(a writable view, valid during the call) before clipping and the update; None removes it.")
        .def("dense_params", [](Net& net) {
            py::list out;
            for (const auto& d : net.dense_params())
                out.append(py::dict(py::arg("layer") = d.layer, py::arg("inputs") = d.in, py::arg("units") = d.units,
                                    py::arg("kernel_offset") = d.kernel_offset, py::arg("bias_offset") = d.bias_offset));
            return out;
        })
        .def("set_loss", [](Net& net, const LossConfig& loss) { serialized(net, [&] { net.set_loss(loss); }); },
             py::arg("loss"))
        .def("loss_config", [](Net& net) { return serialized(net, [&] { return net.loss(); }); },
             "A copy of the loss the network trains on.")
        .def("set_metric_mode", [](Net& net, MetricMode mode) { serialized(net, [&] { net.set_metric_mode(mode); }); },
             py::arg("mode"))
        .def_property("num_threads", [](const Net& net) { return net.num_threads; }, [](Net& net, int n) {
            if (n < 0 || n > max_threads())
                fail("num_threads must be 0 (the process-wide count) or in [1, " + std::to_string(max_threads()) +
                     "], received num_threads=" + std::to_string(n));
            net.num_threads = n;
        })
        .def_property("bf16_products", [](const Net& net) { return net.bf16_products(); }, [](Net& net, bool on) {
            serialized(net, [&] { net.set_bf16_products(on); });
        }, "dtype='mixed_bfloat16': every Dense product with bfloat16 operands and float32 accumulation "
           "(float32 networks only).")
        .def("set_optimizer", [](Net& net, const OptimizerConfig& config) {
            serialized(net, [&] { net.optimizer().configure(config, net.param_count()); });
        }, py::arg("config"))
        .def("optimizer_config", [](Net& net) { return serialized(net, [&] { return net.optimizer().config(); }); },
             "A copy of the optimizer configuration the core holds.")
        .def_property("learning_rate",
                      [](Net& net) { return net.optimizer().config().learning_rate; },
                      [](Net& net, double lr) { serialized(net, [&] { net.optimizer().set_learning_rate(lr); }); })
        .def_property("iterations",
                      [](Net& net) { return net.optimizer().iterations; },
                      [](Net& net, std::int64_t it) { serialized(net, [&] { net.optimizer().iterations = it; }); })
        .def("optimizer_slots", [](Net& net) {
            py::list out;
            for (const auto& s : net.optimizer().slots) {
                py::array_t<T> copy(static_cast<py::ssize_t>(s.size()));
                std::copy(s.begin(), s.end(), copy.mutable_data());
                out.append(copy);
            }
            return out;
        }, "Copies of the optimizer's state vectors (empty ones for unused slots).")
        .def("set_optimizer_slots", [](Net& net, const py::list& slots) {
            auto& own = net.optimizer().slots;
            if (slots.size() != own.size()) fail("expected " + std::to_string(own.size()) + " optimizer slots");
            std::vector<CArray<T>> arrays;
            for (std::size_t i = 0; i < own.size(); ++i) {
                arrays.push_back(slots[i].cast<CArray<T>>());
                if (static_cast<std::size_t>(arrays.back().size()) != own[i].size())
                    fail("optimizer slot " + std::to_string(i) + " has the wrong size");
            }
            serialized(net, [&] {
                for (std::size_t i = 0; i < own.size(); ++i)
                    std::copy(arrays[i].data(), arrays[i].data() + arrays[i].size(), own[i].begin());
            });
        }, py::arg("slots"))
        .def("regularization_penalty", &Net::regularization_penalty)
        .def("train_batches", [](Net& net, BatchStats& stats, const CArray<T>& x, const CArray<T>& y,
                                 const py::object& order, index_t first, index_t batch_size, index_t n_batches,
                                 const py::object& sample_weight, bool empty_steps) {
            auto data = check_data(net, x, y);
            const auto w = sample_weights<T>(sample_weight, data.rows);
            if (batch_size <= 0 || n_batches < 0 || first < 0) fail("batch_size, n_batches and first must be positive");
            py::array_t<std::int64_t, py::array::c_style | py::array::forcecast> ord;
            const std::int64_t* order_ptr = nullptr;
            if (!order.is_none()) {
                ord = order.cast<decltype(ord)>();
                if (ord.ndim() != 1 || ord.shape(0) != data.rows) fail("order must be a permutation of the rows");
                order_ptr = ord.data();
                const index_t end = std::min(data.rows, first + batch_size * n_batches);
                for (index_t i = first; i < end; ++i)
                    if (order_ptr[i] < 0 || order_ptr[i] >= data.rows) fail("order holds an index out of range");
            }
            py::gil_scoped_release release;
            ThreadScope threads(net.num_threads);
            std::lock_guard<std::mutex> lock(net.mutex());
            train_batches(net, stats, data.x.data(), data.y.data(), data.ycols, order_ptr, data.rows, first,
                          batch_size, n_batches, w.data, empty_steps);
        }, py::arg("stats"), py::arg("x"), py::arg("y"), py::arg("order"), py::arg("first"),
           py::arg("batch_size"), py::arg("n_batches"), py::arg("sample_weight") = py::none(),
           py::arg("empty_steps") = false,
           "n_batches steps from position first of order (None: the rows in order). sample_weight: None or\n"
           "one weight per row of x (gathered with the rows, so shuffled with them). With empty_steps,\n"
           "batches past the end of the data are zero-row steps (hook and update still run).")
        .def("train_batch_list", [](Net& net, BatchStats& stats, const py::list& batches) {
            // Delivered batches (a Dataset's, a generator's), one step each, in one call: the
            // thread team stays awake from one to the next. All are checked before the first step.
            struct Batch {
                Checked<T> data;
                Weights<T> w;
            };
            std::vector<Batch> list;
            for (const py::handle item : batches) {
                const auto t = py::reinterpret_borrow<py::object>(item);
                if (!py::isinstance<py::tuple>(t) || py::len(t) != 3)
                    fail("each batch must be a tuple (x, y, sample_weight or None)");
                const auto parts = t.cast<py::tuple>();
                auto data = check_data(net, parts[0].cast<CArray<T>>(), parts[1].cast<CArray<T>>());
                if (data.rows == 0) fail("a batch must have at least one row");
                auto w = sample_weights<T>(parts[2], data.rows);
                list.push_back(Batch{std::move(data), std::move(w)});
            }
            py::gil_scoped_release release;
            ThreadScope threads(net.num_threads);
            std::lock_guard<std::mutex> lock(net.mutex());
            for (const Batch& b : list) {
                net.check_targets(b.data.y.data(), b.data.rows, b.data.ycols);
                if (b.w.data) check_sample_weights(b.w.data, b.data.rows);
            }
            with_team([&] {  // one team for all the steps
                for (const Batch& b : list)  // checked above, all before the first step
                    train_checked_batches(net, stats, b.data.x.data(), b.data.y.data(), b.data.ycols, nullptr,
                                          b.data.rows, 0, b.data.rows, 1, b.w.data);
            });
        }, py::arg("stats"), py::arg("batches"),
           "One training step per (x, y, sample_weight or None) batch, in order, in one call with the GIL released.")
        .def("evaluate", [](Net& net, BatchStats& stats, const CArray<T>& x, const CArray<T>& y, index_t batch_size,
                            const py::object& sample_weight) {
            auto data = check_data(net, x, y);
            const auto w = sample_weights<T>(sample_weight, data.rows);
            if (batch_size <= 0) fail("batch_size must be positive");
            py::gil_scoped_release release;
            ThreadScope threads(net.num_threads);
            std::lock_guard<std::mutex> lock(net.mutex());
            evaluate(net, stats, data.x.data(), data.y.data(), data.ycols, data.rows, batch_size, w.data);
        }, py::arg("stats"), py::arg("x"), py::arg("y"), py::arg("batch_size"), py::arg("sample_weight") = py::none())
        .def("predict", [](Net& net, const CArray<T>& x, index_t batch_size, bool check_finite) -> py::object {
            require_2d(x, "x", net.input_dim());
            if (batch_size <= 0) fail("batch_size must be positive");
            auto out = new_like_2d<T>(x.shape(0), net.output_dim());
            T* o = out.mutable_data();
            bool finite;
            {
                py::gil_scoped_release release;
                ThreadScope threads(net.num_threads);
                std::lock_guard<std::mutex> lock(net.mutex());
                finite = predict(net, o, x.data(), x.shape(0), batch_size, check_finite);
            }
            if (!finite) return py::none();  // the caller reports where (check_finite=True only)
            return std::move(out);
        }, py::arg("x"), py::arg("batch_size"), py::arg("check_finite") = false)
        .def("forward", [](Net& net, const CArray<T>& x, bool training) {
            require_2d(x, "x", net.input_dim());
            auto out = new_like_2d<T>(x.shape(0), net.output_dim());
            T* o = out.mutable_data();
            {
                py::gil_scoped_release release;
                ThreadScope threads(net.num_threads);
                std::lock_guard<std::mutex> lock(net.mutex());
                forward_batch(net, o, x.data(), x.shape(0), training);
            }
            return out;
        }, py::arg("x"), py::arg("training"),
           "One forward pass over x as one batch; training=True draws dropout and augmentation at the\n"
           "current step (which does not advance).")
        .def("loss_and_gradient", [](Net& net, const CArray<T>& x, const CArray<T>& y, const py::object& sample_weight,
                                     bool training) {
            auto data = check_data(net, x, y);
            if (data.rows == 0) fail("x must have at least one row");
            const auto w = sample_weights<T>(sample_weight, data.rows);
            py::gil_scoped_release release;
            ThreadScope threads(net.num_threads);
            std::lock_guard<std::mutex> lock(net.mutex());
            return loss_and_gradient(net, data.x.data(), data.y.data(), data.ycols, data.rows, w.data, training);
        }, py::arg("x"), py::arg("y"), py::arg("sample_weight") = py::none(), py::arg("training") = false)
        .def("numerical_gradient", [](Net& net, const CArray<T>& x, const CArray<T>& y, double epsilon,
                                      const py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>& indices,
                                      const py::object& sample_weight, bool training) {
            auto data = check_data(net, x, y);
            const auto w = sample_weights<T>(sample_weight, data.rows);
            if (data.rows == 0) fail("x must have at least one row");
            for (index_t i = 0; i < indices.size(); ++i)
                if (indices.data()[i] < 0 || indices.data()[i] >= net.param_count()) fail("parameter index out of range");
            py::array_t<T> out(indices.size());
            T* o = out.mutable_data();
            {
                py::gil_scoped_release release;
                ThreadScope threads(net.num_threads);
                std::lock_guard<std::mutex> lock(net.mutex());
                numerical_gradient(net, o, data.x.data(), data.y.data(), data.ycols, data.rows, epsilon,
                                   indices.data(), indices.size(), w.data, training);
            }
            return out;
        }, py::arg("x"), py::arg("y"), py::arg("epsilon"), py::arg("indices"), py::arg("sample_weight") = py::none(),
           py::arg("training") = false);
}

template <typename T>
void bind_optimizer(py::module_& m, const char* name) {
    // A standalone optimizer over a caller-owned flat vector: what the golden-value tests drive.
    using Opt = Optimizer<T>;
    py::class_<Opt>(m, name)
        .def(py::init([](const OptimizerConfig& config, index_t size) {
            if (size < 0) fail("size must be non-negative, received size=" + std::to_string(size));
            auto* opt = new Opt();
            opt->configure(config, size);
            return opt;
        }), py::arg("config"), py::arg("size"))
        .def_property_readonly("config", &Opt::config, "A copy of the configuration the optimizer holds.")
        .def("step", [](Opt& opt, py::array_t<T>& params, py::array_t<T>& grads) {
            if (params.ndim() != 1 || grads.ndim() != 1 || params.shape(0) != grads.shape(0))
                fail("params and grads must be 1-D of the same length");
            if (!(params.flags() & py::array::c_style) || !(grads.flags() & py::array::c_style))
                fail("params and grads must be contiguous");
            opt.step(params.mutable_data(), grads.mutable_data(), {{0, params.shape(0)}});
        }, py::arg("params"), py::arg("grads"))
        .def_readwrite("iterations", &Opt::iterations);
}

template <typename Fn>
auto by_dtype(const py::array& a, Fn fn) {
    if (py::isinstance<py::array_t<double>>(a)) return fn(double{});
    if (py::isinstance<py::array_t<float>>(a)) return fn(float{});
    throw py::type_error("expected a float32 or float64 array, received dtype " + py::str(a.dtype()).cast<std::string>());
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "lamina's C++ core: kernels, the network and the minibatch loop.";
    m.attr("__version__") = LAMINA_VERSION;
    bind_contracts(m);

    py::class_<BatchStats>(m, "BatchStats")
        .def(py::init<>())
        .def("reset", &BatchStats::reset, py::arg("classes") = 0)
        .def_readonly("loss_sum", &BatchStats::loss_sum)
        .def_readonly("samples", &BatchStats::samples)
        .def_readonly("classes", &BatchStats::classes)
        .def_readonly("squared_error", &BatchStats::squared_error)
        .def_readonly("absolute_error", &BatchStats::absolute_error)
        .def_readonly("elements", &BatchStats::elements)
        .def_readonly("batches", &BatchStats::batches)
        .def_readonly("gradient_norms", &BatchStats::gradient_norms)
        .def_readonly("weight_sum", &BatchStats::weight_sum)
        .def_readonly("weighted_squared_error", &BatchStats::weighted_squared_error)
        .def_readonly("weighted_absolute_error", &BatchStats::weighted_absolute_error)
        .def_readonly("weighted_elements", &BatchStats::weighted_elements)
        .def_property_readonly("weighted_confusion", [](const BatchStats& s) {
            py::array_t<double> c({static_cast<py::ssize_t>(s.classes), static_cast<py::ssize_t>(s.classes)});
            std::copy(s.weighted_confusion.begin(), s.weighted_confusion.end(), c.mutable_data());
            return c;
        })
        .def_property_readonly("confusion", [](const BatchStats& s) {
            py::array_t<std::int64_t> c({static_cast<py::ssize_t>(s.classes), static_cast<py::ssize_t>(s.classes)});
            std::copy(s.confusion.begin(), s.confusion.end(), c.mutable_data());
            return c;
        });

    bind_network<float>(m, "Network32");
    bind_network<double>(m, "Network64");
    bind_optimizer<float>(m, "Optimizer32");
    bind_optimizer<double>(m, "Optimizer64");

    m.def("gemm", [](bool ta, bool tb, double alpha, const py::array& a, const py::array& b, double beta, py::array& c) {
        by_dtype(c, [&](auto t) { gemm_binding<decltype(t)>(ta, tb, alpha, a, b, beta, c, GemmCall::run); return 0; });
    }, py::arg("trans_a"), py::arg("trans_b"), py::arg("alpha"), py::arg("a"), py::arg("b"), py::arg("beta"), py::arg("c"),
       "c = alpha * op(a) @ op(b) + beta * c, in place (c's dtype chooses float32 or float64).");
    m.def("gemm_naive", [](bool ta, bool tb, double alpha, const py::array& a, const py::array& b, double beta, py::array& c) {
        by_dtype(c, [&](auto t) { gemm_binding<decltype(t)>(ta, tb, alpha, a, b, beta, c, GemmCall::naive); return 0; });
    }, py::arg("trans_a"), py::arg("trans_b"), py::arg("alpha"), py::arg("a"), py::arg("b"), py::arg("beta"), py::arg("c"));
    m.def("gemm_plan", [](bool ta, bool tb, double alpha, const py::array& a, const py::array& b, double beta, py::array& c) {
        return by_dtype(c, [&](auto t) { return gemm_binding<decltype(t)>(ta, tb, alpha, a, b, beta, c, GemmCall::plan); });
    }, py::arg("trans_a"), py::arg("trans_b"), py::arg("alpha"), py::arg("a"), py::arg("b"), py::arg("beta"), py::arg("c"),
       "The plan gemm would follow for these arguments: {path, split, threads, transposed, kernel}; c is not written.");

    m.def("activation_forward", [](Activation activation, const py::array& z) {
        return by_dtype(z, [&](auto t) -> py::object { using T = decltype(t); return activation_forward_binding<T>(activation, z.cast<CArray<T>>()); });
    }, py::arg("activation"), py::arg("z"));
    m.def("activation_backward", [](Activation activation, const py::array& da, const py::array& z, const py::array& a) {
        return by_dtype(da, [&](auto t) -> py::object { using T = decltype(t);
            return activation_backward_binding<T>(activation, da.cast<CArray<T>>(), z.cast<CArray<T>>(), a.cast<CArray<T>>()); });
    }, py::arg("activation"), py::arg("da"), py::arg("z"), py::arg("a"));
    m.def("loss", [](Loss loss, const py::array& p, const py::array& y, double delta, double scale,
                     const py::object& sample_weight) {
        return by_dtype(p, [&](auto t) -> py::object { using T = decltype(t);
            return loss_binding<T>(loss, p.cast<CArray<T>>(), y.cast<CArray<T>>(), delta, scale, sample_weight); });
    }, py::arg("loss"), py::arg("p"), py::arg("y"), py::arg("delta") = 1.0, py::arg("scale") = 1.0,
       py::arg("sample_weight") = py::none(),
       "(sum of (weighted) row losses, scale * gradient w.r.t. p)");
    m.def("fused_loss", [](Loss loss, const py::array& z, const py::array& y, double scale,
                           const py::object& sample_weight) {
        return by_dtype(z, [&](auto t) -> py::object { using T = decltype(t);
            return fused_loss_binding<T>(loss, z.cast<CArray<T>>(), y.cast<CArray<T>>(), scale, sample_weight); });
    }, py::arg("loss"), py::arg("z"), py::arg("y"), py::arg("scale") = 1.0, py::arg("sample_weight") = py::none(),
       "Softmax/sigmoid + cross-entropy on logits z: (sum of row losses, scale * gradient w.r.t. z)");
    m.def("dense_forward", [](const py::array& x, const py::array& W, const py::object& b, std::optional<Activation> activation) {
        return by_dtype(x, [&](auto t) -> py::object { using T = decltype(t);
            return dense_forward_binding<T>(x.cast<CArray<T>>(), W.cast<CArray<T>>(), b, activation); });
    }, py::arg("x"), py::arg("W"), py::arg("b") = py::none(), py::arg("activation") = py::none(),
       "z = x @ W + b; with an (elementwise) activation, (z, activation(z)) from the GEMM's tile epilogue.");
    m.def("dense_backward", [](const py::array& dz, const py::array& x, const py::array& W) {
        return by_dtype(dz, [&](auto t) -> py::object { using T = decltype(t);
            return dense_backward_binding<T>(dz.cast<CArray<T>>(), x.cast<CArray<T>>(), W.cast<CArray<T>>()); });
    }, py::arg("dz"), py::arg("x"), py::arg("W"));
    m.def("bf16_round", [](const CArray<float>& x, bool portable) {
        py::array_t<std::uint16_t> out(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
        const float* src = x.data();
        std::uint16_t* dst = out.mutable_data();
        const index_t n = static_cast<index_t>(x.size());
        py::gil_scoped_release release;
        if (portable) bf16_round_portable(src, n, dst);
        else bf16_round(src, n, dst);
        return out;
    }, py::arg("x"), py::arg("portable") = false,
       "x rounded to bfloat16 (round-to-nearest-even, subnormals to signed zero), as uint16 bit patterns; "
       "portable forces the portable twin of the AVX512_BF16 conversion.");
    m.def("bf16_gemm", [](const CArray<float>& a, const CArray<float>& b, bool portable) {
        require_2d(a, "a");
        require_2d(b, "b");
        if (a.shape(1) != b.shape(0))
            fail("inner dimensions differ: a is " + shape_of(a) + ", b is " + shape_of(b));
        const index_t m = a.shape(0), k = a.shape(1), n = b.shape(1);
        auto c = new_like_2d<float>(m, n);
        float* dst = c.mutable_data();
        py::gil_scoped_release release;
        bf16_gemm(m, n, k, a.data(), k, b.data(), n, dst, n, portable);
        return c;
    }, py::arg("a"), py::arg("b"), py::arg("portable") = false,
       "a @ b with bfloat16 operands and float32 accumulation through packed pair panels (the VDPBF16PS "
       "kernel when bf16_kernels_enabled(), else or with portable its portable twin).");
    m.def("gemm_bf16", [](bool ta, bool tb, const CArray<float>& a, const CArray<float>& b,
                          const std::optional<std::string>& kernel) {
        require_2d(a, "a");
        require_2d(b, "b");
        const index_t m = ta ? a.shape(1) : a.shape(0), k = ta ? a.shape(0) : a.shape(1);
        const index_t kb = tb ? b.shape(1) : b.shape(0), n = tb ? b.shape(0) : b.shape(1);
        if (k != kb) fail("inner dimensions differ: op(a) is (" + std::to_string(m) + ", " + std::to_string(k) +
                          "), op(b) is (" + std::to_string(kb) + ", " + std::to_string(n) + ")");
        Bf16Kernel which = bf16_gemm_kernel();
        if (kernel) {
            if (*kernel == "amx") which = Bf16Kernel::amx;
            else if (*kernel == "avx512_bf16") which = Bf16Kernel::avx512_bf16;
            else if (*kernel == "portable") which = Bf16Kernel::portable;
            else fail("kernel must be 'amx', 'avx512_bf16', 'portable' or None, received kernel='" + *kernel + "'");
            if (!bf16_gemm_kernel_available(which)) fail("kernel='" + *kernel + "' is not available on this CPU or build");
        }
        auto c = new_like_2d<float>(m, n);
        float* dst = c.mutable_data();
        const index_t lda = a.shape(1), ldb = b.shape(1);
        ThreadScope threads(0);  // the process-wide count, as _core.gemm
        py::gil_scoped_release release;
        gemm_bf16_with(which, ta, tb, m, n, k, a.data(), lda, b.data(), ldb, dst, n);
        return c;
    }, py::arg("trans_a"), py::arg("trans_b"), py::arg("a"), py::arg("b"), py::arg("kernel") = py::none(),
       "op(a) @ op(b) through the blocked, threaded bfloat16 GEMM of mixed_bfloat16 (gemm_bf16.h), with the "
       "kernel in use (bf16_gemm_kernel()) or the one named.");
    m.def("bf16_gemm_kernel", [] { return std::string(bf16_gemm_kernel_name(bf16_gemm_kernel())); },
          "The tile kernel of mixed_bfloat16's products: 'amx', 'avx512_bf16' or 'portable'.");
    m.def("bf16_gemm_kernels_available", [] {
        std::vector<std::string> out;
        for (Bf16Kernel k : {Bf16Kernel::amx, Bf16Kernel::avx512_bf16, Bf16Kernel::portable})
            if (bf16_gemm_kernel_available(k)) out.emplace_back(bf16_gemm_kernel_name(k));
        return out;
    }, "The bfloat16 tile kernels this CPU and build can run, best first.");
    m.def("bf16_kernels_enabled", &bf16_kernels, "Whether the AVX512_BF16 kernels are in use.");
    m.def("rank_update", [](const py::array& x, const py::array& dz) {
        return by_dtype(dz, [&](auto t) -> py::object { using T = decltype(t);
            return rank_update_binding<T>(x.cast<CArray<T>>(), dz.cast<CArray<T>>()); });
    }, py::arg("x"), py::arg("dz"), "x^T dz by the small-batch rank-n kernel of the fused update.");
    m.def("initialize", [](InitKind kind, index_t count, index_t fan_in, index_t fan_out, double value,
                           std::uint64_t seed, std::uint64_t stream, const std::string& dtype, double value2) -> py::object {
        if (dtype == "float64") return initialize_binding<double>(kind, count, fan_in, fan_out, value, value2, seed, stream);
        return initialize_binding<float>(kind, count, fan_in, fan_out, value, value2, seed, stream);
    }, py::arg("kind"), py::arg("count"), py::arg("fan_in"), py::arg("fan_out"), py::arg("value") = 0.0,
       py::arg("seed") = 0, py::arg("stream") = 0, py::arg("dtype") = "float64", py::arg("value2") = 0.0);
    m.def("all_finite", [](const py::array& a) {
        if (py::isinstance<py::array_t<float>>(a)) return all_finite<float>(a);
        return all_finite<double>(a);
    }, py::arg("a"), "True when no element is NaN or infinite (float arrays; others are converted to float64).");
    m.def("scale_in_place", [](py::array& a, double factor) {
        if (!a.writeable() || !(a.flags() & py::array::c_style))
            fail("a must be a writable C-contiguous array");
        if (py::isinstance<py::array_t<float>>(a)) return scale_in_place<float>(a, factor);
        if (py::isinstance<py::array_t<double>>(a)) return scale_in_place<double>(a, factor);
        fail("a must hold float32 or float64 values, received " + std::string(py::str(a.dtype())));
    }, py::arg("a"), py::arg("factor"), "a *= factor in place (factor 0 sets every element to 0), GIL released.");
    m.def("shuffled_order", [](index_t n, std::uint64_t seed, std::uint64_t epoch) {
        if (n < 0) fail("n must be non-negative");
        std::vector<std::int64_t> order;
        {
            py::gil_scoped_release release;
            ThreadScope threads(0);
            order = shuffled_order(n, seed, epoch);
        }
        py::array_t<std::int64_t> out(n);
        std::copy(order.begin(), order.end(), out.mutable_data());
        return out;
    }, py::arg("n"), py::arg("seed"), py::arg("epoch"));
    m.def("set_num_threads", [](std::int64_t n) {
        if (n < 1 || n > max_threads())
            fail("n must be in [1, " + std::to_string(max_threads()) + "], received n=" + std::to_string(n));
        set_num_threads(static_cast<int>(n));
    }, py::arg("n"));
    m.def("max_threads", &max_threads, "The most threads set_num_threads accepts.");
    m.def("get_num_threads", &get_num_threads);
    m.def("openmp_enabled", &openmp_enabled);
    m.def("set_flush_denormals", &set_flush_denormals, py::arg("on"));
    m.def("flush_denormals", &flush_denormals);
    m.def("gemm_kernel_name", &gemm_kernel_name,
          "The GEMM kernel table in use: avx512, avx2 or generic (LAMINA_GEMM_KERNEL forces one).");
    m.def("gemm_kernels_available", &gemm_kernels_available,
          "The GEMM kernel tables this build and CPU can run, best first.");
    // Decide the kernel now: a bad LAMINA_GEMM_KERNEL fails the import with its ValueError
    // instead of surfacing later from inside a computation (LAMINA_BF16_AMX likewise).
    gemm_kernel_name();
    bf16_gemm_kernel();
}
