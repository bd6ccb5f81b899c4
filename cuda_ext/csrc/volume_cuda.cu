// CUDA kernels of volume rendering: one thread per ray, over the element math of volume.h.
#include <cuda_runtime.h>

#include "cuda_launch.h"

namespace avatar {
namespace cuda {

namespace {

constexpr int kThreads = 128;

unsigned int blocks_for(int64_t work) { return (unsigned int)((work + kThreads - 1) / kThreads); }

struct NoEmit {
    __device__ void operator()(int, float, float) const {}
};

struct FillEmit {
    int64_t* ray_ids;
    float* t_begin;
    float* t_end;
    int64_t base, ray;
    __device__ void operator()(int k, float a, float b) const {
        ray_ids[base + k] = ray;
        t_begin[base + k] = a;
        t_end[base + k] = b;
    }
};

__global__ void march_count_kernel(int64_t n, const float* __restrict__ origins, const float* __restrict__ dirs,
                                   const float* __restrict__ t_start, const float* __restrict__ t_stop, MarchParams m, const uint8_t* __restrict__ grid,
                                   int64_t* __restrict__ counts, float* __restrict__ t_next) {
    const int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= n) return;
    counts[r] = march_ray(origins + 3 * r, dirs + 3 * r, t_start[r], t_stop[r], m, grid, t_next + r, NoEmit{});
}

__global__ void march_fill_kernel(int64_t n, const float* __restrict__ origins, const float* __restrict__ dirs,
                                  const float* __restrict__ t_start, const float* __restrict__ t_stop, MarchParams m, const uint8_t* __restrict__ grid,
                                  const int64_t* __restrict__ offsets, int64_t* ray_ids, float* t_begin,
                                  float* t_end) {
    const int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= n) return;
    float unused;
    march_ray(origins + 3 * r, dirs + 3 * r, t_start[r], t_stop[r], m, grid, &unused,
              FillEmit{ray_ids, t_begin, t_end, offsets[r], r});
}

struct NoPartEmit {
    __device__ void operator()(int, int, float, float, const float*) const {}
};

struct PartFillEmit {
    int64_t* ray_ids;
    float* t_begin;
    float* t_end;
    int64_t* parts;
    float* points;
    int64_t base, ray;
    __device__ void operator()(int k, int part, float a, float b, const float* p) const {
        store_part_sample(base + k, ray, part, a, b, p, ray_ids, t_begin, t_end, parts, points);
    }
};

__global__ void march_parts_count_kernel(int64_t n, const float* __restrict__ origins, const float* __restrict__ dirs,
                                         const float* __restrict__ t_start, const float* __restrict__ t_stop,
                                         MarchPartsParams q, int64_t* __restrict__ counts, float* __restrict__ t_next) {
    const int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= n) return;
    counts[r] = march_parts_ray(r, n, origins, dirs, t_start, t_stop, q, t_next, NoPartEmit{});
}

// t_next is written again with the same values as by the count pass (the fill's launch owns no other buffer for it).
__global__ void march_parts_fill_kernel(int64_t n, const float* __restrict__ origins, const float* __restrict__ dirs,
                                        const float* __restrict__ t_start, const float* __restrict__ t_stop,
                                        MarchPartsParams q, const int64_t* __restrict__ offsets, float* t_next,
                                        int64_t* ray_ids, float* t_begin, float* t_end, int64_t* parts, float* points) {
    const int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= n) return;
    march_parts_ray(r, n, origins, dirs, t_start, t_stop, q, t_next,
                    PartFillEmit{ray_ids, t_begin, t_end, parts, points, offsets[r], r});
}

__global__ void composite_fwd_kernel(int64_t n, const int64_t* __restrict__ offsets, const float* __restrict__ sigma,
                                     const float* __restrict__ delta, const float* __restrict__ color, int channels,
                                     float* weights, float* out, float* opacity) {
    const int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= n) return;
    composite_ray_fwd(offsets[r], offsets[r + 1] - offsets[r], sigma, delta, color, channels, weights,
                      out + r * channels, opacity + r);
}

