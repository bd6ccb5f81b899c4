// CPU loops over volume.h: one ray per iteration, rays spread over the threads.
#include "cpu_ops.h"

namespace avatar {
namespace cpu {

void march_count(int64_t n, const float* origins, const float* dirs, const float* t_start, const float* t_stop, const MarchParams& m,
                 const uint8_t* grid, int64_t* counts, float* t_next, int nthreads) {
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 256)
    for (int64_t r = 0; r < n; ++r)
        counts[r] = march_ray(origins + 3 * r, dirs + 3 * r, t_start[r], t_stop[r], m, grid, t_next + r,
                              [](int, float, float) {});
}

void march_fill(int64_t n, const float* origins, const float* dirs, const float* t_start, const float* t_stop, const MarchParams& m,
                const uint8_t* grid, const int64_t* offsets, int64_t* ray_ids, float* t_begin, float* t_end,
                int nthreads) {
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 256)
    for (int64_t r = 0; r < n; ++r) {
        float unused;
        const int64_t base = offsets[r];
        march_ray(origins + 3 * r, dirs + 3 * r, t_start[r], t_stop[r], m, grid, &unused, [&](int k, float a, float b) {
            ray_ids[base + k] = r;
            t_begin[base + k] = a;
            t_end[base + k] = b;
        });
    }
}

void march_parts_count(int64_t n, const float* origins, const float* dirs, const float* t_start, const float* t_stop,
                       const MarchPartsParams& q, int64_t* counts, float* t_next, int nthreads) {
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 256)
    for (int64_t r = 0; r < n; ++r)
        counts[r] = march_parts_ray(r, n, origins, dirs, t_start, t_stop, q, t_next, [](int, int, float, float, const float*) {});
}

void march_parts_fill(int64_t n, const float* origins, const float* dirs, const float* t_start, const float* t_stop,
                      const MarchPartsParams& q, const int64_t* offsets, float* t_next, int64_t* ray_ids, float* t_begin,
                      float* t_end, int64_t* parts, float* points, int nthreads) {
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 256)
    for (int64_t r = 0; r < n; ++r) {
        const int64_t base = offsets[r];
        march_parts_ray(r, n, origins, dirs, t_start, t_stop, q, t_next,
                        [&](int k, int part, float a, float b, const float* p) {
                            store_part_sample(base + k, r, part, a, b, p, ray_ids, t_begin, t_end, parts, points);
                        });
    }
}

void composite_forward(int64_t n, const int64_t* offsets, const float* sigma, const float* delta, const float* color,
                       int channels, float* weights, float* out, float* opacity, int nthreads) {
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 256)
    for (int64_t r = 0; r < n; ++r)
        composite_ray_fwd(offsets[r], offsets[r + 1] - offsets[r], sigma, delta, color, channels, weights,
                          out + r * channels, opacity + r);
}

void composite_backward(int64_t n, const int64_t* offsets, const float* sigma, const float* delta,
                        const float* color, int channels, const float* out, const float* opacity, const float* v_out,
                        const float* v_opacity, float* v_sigma, float* v_color, int nthreads) {
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 256)
    for (int64_t r = 0; r < n; ++r)
        composite_ray_bwd(offsets[r], offsets[r + 1] - offsets[r], sigma, delta, color, channels, out + r * channels,
                          opacity[r], v_out + r * channels, v_opacity[r], v_sigma, v_color);
}

void lookup_volume(int64_t n, const float* points, const float* volume, const LookupParams& v, float* out, int nthreads) {
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t i = 0; i < n; ++i) lookup_point(points + 3 * i, v, volume, out + i * v.channels);
}

}  // namespace cpu
}  // namespace avatar
