// Fused Gaussian deformation: the element math shared by the CPU loop and the CUDA kernel.
//
// A canonical Gaussian (mean, quaternion, log-scale) gets predicted offsets and is then posed by
// the rigid transform (R, t), whose rotation is also given as the quaternion q_pose:
//   mean'      = R (mean + d_mean) + t
//   quat'      = normalize(q_pose * d_quat * quat)     (Hamilton products, wxyz)
//   log_scale' = log_scale + d_log_scale
// d_quat rotates the Gaussian in the canonical frame before posing; it need not be unit length.
#pragma once

#include "common.h"

namespace avatar {

struct RigidPose {
    float R[9];   // row-major rotation
    float t[3];
    float q[4];   // the same rotation as a quaternion (wxyz)
};

AVATAR_HD void deform_gaussian_fwd(const float* mean, const float* quat, const float* log_scale,
                                   const float* d_mean, const float* d_quat, const float* d_log_scale,
                                   const RigidPose& pose, float* out_mean, float* out_quat,
                                   float* out_log_scale) {
    const float m[3] = {mean[0] + d_mean[0], mean[1] + d_mean[1], mean[2] + d_mean[2]};
    for (int i = 0; i < 3; ++i)
        out_mean[i] = pose.R[i * 3 + 0] * m[0] + pose.R[i * 3 + 1] * m[1] + pose.R[i * 3 + 2] * m[2] + pose.t[i];
    float local[4], posed[4];
    quat_mul(d_quat, quat, local);
    quat_mul(pose.q, local, posed);
    quat_normalize(posed, out_quat);
    for (int i = 0; i < 3; ++i) out_log_scale[i] = log_scale[i] + d_log_scale[i];
}

// Gradient of deform_gaussian_fwd. v_pose[16] receives this element's share of the pose
// gradient: R (9, row-major), t (3), q_pose (4); the caller sums the shares.
AVATAR_HD void deform_gaussian_bwd(const float* mean, const float* quat, const float* d_mean,
                                   const float* d_quat, const RigidPose& pose, const float* v_out_mean,
                                   const float* v_out_quat, const float* v_out_log_scale, float* v_mean,
                                   float* v_quat, float* v_log_scale, float* v_d_mean, float* v_d_quat,
                                   float* v_d_log_scale, float* v_pose) {
    const float m[3] = {mean[0] + d_mean[0], mean[1] + d_mean[1], mean[2] + d_mean[2]};
    float vm[3];
    for (int j = 0; j < 3; ++j)
        vm[j] = pose.R[0 * 3 + j] * v_out_mean[0] + pose.R[1 * 3 + j] * v_out_mean[1] +
                pose.R[2 * 3 + j] * v_out_mean[2];
    for (int j = 0; j < 3; ++j) {
        v_mean[j] = vm[j];
        v_d_mean[j] = vm[j];
    }
    for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 3; ++j) v_pose[i * 3 + j] = v_out_mean[i] * m[j];
        v_pose[9 + i] = v_out_mean[i];
    }

    float local[4], posed[4], unit[4];
    quat_mul(d_quat, quat, local);
    quat_mul(pose.q, local, posed);
    const float inv_norm = quat_normalize(posed, unit);
    float v_posed[4], v_local[4];
    quat_normalize_bwd(unit, inv_norm, v_out_quat, v_posed);
    quat_mul_bwd(pose.q, local, v_posed, v_pose + 12, v_local);
    quat_mul_bwd(d_quat, quat, v_local, v_d_quat, v_quat);

    for (int i = 0; i < 3; ++i) {
        v_log_scale[i] = v_out_log_scale[i];
        v_d_log_scale[i] = v_out_log_scale[i];
    }
}

}  // namespace avatar
