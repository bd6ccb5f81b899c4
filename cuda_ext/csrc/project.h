// EWA projection of one 3D Gaussian to the image plane, forward and backward.
//
// Conventions follow gsplat: OpenCV camera (x right, y down, z forward), camera-from-world view
// matrix, pixel centres at (i + 0.5, j + 0.5), conic = inverse 2D covariance stored as (a, b, c)
// for [[a, b], [b, c]], and a low-pass dilation of eps2d pixels^2 on the 2D covariance.
#pragma once

#include "common.h"

namespace avatar {

struct Camera {
    Mat3 R;        // camera-from-world rotation
    float t[3];    // camera-from-world translation
    float fx, fy, cx, cy;
    int width, height;
    float near_plane, far_plane, eps2d;
};

// Alpha below 1/255 is never blended, so a Gaussian reaches at most the ellipse
// sigma <= ln(255 * opacity) (sigma being half the Mahalanobis distance squared).
AVATAR_HD float opacity_cutoff(float opacity) { return logf(255.f * opacity); }

struct ProjectionIntermediates {
    float pc[3];      // mean in camera space
    float qn[4];      // normalised quaternion
    float q_inv_norm;
    float s[3];       // scales
    Mat3 Rq;          // rotation of the Gaussian
    Mat3 cov_world;   // 3D covariance in world space
    Mat3 cov_cam;     // 3D covariance in camera space
    float tx, ty;     // camera-space x, y clamped to the widened frustum (for the Jacobian only)
    bool clamp_x, clamp_y;
    float cov2d[3];   // dilated 2D covariance (xx, xy, yy)
    float det;
};

AVATAR_HD float sigmoidf(float x) { return 1.f / (1.f + expf(-x)); }

// Fills `it`; returns false when the Gaussian is culled by the near or far plane.
AVATAR_HD bool project_intermediates(const float* mean, const float* quat, const float* log_scale,
                                     const Camera& cam, ProjectionIntermediates& it) {
    mat3_vec(cam.R, mean, it.pc);
    for (int i = 0; i < 3; ++i) it.pc[i] += cam.t[i];
    const float z = it.pc[2];
    if (!(z > cam.near_plane && z < cam.far_plane)) return false;

    it.q_inv_norm = quat_normalize(quat, it.qn);
    it.Rq = quat_to_rotmat(it.qn[0], it.qn[1], it.qn[2], it.qn[3]);
    for (int i = 0; i < 3; ++i) it.s[i] = expf(log_scale[i]);
    Mat3 M;  // Rq * diag(s)
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) M.m[i * 3 + j] = it.Rq.m[i * 3 + j] * it.s[j];
    it.cov_world = mat3_mul(M, mat3_transpose(M));
    it.cov_cam = mat3_mul(mat3_mul(cam.R, it.cov_world), mat3_transpose(cam.R));

    // The Jacobian is evaluated at a point clamped to 1.3x the field of view: far off-screen
    // Gaussians would otherwise get absurd footprints from the perspective divide.
    const float lim_x_pos = (cam.width - cam.cx) / cam.fx + 0.3f * (0.5f * cam.width / cam.fx);
    const float lim_x_neg = cam.cx / cam.fx + 0.3f * (0.5f * cam.width / cam.fx);
    const float lim_y_pos = (cam.height - cam.cy) / cam.fy + 0.3f * (0.5f * cam.height / cam.fy);
    const float lim_y_neg = cam.cy / cam.fy + 0.3f * (0.5f * cam.height / cam.fy);
    const float ux = it.pc[0] / z, uy = it.pc[1] / z;
    it.clamp_x = ux < -lim_x_neg || ux > lim_x_pos;
    it.clamp_y = uy < -lim_y_neg || uy > lim_y_pos;
    it.tx = z * min_f(max_f(ux, -lim_x_neg), lim_x_pos);
    it.ty = z * min_f(max_f(uy, -lim_y_neg), lim_y_pos);

    const float j00 = cam.fx / z, j02 = -cam.fx * it.tx / (z * z);
    const float j11 = cam.fy / z, j12 = -cam.fy * it.ty / (z * z);
    const float* C = it.cov_cam.m;
    // J C J^T with J = [[j00, 0, j02], [0, j11, j12]]
    const float a0 = j00 * C[0] + j02 * C[6], a1 = j00 * C[1] + j02 * C[7], a2 = j00 * C[2] + j02 * C[8];
    const float b1 = j11 * C[4] + j12 * C[7], b2 = j11 * C[5] + j12 * C[8];
    it.cov2d[0] = a0 * j00 + a2 * j02 + cam.eps2d;
    it.cov2d[1] = a1 * j11 + a2 * j12;
    it.cov2d[2] = b1 * j11 + b2 * j12 + cam.eps2d;
    it.det = it.cov2d[0] * it.cov2d[2] - it.cov2d[1] * it.cov2d[1];
    return it.det > 0.f;
}

