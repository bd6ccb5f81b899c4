// CUDA kernels of the fused Gaussian deformation: one thread per Gaussian.
#include <cuda_runtime.h>

#include "cuda_launch.h"

namespace avatar {
namespace cuda {

namespace {

constexpr int kThreads = 256;

__global__ void deform_fwd_kernel(int64_t n, const float* __restrict__ means, const float* __restrict__ quats,
                                  const float* __restrict__ log_scales, const float* __restrict__ d_means,
                                  const float* __restrict__ d_quats, const float* __restrict__ d_log_scales,
                                  RigidPose pose, float* __restrict__ out_means, float* __restrict__ out_quats,
                                  float* __restrict__ out_log_scales) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    deform_gaussian_fwd(means + 3 * i, quats + 4 * i, log_scales + 3 * i, d_means + 3 * i, d_quats + 4 * i,
                        d_log_scales + 3 * i, pose, out_means + 3 * i, out_quats + 4 * i, out_log_scales + 3 * i);
}

__global__ void deform_bwd_kernel(int64_t n, const float* __restrict__ means, const float* __restrict__ quats,
                                  const float* __restrict__ d_means, const float* __restrict__ d_quats,
                                  RigidPose pose, const float* __restrict__ v_out_means,
                                  const float* __restrict__ v_out_quats, const float* __restrict__ v_out_log_scales,
                                  float* v_means, float* v_quats, float* v_log_scales, float* v_d_means,
                                  float* v_d_quats, float* v_d_log_scales, float* v_pose_shares) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    deform_gaussian_bwd(means + 3 * i, quats + 4 * i, d_means + 3 * i, d_quats + 4 * i, pose, v_out_means + 3 * i,
                        v_out_quats + 4 * i, v_out_log_scales + 3 * i, v_means + 3 * i, v_quats + 4 * i,
                        v_log_scales + 3 * i, v_d_means + 3 * i, v_d_quats + 4 * i, v_d_log_scales + 3 * i,
                        v_pose_shares + 16 * i);
}

unsigned int blocks_for(int64_t work) { return (unsigned int)((work + kThreads - 1) / kThreads); }

}  // namespace

void deform_forward(int64_t n, const float* means, const float* quats, const float* log_scales,
                    const float* d_means, const float* d_quats, const float* d_log_scales, const RigidPose& pose,
                    float* out_means, float* out_quats, float* out_log_scales, void* stream) {
    if (n == 0) return;
    deform_fwd_kernel<<<blocks_for(n), kThreads, 0, (cudaStream_t)stream>>>(
        n, means, quats, log_scales, d_means, d_quats, d_log_scales, pose, out_means, out_quats, out_log_scales);
}

void deform_backward(int64_t n, const float* means, const float* quats, const float* d_means,
                     const float* d_quats, const RigidPose& pose, const float* v_out_means,
                     const float* v_out_quats, const float* v_out_log_scales, float* v_means, float* v_quats,
                     float* v_log_scales, float* v_d_means, float* v_d_quats, float* v_d_log_scales,
                     float* v_pose_shares, void* stream) {
    if (n == 0) return;
    deform_bwd_kernel<<<blocks_for(n), kThreads, 0, (cudaStream_t)stream>>>(
        n, means, quats, d_means, d_quats, pose, v_out_means, v_out_quats, v_out_log_scales, v_means, v_quats,
        v_log_scales, v_d_means, v_d_quats, v_d_log_scales, v_pose_shares);
}

}  // namespace cuda
}  // namespace avatar
