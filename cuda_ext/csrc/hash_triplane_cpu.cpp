// CPU loops over hash_triplane.h.
//
// Loops run (plane, level)-major: one table (a few hundred KB) stays in cache while every point
// reads it, where a point-major order would sweep all tables (tens of MB) for each point.
#include <string.h>

#include <memory>
#include <vector>

#include "cpu_ops.h"

namespace avatar {
namespace cpu {

namespace {

void normalise_points(int64_t n, const float* points, const HashTriplaneParams& p, float* unit, bool* inside,
                      int nthreads) {
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t i = 0; i < n; ++i) normalise_point(points + 3 * i, p, unit + 3 * i, inside + 3 * i);
}

}  // namespace

void hash_triplane_forward(int64_t n, const float* points, const float* tables, const HashTriplaneParams& p,
                           float* out, int nthreads) {
    const int per_point = 3 * p.levels * p.features;
    const int tasks = 3 * p.levels;
    std::vector<float> unit((size_t)n * 3);
    std::unique_ptr<bool[]> inside(new bool[(size_t)n * 3 + 1]);
    normalise_points(n, points, p, unit.data(), inside.get(), nthreads);
    // Each table writes its features contiguously into a (plane, level)-major scratch, which is
    // then transposed into the [N, 3 L F] output: writing F floats into every output row from
    // each table in turn would touch a fresh cache line per point and cost more than the lookups.
    std::vector<float> scratch((size_t)tasks * n * p.features);
    dispatch_features(p.features, [&]<int F>() {
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1)
        for (int task = 0; task < tasks; ++task) {
            const HashLevel L = hash_level(p, task / p.levels, task % p.levels);
            float* o = scratch.data() + (size_t)task * n * F;
            for (int64_t i = 0; i < n; ++i) hash_level_fwd<F>(unit.data() + 3 * i, L, tables, o + i * F);
        }
        constexpr int64_t kBlock = 64;
#pragma omp parallel for num_threads(nthreads) schedule(static)
        for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
            const int64_t i1 = i0 + kBlock < n ? i0 + kBlock : n;
            for (int task = 0; task < tasks; ++task) {
                const float* src = scratch.data() + (size_t)task * n * F;
                for (int64_t i = i0; i < i1; ++i)
                    for (int f = 0; f < F; ++f) out[i * per_point + task * F + f] = src[i * F + f];
            }
        }
    });
}

void hash_triplane_backward(int64_t n, const float* points, const float* tables, const HashTriplaneParams& p,
                            const float* v_out, float* v_tables, float* v_points, int nthreads) {
    const int per_point = 3 * p.levels * p.features;
    const int tasks = 3 * p.levels;
    std::vector<float> unit((size_t)n * 3);
    std::unique_ptr<bool[]> inside(new bool[(size_t)n * 3 + 1]);
    normalise_points(n, points, p, unit.data(), inside.get(), nthreads);
    auto add = [](float* dst, float v) { *dst += v; };
    dispatch_features(p.features, [&]<int F>() {
        if (v_tables) {
            // One thread owns each table: no atomics, and sums always run in point order, so the
            // gradient is the same on every run and for every thread count.
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1)
            for (int task = 0; task < tasks; ++task) {
                const HashLevel L = hash_level(p, task / p.levels, task % p.levels);
                for (int64_t i = 0; i < n; ++i)
                    hash_level_bwd_table<F>(unit.data() + 3 * i, L, v_out + i * per_point + task * F, v_tables, add);
            }
        }
        if (v_points) {
#pragma omp parallel for num_threads(nthreads) schedule(static)
            for (int64_t i = 0; i < n; ++i) {
                float* vp = v_points + 3 * i;
                vp[0] = vp[1] = vp[2] = 0.f;
                for (int task = 0; task < tasks; ++task)
                    hash_level_bwd_point<F>(unit.data() + 3 * i, inside.get() + 3 * i,
                                            hash_level(p, task / p.levels, task % p.levels), p, tables,
                                            v_out + i * per_point + task * F, vp);
            }
        }
    });
}

}  // namespace cpu
}  // namespace avatar
