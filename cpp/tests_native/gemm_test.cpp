// Standalone test + benchmark for lamina::gemm (no Python needed).
//
//   ./gemm_test            correctness: gemm vs gemm_naive over many shapes, all transposes,
//                          both dtypes, odd leading dimensions, beta = 0 with NaN-filled C,
//                          untouched padding, and bit-identical results for 1, 2 and 3 threads;
//                          the table's rank-n update vs rank_n_rows_naive
//   ./gemm_test bench      GFLOP/s at the MLP training shapes (median of repeats)
//
// Run it under each LAMINA_GEMM_KERNEL the CPU has (run_tests.sh does; `gemm_test kernels` lists them).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "lamina/gemm.h"
#include "lamina/rank_update.h"

using lamina::index_t;

namespace {

std::mt19937_64 rng(12345);

template <typename T>
std::vector<T> random_vec(std::size_t n) {
    std::uniform_real_distribution<double> d(-1.0, 1.0);
    std::vector<T> v(n);
    for (auto& x : v) x = static_cast<T>(d(rng));
    return v;
}

int failures = 0, cases = 0;

template <typename T>
void check(bool ta, bool tb, index_t m, index_t n, index_t k, T alpha, T beta, bool nan_c) {
    ++cases;
    std::uniform_int_distribution<int> pad(0, 3);
    const index_t a_rows = ta ? k : m, a_cols = ta ? m : k;
    const index_t b_rows = tb ? n : k, b_cols = tb ? k : n;
    const index_t lda = a_cols + pad(rng), ldb = b_cols + pad(rng), ldc = n + pad(rng);
    auto A = random_vec<T>(std::max<index_t>(1, a_rows * lda));
    auto B = random_vec<T>(std::max<index_t>(1, b_rows * ldb));
    auto C0 = random_vec<T>(std::max<index_t>(1, m * ldc));
    const T sentinel = T(12345.0);
    for (index_t i = 0; i < m; ++i) {
        for (index_t j = n; j < ldc; ++j) C0[i * ldc + j] = sentinel;
        if (nan_c)
            for (index_t j = 0; j < n; ++j) C0[i * ldc + j] = std::numeric_limits<T>::quiet_NaN();
    }
    auto ref = C0;
    lamina::gemm_naive<T>(ta, tb, m, n, k, alpha, A.data(), lda, B.data(), ldb, beta, ref.data(),
                          ldc);
    std::vector<T> out[3];
    for (int t = 1; t <= 3; ++t) {
        omp_set_num_threads(t);
        out[t - 1] = C0;
        lamina::gemm<T>(ta, tb, m, n, k, alpha, A.data(), lda, B.data(), ldb, beta,
                        out[t - 1].data(), ldc);
    }
    omp_set_num_threads(2);
    const double eps = std::numeric_limits<T>::epsilon();
    double worst = 0;
    bool ok = true;
    for (index_t i = 0; i < m && ok; ++i) {
        for (index_t j = 0; j < ldc; ++j) {
            const T got = out[0][i * ldc + j];
            if (j >= n) {
                if (got != sentinel) ok = false;
                continue;
            }
            // |error| <= c k eps sum_p |a||b| (+ the beta term); sum |a||b| <= k here.
            double bound = std::abs(double(alpha)) * k + (beta != T(0) ? std::abs(double(beta)) : 0);
            const double err = std::abs(double(got) - double(ref[i * ldc + j]));
            const double tol = 4.0 * (k + 2) * eps * bound + 1e-30;
            if (!(err <= tol)) ok = false;
            worst = std::max(worst, err / tol);
        }
    }
    const bool same = out[0] == out[1] || std::memcmp(out[0].data(), out[1].data(),
                                                      out[0].size() * sizeof(T)) == 0;
    const bool same3 = std::memcmp(out[0].data(), out[2].data(), out[0].size() * sizeof(T)) == 0;
    if (!ok || !same || !same3) {
        ++failures;
        if (failures < 30)
            std::printf("FAIL %s ta=%d tb=%d m=%lld n=%lld k=%lld alpha=%g beta=%g nan_c=%d: "
                        "values %s (worst err/tol %.3g), 1-vs-2 threads %s, 1-vs-3 %s\n",
                        sizeof(T) == 4 ? "f32" : "f64", ta, tb, (long long)m, (long long)n,
                        (long long)k, double(alpha), double(beta), nan_c, ok ? "ok" : "BAD", worst,
                        same ? "identical" : "DIFFER", same3 ? "identical" : "DIFFER");
    }
}

template <typename T>
void check_all_transposes(index_t m, index_t n, index_t k) {
    static const double ab[][2] = {{1, 0}, {0.75, -1.25}, {1, 1}, {-2, 0.5}};
    static int which = 0;
    for (int ta = 0; ta < 2; ++ta)
        for (int tb = 0; tb < 2; ++tb) {
            const auto& p = ab[which++ % 4];
            check<T>(ta, tb, m, n, k, T(p[0]), T(p[1]), false);
            check<T>(ta, tb, m, n, k, T(p[0]), T(0), true);  // beta = 0: C (NaN) never read
        }
}

template <typename T>
void run_tests() {
    const index_t sizes[] = {1, 2, 3, 5, 6, 7, 8, 9, 13, 15, 16, 17, 23, 31, 47, 71, 72, 73};
    for (index_t m : sizes)
        for (index_t n : sizes)
            for (index_t k : {1, 4, 17}) check_all_transposes<T>(m, n, k);
    // Around the block boundaries (MC = 144 / 72, KC = 256, small-m threshold 16) and the MLP shapes.
    const index_t shapes[][3] = {
        {143, 33, 255}, {144, 31, 256}, {145, 17, 257}, {73, 40, 513}, {71, 8, 300},
        {289, 50, 40},  {128, 512, 80}, {64, 784, 64},  {784, 64, 128}, {128, 10, 512},
        {512, 10, 128}, {128, 512, 10}, {16, 100, 300}, {17, 100, 300}, {1, 600, 200},
        {600, 1, 200},  {200, 600, 1},  {10, 784, 97},  {0, 5, 5},      {5, 0, 5},
        {5, 5, 0},      {300, 300, 7},  {97, 131, 521},
    };
    for (const auto& s : shapes) check_all_transposes<T>(s[0], s[1], s[2]);
    // Around NC = 4080 (keep m and k small so the naive reference stays fast).
    for (index_t n : {4079, 4080, 4081, 8161}) check_all_transposes<T>(19, n, 3);
    // Random shapes.
    std::uniform_int_distribution<int> d(1, 300);
    for (int r = 0; r < 60; ++r) check_all_transposes<T>(d(rng), d(rng), d(rng));
}

// The rank-n update of the table in use against its naive twin: g (rows, units) = x[:, :rows]^T dz
// for n samples, half the inputs zero (skipped), x with a row stride wider than rows. One sample
// is an exact outer product; more agree within the bound of an n-term sum.
template <typename T>
void check_rank_n(index_t n, index_t rows, index_t units) {
    ++cases;
    const index_t in = rows + 3;
    auto x = random_vec<T>(n * in);
    std::bernoulli_distribution zero(0.5);
    for (auto& v : x)
        if (zero(rng)) v = T(0);
    auto dz = random_vec<T>(n * units);
    std::vector<T> got(rows * units, T(7)), ref(rows * units, T(-7));
    lamina::rank_n_rows<T>(got.data(), x.data(), in, dz.data(), units, n, rows);
    lamina::rank_n_rows_naive<T>(ref.data(), x.data(), in, dz.data(), units, n, rows);
    const double eps = std::numeric_limits<T>::epsilon();
    bool ok = true;
    for (index_t i = 0; i < rows; ++i)
        for (index_t j = 0; j < units; ++j) {
            double bound = 0;  // sum_r |x_ri dz_rj|
            for (index_t r = 0; r < n; ++r) bound += std::abs(double(x[r * in + i]) * double(dz[r * units + j]));
            const double err = std::abs(double(got[i * units + j]) - double(ref[i * units + j]));
            if (!(err <= (n == 1 ? 0.0 : 2.0 * n * eps * bound))) ok = false;
        }
    if (!ok) {
        ++failures;
        std::printf("FAIL rank_n %s n=%lld rows=%lld units=%lld\n", sizeof(T) == 4 ? "f32" : "f64", (long long)n,
                    (long long)rows, (long long)units);
    }
}

template <typename T>
void run_rank_n_tests() {
    // units around the 4 / 8 lanes and 32 / 64 wide blocks of the AVX2 kernel.
    for (index_t n : {1, 2, 7, 16})
        for (index_t units : {1, 3, 4, 7, 8, 9, 31, 32, 33, 63, 64, 65, 130, 512})
            for (index_t rows : {1, 5}) check_rank_n<T>(n, rows, units);
}

// ---------------------------------------------------------------------------------------------

template <typename T>
double gflops(bool ta, bool tb, index_t m, index_t n, index_t k, int reps) {
    auto A = random_vec<T>(m * k), B = random_vec<T>(k * n);
    std::vector<T> C(m * n);
    const index_t lda = ta ? m : k, ldb = tb ? k : n;
    auto run = [&] {
        lamina::gemm<T>(ta, tb, m, n, k, T(1), A.data(), lda, B.data(), ldb, T(0), C.data(), n);
    };
    for (int i = 0; i < 3; ++i) run();
    const double flops = 2.0 * m * n * k;
    const int inner = std::max(1, int(2e8 / flops));
    std::vector<double> t;
    for (int r = 0; r < reps; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < inner; ++i) run();
        t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
                    inner);
    }
    // Median by default; LAMINA_BENCH_BEST=1 takes the fastest repeat (noisy shared machines).
    std::sort(t.begin(), t.end());
    static const bool best = std::getenv("LAMINA_BENCH_BEST") != nullptr;
    return flops / (best ? t.front() : t[t.size() / 2]) * 1e-9;
}

