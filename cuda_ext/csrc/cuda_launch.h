// Launch functions of the CUDA kernels, callable from C++ compiled without nvcc.
//
// The .cu files include no torch headers and take raw device pointers; `stream` is a
// cudaStream_t passed as void* so this header needs no CUDA include either.
#pragma once

#include <stdint.h>

#include "deform.h"
#include "hash_triplane.h"

namespace avatar {
namespace cuda {

void hash_triplane_forward(int64_t n, const float* points, const float* tables, const HashTriplaneParams& p,
                           float* out, void* stream);

// v_tables (zeroed) and v_points (zeroed) accumulate atomically; either may be null.
void hash_triplane_backward(int64_t n, const float* points, const float* tables, const HashTriplaneParams& p,
                            const float* v_out, float* v_tables, float* v_points, void* stream);

void deform_forward(int64_t n, const float* means, const float* quats, const float* log_scales,
                    const float* d_means, const float* d_quats, const float* d_log_scales, const RigidPose& pose,
                    float* out_means, float* out_quats, float* out_log_scales, void* stream);

// v_pose_shares [N, 16]: each Gaussian's share of the pose gradient, summed by the caller.
void deform_backward(int64_t n, const float* means, const float* quats, const float* d_means,
                     const float* d_quats, const RigidPose& pose, const float* v_out_means,
                     const float* v_out_quats, const float* v_out_log_scales, float* v_means, float* v_quats,
                     float* v_log_scales, float* v_d_means, float* v_d_quats, float* v_d_log_scales,
                     float* v_pose_shares, void* stream);

}  // namespace cuda
}  // namespace avatar
