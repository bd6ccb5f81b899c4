// CUDA kernels of the hash-grid triplane encoding: one thread per (point, plane, level).
#include <cuda_runtime.h>

#include "cuda_launch.h"

namespace avatar {
namespace cuda {

namespace {

constexpr int kThreads = 256;

template <int F>
__global__ void hash_triplane_fwd_kernel(int64_t n, const float* __restrict__ points,
                                         const float* __restrict__ tables, HashTriplaneParams p,
                                         float* __restrict__ out) {
    const int tasks = 3 * p.levels;
    const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= n * tasks) return;
    // Consecutive threads take consecutive points of one (plane, level), so a warp reads one table.
    const int task = (int)(idx / n);
    const int64_t i = idx % n;
    float unit[3];
    bool inside[3];
    normalise_point(points + 3 * i, p, unit, inside);
    const HashLevel L = hash_level(p, task / p.levels, task % p.levels);
    hash_level_fwd<F>(unit[L.a0], unit[L.a1], L, tables, out + i * tasks * F + task * F);
}

struct AtomicAdd {
    __device__ void operator()(float* dst, float v) const { atomicAdd(dst, v); }
};

template <int F>
__global__ void hash_triplane_bwd_kernel(int64_t n, const float* __restrict__ points,
                                         const float* __restrict__ tables, HashTriplaneParams p,
                                         const float* __restrict__ v_out, float* v_tables, float* v_points) {
    const int tasks = 3 * p.levels;
    const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= n * tasks) return;
    const int task = (int)(idx / n);
    const int64_t i = idx % n;
    float unit[3];
    bool inside[3];
    normalise_point(points + 3 * i, p, unit, inside);
    const HashLevel L = hash_level(p, task / p.levels, task % p.levels);
    const float* v = v_out + i * tasks * F + task * F;
    if (v_tables) hash_level_bwd_table<F>(unit, L, v, v_tables, AtomicAdd());
    if (v_points) {
        float vp[3] = {0.f, 0.f, 0.f};
        hash_level_bwd_point<F>(unit, inside, L, p, tables, v, vp);
        for (int k = 0; k < 3; ++k)
            if (vp[k] != 0.f) atomicAdd(v_points + 3 * i + k, vp[k]);
    }
}

unsigned int blocks_for(int64_t work) { return (unsigned int)((work + kThreads - 1) / kThreads); }

template <int F>
void launch_fwd(int64_t n, const float* points, const float* tables, const HashTriplaneParams& p, float* out,
                cudaStream_t stream) {
    const int64_t work = n * 3 * p.levels;
    hash_triplane_fwd_kernel<F><<<blocks_for(work), kThreads, 0, stream>>>(n, points, tables, p, out);
}

template <int F>
void launch_bwd(int64_t n, const float* points, const float* tables, const HashTriplaneParams& p, const float* v_out,
                float* v_tables, float* v_points, cudaStream_t stream) {
    const int64_t work = n * 3 * p.levels;
    hash_triplane_bwd_kernel<F><<<blocks_for(work), kThreads, 0, stream>>>(n, points, tables, p, v_out, v_tables,
                                                                          v_points);
}

}  // namespace

void hash_triplane_forward(int64_t n, const float* points, const float* tables, const HashTriplaneParams& p,
                           float* out, void* stream) {
    if (n == 0) return;
    const cudaStream_t s = (cudaStream_t)stream;
    switch (p.features) {
        case 1: launch_fwd<1>(n, points, tables, p, out, s); break;
        case 2: launch_fwd<2>(n, points, tables, p, out, s); break;
        case 3: launch_fwd<3>(n, points, tables, p, out, s); break;
        case 4: launch_fwd<4>(n, points, tables, p, out, s); break;
        case 5: launch_fwd<5>(n, points, tables, p, out, s); break;
        case 6: launch_fwd<6>(n, points, tables, p, out, s); break;
        case 7: launch_fwd<7>(n, points, tables, p, out, s); break;
        default: launch_fwd<8>(n, points, tables, p, out, s); break;
    }
}

void hash_triplane_backward(int64_t n, const float* points, const float* tables, const HashTriplaneParams& p,
                            const float* v_out, float* v_tables, float* v_points, void* stream) {
    if (n == 0) return;
    const cudaStream_t s = (cudaStream_t)stream;
    switch (p.features) {
        case 1: launch_bwd<1>(n, points, tables, p, v_out, v_tables, v_points, s); break;
        case 2: launch_bwd<2>(n, points, tables, p, v_out, v_tables, v_points, s); break;
        case 3: launch_bwd<3>(n, points, tables, p, v_out, v_tables, v_points, s); break;
        case 4: launch_bwd<4>(n, points, tables, p, v_out, v_tables, v_points, s); break;
        case 5: launch_bwd<5>(n, points, tables, p, v_out, v_tables, v_points, s); break;
        case 6: launch_bwd<6>(n, points, tables, p, v_out, v_tables, v_points, s); break;
        case 7: launch_bwd<7>(n, points, tables, p, v_out, v_tables, v_points, s); break;
        default: launch_bwd<8>(n, points, tables, p, v_out, v_tables, v_points, s); break;
    }
}

}  // namespace cuda
}  // namespace avatar
