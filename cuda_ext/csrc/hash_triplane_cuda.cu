// CUDA kernels of the hash-grid triplane encoding: one thread per (point, plane, level).
#include <cuda_runtime.h>

#include "cuda_launch.h"

namespace avatar {
namespace cuda {

namespace {

constexpr int kThreads = 256;

__global__ void hash_triplane_fwd_kernel(int64_t n, const float* __restrict__ points,
                                         const float* __restrict__ tables, HashTriplaneParams p,
                                         float* __restrict__ out) {
    const int tasks = 3 * p.levels;
    const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= n * tasks) return;
    const int64_t i = idx / tasks;
    const int task = (int)(idx % tasks);
    hash_plane_level_fwd(points + 3 * i, task / p.levels, task % p.levels, p, tables,
                         out + i * tasks * p.features + task * p.features);
}

struct AtomicAdd {
    __device__ void operator()(float* dst, float v) const { atomicAdd(dst, v); }
};

__global__ void hash_triplane_bwd_kernel(int64_t n, const float* __restrict__ points,
                                         const float* __restrict__ tables, HashTriplaneParams p,
                                         const float* __restrict__ v_out, float* v_tables, float* v_points) {
    const int tasks = 3 * p.levels;
    const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= n * tasks) return;
    const int64_t i = idx / tasks;
    const int task = (int)(idx % tasks);
    float vp[3] = {0.f, 0.f, 0.f};
    hash_plane_level_bwd(points + 3 * i, task / p.levels, task % p.levels, p, tables,
                         v_out + i * tasks * p.features + task * p.features, v_tables,
                         v_points ? vp : nullptr, AtomicAdd());
    if (v_points)
        for (int k = 0; k < 3; ++k)
            if (vp[k] != 0.f) atomicAdd(v_points + 3 * i + k, vp[k]);
}

unsigned int blocks_for(int64_t work) { return (unsigned int)((work + kThreads - 1) / kThreads); }

}  // namespace

void hash_triplane_forward(int64_t n, const float* points, const float* tables, const HashTriplaneParams& p,
                           float* out, void* stream) {
    const int64_t work = n * 3 * p.levels;
    if (work == 0) return;
    hash_triplane_fwd_kernel<<<blocks_for(work), kThreads, 0, (cudaStream_t)stream>>>(n, points, tables, p, out);
}

void hash_triplane_backward(int64_t n, const float* points, const float* tables, const HashTriplaneParams& p,
                            const float* v_out, float* v_tables, float* v_points, void* stream) {
    const int64_t work = n * 3 * p.levels;
    if (work == 0) return;
    hash_triplane_bwd_kernel<<<blocks_for(work), kThreads, 0, (cudaStream_t)stream>>>(n, points, tables, p, v_out,
                                                                                     v_tables, v_points);
}

}  // namespace cuda
}  // namespace avatar