__global__ void composite_bwd_kernel(int64_t n, const int64_t* __restrict__ offsets, const float* __restrict__ sigma,
                                     const float* __restrict__ delta, const float* __restrict__ color, int channels,
                                     const float* __restrict__ out, const float* __restrict__ opacity,
                                     const float* __restrict__ v_out, const float* __restrict__ v_opacity,
                                     float* v_sigma, float* v_color) {
    const int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= n) return;
    composite_ray_bwd(offsets[r], offsets[r + 1] - offsets[r], sigma, delta, color, channels, out + r * channels,
                      opacity[r], v_out + r * channels, v_opacity[r], v_sigma, v_color);
}

__global__ void lookup_kernel(int64_t n, const float* __restrict__ points, const float* __restrict__ volume,
                              LookupParams v, float* __restrict__ out) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    lookup_point(points + 3 * i, v, volume, out + i * v.channels);
}

}  // namespace

void march_count(int64_t n, const float* origins, const float* dirs, const float* t_start, const float* t_stop, const MarchParams& m,
                 const uint8_t* grid, int64_t* counts, float* t_next, void* stream) {
    if (n == 0) return;
    march_count_kernel<<<blocks_for(n), kThreads, 0, (cudaStream_t)stream>>>(n, origins, dirs, t_start, t_stop, m, grid,
                                                                             counts, t_next);
}

void march_fill(int64_t n, const float* origins, const float* dirs, const float* t_start, const float* t_stop, const MarchParams& m,
                const uint8_t* grid, const int64_t* offsets, int64_t* ray_ids, float* t_begin, float* t_end,
                void* stream) {
    if (n == 0) return;
    march_fill_kernel<<<blocks_for(n), kThreads, 0, (cudaStream_t)stream>>>(n, origins, dirs, t_start, t_stop, m, grid,
                                                                            offsets, ray_ids, t_begin, t_end);
}

void march_parts_count(int64_t n, const float* origins, const float* dirs, const float* t_start, const float* t_stop,
                       const MarchPartsParams& q, int64_t* counts, float* t_next, void* stream) {
    if (n == 0) return;
    march_parts_count_kernel<<<blocks_for(n), kThreads, 0, (cudaStream_t)stream>>>(n, origins, dirs, t_start, t_stop, q,
                                                                                   counts, t_next);
}

void march_parts_fill(int64_t n, const float* origins, const float* dirs, const float* t_start, const float* t_stop,
                      const MarchPartsParams& q, const int64_t* offsets, float* t_next, int64_t* ray_ids, float* t_begin,
                      float* t_end, int64_t* parts, float* points, void* stream) {
    if (n == 0) return;
    march_parts_fill_kernel<<<blocks_for(n), kThreads, 0, (cudaStream_t)stream>>>(
        n, origins, dirs, t_start, t_stop, q, offsets, t_next, ray_ids, t_begin, t_end, parts, points);
}

void composite_forward(int64_t n, const int64_t* offsets, const float* sigma, const float* delta, const float* color,
                       int channels, float* weights, float* out, float* opacity, void* stream) {
    if (n == 0) return;
    composite_fwd_kernel<<<blocks_for(n), kThreads, 0, (cudaStream_t)stream>>>(n, offsets, sigma, delta, color,
                                                                               channels, weights, out, opacity);
}

void composite_backward(int64_t n, const int64_t* offsets, const float* sigma, const float* delta,
                        const float* color, int channels, const float* out, const float* opacity, const float* v_out,
                        const float* v_opacity, float* v_sigma, float* v_color, void* stream) {
    if (n == 0) return;
    composite_bwd_kernel<<<blocks_for(n), kThreads, 0, (cudaStream_t)stream>>>(
        n, offsets, sigma, delta, color, channels, out, opacity, v_out, v_opacity, v_sigma, v_color);
}

void lookup_volume(int64_t n, const float* points, const float* volume, const LookupParams& v, float* out, void* stream) {
    if (n == 0) return;
    lookup_kernel<<<blocks_for(n), kThreads, 0, (cudaStream_t)stream>>>(n, points, volume, v, out);
}

}  // namespace cuda
}  // namespace avatar