// Projects one Gaussian. Returns false (and writes radius 0) when it cannot be seen: behind the
// near plane, beyond the far plane, too transparent to ever reach alpha 1/255, or off screen.
AVATAR_HD bool project_gaussian_fwd(const float* mean, const float* quat, const float* log_scale,
                                    float opacity_logit, const Camera& cam, float* mean2d, float* conic,
                                    float* depth, float* opacity, int32_t* radius) {
    ProjectionIntermediates it;
    radius[0] = radius[1] = 0;
    mean2d[0] = mean2d[1] = 0.f;
    conic[0] = conic[1] = conic[2] = 0.f;
    *depth = 0.f;
    *opacity = 0.f;
    if (!project_intermediates(mean, quat, log_scale, cam, it)) return false;
    const float o = sigmoidf(opacity_logit);
    const float cutoff = opacity_cutoff(o);
    if (!(cutoff > 0.f)) return false;

    const float z = it.pc[2];
    const float mx = cam.fx * it.pc[0] / z + cam.cx;
    const float my = cam.fy * it.pc[1] / z + cam.cy;
    const float ex = sqrtf(2.f * cutoff * it.cov2d[0]);
    const float ey = sqrtf(2.f * cutoff * it.cov2d[2]);
    if (mx + ex <= 0.f || mx - ex >= cam.width || my + ey <= 0.f || my - ey >= cam.height) return false;

    mean2d[0] = mx;
    mean2d[1] = my;
    const float inv_det = 1.f / it.det;
    conic[0] = it.cov2d[2] * inv_det;
    conic[1] = -it.cov2d[1] * inv_det;
    conic[2] = it.cov2d[0] * inv_det;
    *depth = z;
    *opacity = o;
    radius[0] = (int32_t)ceilf(ex);
    radius[1] = (int32_t)ceilf(ey);
    return true;
}

