// CPU loops over hash_triplane.h.
#include <string.h>

#include "cpu_ops.h"

namespace avatar {
namespace cpu {

void hash_triplane_forward(int64_t n, const float* points, const float* tables, const HashTriplaneParams& p,
                           float* out, int nthreads) {
    const int per_point = 3 * p.levels * p.features;
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
        float* o = out + i * per_point;
        for (int plane = 0; plane < 3; ++plane)
            for (int level = 0; level < p.levels; ++level)
                hash_plane_level_fwd(points + 3 * i, plane, level, p, tables,
                                     o + (plane * p.levels + level) * p.features);
    }
}

void hash_triplane_backward(int64_t n, const float* points, const float* tables, const HashTriplaneParams& p,
                            const float* v_out, float* v_tables, float* v_points, int nthreads) {
    const int per_point = 3 * p.levels * p.features;
    const int tasks = 3 * p.levels;
    auto add = [](float* dst, float v) { *dst += v; };
    if (v_tables) {
        // One thread owns each (plane, level) table: no atomics, and the sums always run in point
        // order, so the gradient is the same on every run.
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1)
        for (int task = 0; task < tasks; ++task) {
            const int plane = task / p.levels, level = task % p.levels;
            for (int64_t i = 0; i < n; ++i)
                hash_plane_level_bwd(points + 3 * i, plane, level, p, tables,
                                     v_out + i * per_point + task * p.features, v_tables, nullptr, add);
        }
    }
    if (v_points) {
#pragma omp parallel for num_threads(nthreads) schedule(static)
        for (int64_t i = 0; i < n; ++i) {
            float* vp = v_points + 3 * i;
            vp[0] = vp[1] = vp[2] = 0.f;
            for (int task = 0; task < tasks; ++task)
                hash_plane_level_bwd(points + 3 * i, task / p.levels, task % p.levels, p, tables,
                                     v_out + i * per_point + task * p.features, nullptr, vp, add);
        }
    }
}

}  // namespace cpu
}  // namespace avatar
