// Small helpers shared by every kernel: the host/device qualifiers and 3x3 matrix algebra.
//
// Headers in this folder include no torch and no CUDA runtime headers, so the same element math
// compiles with g++ for the CPU loops and with nvcc for the CUDA kernels.
#pragma once

#include <math.h>
#include <stdint.h>

#if defined(__CUDACC__)
#define AVATAR_HD __host__ __device__ __forceinline__
#else
#define AVATAR_HD inline
#endif

namespace avatar {

// min/max without fminf's NaN rules, which keep x86 compilers from inlining fminf (a libm call
// in a hot loop otherwise). Inputs are checked finite before they reach the kernels.
AVATAR_HD float min_f(float a, float b) { return a < b ? a : b; }
AVATAR_HD float max_f(float a, float b) { return a > b ? a : b; }

// Row-major 3x3 matrix; plain arrays keep it trivially copyable on both sides.
struct Mat3 {
    float m[9];
};

AVATAR_HD Mat3 mat3_mul(const Mat3& a, const Mat3& b) {
    Mat3 r;
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j)
            r.m[i * 3 + j] = a.m[i * 3 + 0] * b.m[0 * 3 + j] + a.m[i * 3 + 1] * b.m[1 * 3 + j] +
                             a.m[i * 3 + 2] * b.m[2 * 3 + j];
    return r;
}

AVATAR_HD Mat3 mat3_transpose(const Mat3& a) {
    Mat3 r;
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) r.m[i * 3 + j] = a.m[j * 3 + i];
    return r;
}

AVATAR_HD void mat3_vec(const Mat3& a, const float* v, float* out) {
    for (int i = 0; i < 3; ++i)
        out[i] = a.m[i * 3 + 0] * v[0] + a.m[i * 3 + 1] * v[1] + a.m[i * 3 + 2] * v[2];
}

// a^T v
AVATAR_HD void mat3_tvec(const Mat3& a, const float* v, float* out) {
    for (int i = 0; i < 3; ++i)
        out[i] = a.m[0 * 3 + i] * v[0] + a.m[1 * 3 + i] * v[1] + a.m[2 * 3 + i] * v[2];
}

// Rotation matrix of a unit quaternion (w, x, y, z).
AVATAR_HD Mat3 quat_to_rotmat(float w, float x, float y, float z) {
    Mat3 r;
    r.m[0] = 1.f - 2.f * (y * y + z * z);
    r.m[1] = 2.f * (x * y - w * z);
    r.m[2] = 2.f * (x * z + w * y);
    r.m[3] = 2.f * (x * y + w * z);
    r.m[4] = 1.f - 2.f * (x * x + z * z);
    r.m[5] = 2.f * (y * z - w * x);
    r.m[6] = 2.f * (x * z - w * y);
    r.m[7] = 2.f * (y * z + w * x);
    r.m[8] = 1.f - 2.f * (x * x + y * y);
    return r;
}

// Gradient of quat_to_rotmat: v_R (row-major 3x3) -> v_q (w, x, y, z) for the unit quaternion.
AVATAR_HD void quat_to_rotmat_bwd(float w, float x, float y, float z, const Mat3& v, float* v_q) {
    const float* g = v.m;
    v_q[0] = 2.f * (-z * g[1] + y * g[2] + z * g[3] - x * g[5] - y * g[6] + x * g[7]);
    v_q[1] = 2.f * (y * g[1] + z * g[2] + y * g[3] - 2.f * x * g[4] - w * g[5] + z * g[6] + w * g[7] -
                    2.f * x * g[8]);
    v_q[2] = 2.f * (-2.f * y * g[0] + x * g[1] + w * g[2] + x * g[3] + z * g[5] - w * g[6] + z * g[7] -
                    2.f * y * g[8]);
    v_q[3] = 2.f * (-2.f * z * g[0] - w * g[1] + x * g[2] + w * g[3] - 2.f * z * g[4] + y * g[5] + x * g[6] +
                    y * g[7]);
}

// q / |q| and the gradient through that normalisation: v_q = (v_n - n (n . v_n)) / |q|.
AVATAR_HD float quat_normalize(const float* q, float* n) {
    float norm = sqrtf(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
    float inv = 1.f / max_f(norm, 1e-12f);
    for (int i = 0; i < 4; ++i) n[i] = q[i] * inv;
    return inv;
}

AVATAR_HD void quat_normalize_bwd(const float* n, float inv_norm, const float* v_n, float* v_q) {
    float d = n[0] * v_n[0] + n[1] * v_n[1] + n[2] * v_n[2] + n[3] * v_n[3];
    for (int i = 0; i < 4; ++i) v_q[i] = (v_n[i] - n[i] * d) * inv_norm;
}

// Hamilton product a * b, both (w, x, y, z).
AVATAR_HD void quat_mul(const float* a, const float* b, float* out) {
    out[0] = a[0] * b[0] - a[1] * b[1] - a[2] * b[2] - a[3] * b[3];
    out[1] = a[0] * b[1] + a[1] * b[0] + a[2] * b[3] - a[3] * b[2];
    out[2] = a[0] * b[2] - a[1] * b[3] + a[2] * b[0] + a[3] * b[1];
    out[3] = a[0] * b[3] + a[1] * b[2] - a[2] * b[1] + a[3] * b[0];
}

// Gradient of quat_mul: the product is bilinear, so v_a = v_out * conj(b) and v_b = conj(a) * v_out.
AVATAR_HD void quat_mul_bwd(const float* a, const float* b, const float* v_out, float* v_a, float* v_b) {
    const float bc[4] = {b[0], -b[1], -b[2], -b[3]};
    const float ac[4] = {a[0], -a[1], -a[2], -a[3]};
    quat_mul(v_out, bc, v_a);
    quat_mul(ac, v_out, v_b);
}

}  // namespace avatar