// Gradient of project_gaussian_fwd for a visible Gaussian. v_R (row-major 3x3) and v_t are this
// Gaussian's share of the gradient of the view matrix, v_K its share of (fx, fy, cx, cy); the
// caller sums the shares.
AVATAR_HD void project_gaussian_bwd(const float* mean, const float* quat, const float* log_scale,
                                    float opacity_logit, const Camera& cam, const float* v_mean2d,
                                    const float* v_conic, float v_depth, float v_opacity, float* v_mean,
                                    float* v_quat, float* v_log_scale, float* v_opacity_logit, float* v_R,
                                    float* v_t, float* v_K) {
    ProjectionIntermediates it;
    project_intermediates(mean, quat, log_scale, cam, it);
    const float z = it.pc[2];
    const float o = sigmoidf(opacity_logit);
    *v_opacity_logit = v_opacity * o * (1.f - o);

    // conic = inverse(cov2d): v_cov2d = -Q V Q with V the symmetric gradient of Q.
    const float inv_det = 1.f / it.det;
    const float qa = it.cov2d[2] * inv_det, qb = -it.cov2d[1] * inv_det, qc = it.cov2d[0] * inv_det;
    const float va = v_conic[0], vb = 0.5f * v_conic[1], vc = v_conic[2];
    // Q V
    const float m00 = qa * va + qb * vb, m01 = qa * vb + qb * vc;
    const float m10 = qb * va + qc * vb, m11 = qb * vb + qc * vc;
    const float g00 = -(m00 * qa + m01 * qb);
    const float g01 = -(m00 * qb + m01 * qc);
    const float g11 = -(m10 * qb + m11 * qc);

    // cov2d = J C J^T + eps: v_C = J^T G J, v_J = 2 G J C.
    const float j00 = cam.fx / z, j02 = -cam.fx * it.tx / (z * z);
    const float j11 = cam.fy / z, j12 = -cam.fy * it.ty / (z * z);
    const float J[6] = {j00, 0.f, j02, 0.f, j11, j12};
    const float G[4] = {g00, g01, g01, g11};
    Mat3 vC;
    for (int i = 0; i < 3; ++i)
        for (int k = 0; k < 3; ++k) {
            float acc = 0.f;
            for (int a = 0; a < 2; ++a)
                for (int b = 0; b < 2; ++b) acc += J[a * 3 + i] * G[a * 2 + b] * J[b * 3 + k];
            vC.m[i * 3 + k] = acc;
        }
    float vJ[6];
    for (int a = 0; a < 2; ++a)
        for (int k = 0; k < 3; ++k) {
            float acc = 0.f;
            for (int b = 0; b < 2; ++b)
                for (int j = 0; j < 3; ++j) acc += G[a * 2 + b] * J[b * 3 + j] * it.cov_cam.m[j * 3 + k];
            vJ[a * 3 + k] = 2.f * acc;
        }

    float v_pc[3] = {0.f, 0.f, v_depth};
    // Jacobian entries through (tx, ty, z); tx = z * clamp(x / z), so a clamped tx follows z only.
    const float v_tx = -cam.fx / (z * z) * vJ[2];
    const float v_ty = -cam.fy / (z * z) * vJ[5];
    v_pc[2] += -cam.fx / (z * z) * vJ[0] - cam.fy / (z * z) * vJ[4] +
               2.f * cam.fx * it.tx / (z * z * z) * vJ[2] + 2.f * cam.fy * it.ty / (z * z * z) * vJ[5];
    if (it.clamp_x) v_pc[2] += v_tx * it.tx / z; else v_pc[0] += v_tx;
    if (it.clamp_y) v_pc[2] += v_ty * it.ty / z; else v_pc[1] += v_ty;

    // Intrinsics: through the Jacobian, the projected mean and, when clamped, the frustum limit
    // L = tx / z, which moves with fx and cx as dL/dfx = -L / fx and dL/dcx = -1 / fx.
    v_K[0] = vJ[0] / z - vJ[2] * it.tx / (z * z) + v_mean2d[0] * it.pc[0] / z;
    v_K[1] = vJ[4] / z - vJ[5] * it.ty / (z * z) + v_mean2d[1] * it.pc[1] / z;
    v_K[2] = v_mean2d[0];
    v_K[3] = v_mean2d[1];
    if (it.clamp_x) {
        v_K[0] -= v_tx * it.tx / cam.fx;
        v_K[2] -= v_tx * z / cam.fx;
    }
    if (it.clamp_y) {
        v_K[1] -= v_ty * it.ty / cam.fy;
        v_K[3] -= v_ty * z / cam.fy;
    }

    // mean2d = (fx x / z + cx, fy y / z + cy)
    v_pc[0] += cam.fx / z * v_mean2d[0];
    v_pc[1] += cam.fy / z * v_mean2d[1];
    v_pc[2] += -cam.fx * it.pc[0] / (z * z) * v_mean2d[0] - cam.fy * it.pc[1] / (z * z) * v_mean2d[1];

    // cov_cam = Rv cov_world Rv^T and pc = Rv mean + t
    const Mat3& Rv = cam.R;
    const Mat3 vW = mat3_mul(mat3_mul(mat3_transpose(Rv), vC), Rv);
    const Mat3 RvW = mat3_mul(Rv, it.cov_world);
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) {
            float acc = 0.f;
            for (int k = 0; k < 3; ++k) acc += vC.m[i * 3 + k] * RvW.m[k * 3 + j];
            v_R[i * 3 + j] = 2.f * acc + v_pc[i] * mean[j];
        }
    for (int i = 0; i < 3; ++i) v_t[i] = v_pc[i];
    mat3_tvec(Rv, v_pc, v_mean);

    // cov_world = M M^T, M = Rq diag(s): v_M = 2 vW M.
    Mat3 M;
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) M.m[i * 3 + j] = it.Rq.m[i * 3 + j] * it.s[j];
    const Mat3 vM = mat3_mul(vW, M);
    Mat3 vRq;
    float v_s[3] = {0.f, 0.f, 0.f};
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) {
            const float g = 2.f * vM.m[i * 3 + j];
            vRq.m[i * 3 + j] = g * it.s[j];
            v_s[j] += g * it.Rq.m[i * 3 + j];
        }
    for (int j = 0; j < 3; ++j) v_log_scale[j] = v_s[j] * it.s[j];
    float v_qn[4];
    quat_to_rotmat_bwd(it.qn[0], it.qn[1], it.qn[2], it.qn[3], vRq, v_qn);
    quat_normalize_bwd(it.qn, it.q_inv_norm, v_qn, v_quat);
}

}  // namespace avatar