void run_bench(int argc, char** argv) {
    struct Shape {
        const char* what;
        bool ta, tb;
        index_t m, n, k;
    };
    std::vector<Shape> shapes = {
        {"fwd1 X.W1", false, false, 128, 512, 784},  {"dW1 X^T.dZ", true, false, 784, 512, 128},
        {"dX1 dZ.W1^T", false, true, 128, 784, 512}, {"fwd2 H.W2", false, false, 128, 10, 512},
        {"dW2 H^T.dZ", true, false, 512, 10, 128},   {"dH dZ.W2^T", false, true, 128, 512, 10},
        {"b1 x.W1", false, false, 1, 512, 784},      {"b10 X.W1", false, false, 10, 512, 784},
        {"b10 dX dZ.W1^T", false, true, 10, 784, 512},
        {"b32 X.W1", false, false, 32, 512, 784},    {"b32 dW1", true, false, 784, 512, 32},
        {"sq 1024", false, false, 1024, 1024, 1024},
        {"b1 small x.W", false, false, 1, 512, 64},
    };
    const int reps = argc > 2 ? std::atoi(argv[2]) : 7;
    const std::string filter = argc > 3 ? argv[3] : "";  // only shapes whose name contains it
    std::printf("kernel %s, %d threads\n", lamina::gemm_kernel_name().c_str(),
                omp_get_max_threads());
    std::printf("%-18s %2s %2s %5s %5s %5s %9s %9s\n", "shape", "ta", "tb", "m", "n", "k",
                "f32 GF/s", "f64 GF/s");
    for (const auto& s : shapes)
        if (std::string(s.what).find(filter) != std::string::npos)
            std::printf("%-18s %2d %2d %5lld %5lld %5lld %9.1f %9.1f\n", s.what, s.ta, s.tb,
                    (long long)s.m, (long long)s.n, (long long)s.k,
                    gflops<float>(s.ta, s.tb, s.m, s.n, s.k, reps),
                    gflops<double>(s.ta, s.tb, s.m, s.n, s.k, reps));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 1 && std::string(argv[1]) == "kernels") {  // the tables this CPU can run
        for (const std::string& name : lamina::gemm_kernels_available()) std::printf("%s\n", name.c_str());
        return 0;
    }
    if (argc > 1 && std::string(argv[1]) == "bench") {
        run_bench(argc, argv);
        return 0;
    }
    std::printf("kernel %s\n", lamina::gemm_kernel_name().c_str());
    run_tests<float>();
    run_tests<double>();
    run_rank_n_tests<float>();
    run_rank_n_tests<double>();
    std::printf("%d cases, %d failures\n", cases, failures);
    return failures == 0 ? 0 : 1;
}
