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

// The forward math is written once over a "lane" type: float (one Gaussian: the scalar loop and
// the backward pass, which recomputes these intermediates) or a 16-lane vector (sixteen
// Gaussians: the CPU's AVX-512 loop, whose specialisation is in raster_project.cpp).
// ProjLanes<Real> spells what differs between the two; Mask is bool for float.
template <class Real>
struct ProjLanes;

template <>
struct ProjLanes<float> {
    typedef bool Mask;
    static AVATAR_HD float constant(float x) { return x; }
    static AVATAR_HD float sqrt(float x) { return sqrtf(x); }
    static AVATAR_HD float exp(float x) { return expf(x); }
    static AVATAR_HD float log(float x) { return logf(x); }
    static AVATAR_HD float ceil(float x) { return ceilf(x); }
    static AVATAR_HD float min(float a, float b) { return min_f(a, b); }
    static AVATAR_HD float max(float a, float b) { return max_f(a, b); }
    static AVATAR_HD Mask lt(float a, float b) { return a < b; }
    static AVATAR_HD Mask gt(float a, float b) { return a > b; }
    static AVATAR_HD Mask both(Mask a, Mask b) { return a && b; }
    static AVATAR_HD Mask either(Mask a, Mask b) { return a || b; }
    static AVATAR_HD float select(Mask m, float a, float b) { return m ? a : b; }
};

template <class Real>
struct ProjectionIntermediates {
    typedef typename ProjLanes<Real>::Mask Mask;
    Real pc[3];          // mean in camera space
    Real qn[4];          // normalised quaternion
    Real q_inv_norm;
    Real s[3];           // scales
    Real Rq[9];          // rotation of the Gaussian (row-major)
    Real cov_world[9];   // 3D covariance in world space
    Real cov_cam[9];     // 3D covariance in camera space
    Real tx, ty;         // camera-space x, y clamped to the widened frustum (for the Jacobian only)
    Mask clamp_x, clamp_y;
    Real cov2d[3];       // dilated 2D covariance (xx, xy, yy)
    Real det;
};

// Fills `it`; the mask is false where the Gaussian is culled by the near or far plane or its
// 2D covariance is degenerate (those lanes hold garbage, never used).
template <class Real>
AVATAR_HD typename ProjLanes<Real>::Mask project_intermediates(const Real* mean, const Real* quat,
                                                               const Real* log_scale, const Camera& cam,
                                                               ProjectionIntermediates<Real>& it) {
    typedef ProjLanes<Real> Ln;
    const float* V = cam.R.m;
    for (int i = 0; i < 3; ++i)
        it.pc[i] = Ln::constant(V[i * 3]) * mean[0] + Ln::constant(V[i * 3 + 1]) * mean[1] +
                   Ln::constant(V[i * 3 + 2]) * mean[2] + Ln::constant(cam.t[i]);
    const Real z = it.pc[2];
    const typename Ln::Mask in_depth = Ln::both(Ln::gt(z, Ln::constant(cam.near_plane)),
                                                Ln::lt(z, Ln::constant(cam.far_plane)));

    const Real norm2 = quat[0] * quat[0] + quat[1] * quat[1] + quat[2] * quat[2] + quat[3] * quat[3];
    it.q_inv_norm = Ln::constant(1.f) / Ln::max(Ln::sqrt(norm2), Ln::constant(1e-12f));
    for (int i = 0; i < 4; ++i) it.qn[i] = quat[i] * it.q_inv_norm;
    const Real w = it.qn[0], x = it.qn[1], y = it.qn[2], qz = it.qn[3];
    const Real one = Ln::constant(1.f), two = Ln::constant(2.f);
    it.Rq[0] = one - two * (y * y + qz * qz);
    it.Rq[1] = two * (x * y - w * qz);
    it.Rq[2] = two * (x * qz + w * y);
    it.Rq[3] = two * (x * y + w * qz);
    it.Rq[4] = one - two * (x * x + qz * qz);
    it.Rq[5] = two * (y * qz - w * x);
    it.Rq[6] = two * (x * qz - w * y);
    it.Rq[7] = two * (y * qz + w * x);
    it.Rq[8] = one - two * (x * x + y * y);
    for (int i = 0; i < 3; ++i) it.s[i] = Ln::exp(log_scale[i]);
    Real M[9];  // Rq diag(s)
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) M[i * 3 + j] = it.Rq[i * 3 + j] * it.s[j];
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j)
            it.cov_world[i * 3 + j] = M[i * 3] * M[j * 3] + M[i * 3 + 1] * M[j * 3 + 1] + M[i * 3 + 2] * M[j * 3 + 2];
    Real VW[9];  // Rv cov_world
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j)
            VW[i * 3 + j] = Ln::constant(V[i * 3]) * it.cov_world[j] + Ln::constant(V[i * 3 + 1]) * it.cov_world[3 + j] +
                            Ln::constant(V[i * 3 + 2]) * it.cov_world[6 + j];
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j)
            it.cov_cam[i * 3 + j] = VW[i * 3] * Ln::constant(V[j * 3]) + VW[i * 3 + 1] * Ln::constant(V[j * 3 + 1]) +
                                    VW[i * 3 + 2] * Ln::constant(V[j * 3 + 2]);

    // The Jacobian is evaluated at a point clamped to 1.3x the field of view: far off-screen
    // Gaussians would otherwise get absurd footprints from the perspective divide.
    const float lim_x_pos = (cam.width - cam.cx) / cam.fx + 0.3f * (0.5f * cam.width / cam.fx);
    const float lim_x_neg = cam.cx / cam.fx + 0.3f * (0.5f * cam.width / cam.fx);
    const float lim_y_pos = (cam.height - cam.cy) / cam.fy + 0.3f * (0.5f * cam.height / cam.fy);
    const float lim_y_neg = cam.cy / cam.fy + 0.3f * (0.5f * cam.height / cam.fy);
    const Real inv_z = one / z;
    const Real ux = it.pc[0] * inv_z, uy = it.pc[1] * inv_z;
    it.clamp_x = Ln::either(Ln::lt(ux, Ln::constant(-lim_x_neg)), Ln::gt(ux, Ln::constant(lim_x_pos)));
    it.clamp_y = Ln::either(Ln::lt(uy, Ln::constant(-lim_y_neg)), Ln::gt(uy, Ln::constant(lim_y_pos)));
    it.tx = z * Ln::min(Ln::max(ux, Ln::constant(-lim_x_neg)), Ln::constant(lim_x_pos));
    it.ty = z * Ln::min(Ln::max(uy, Ln::constant(-lim_y_neg)), Ln::constant(lim_y_pos));

    const Real fx = Ln::constant(cam.fx), fy = Ln::constant(cam.fy);
    const Real j00 = fx * inv_z, j02 = Ln::constant(0.f) - fx * it.tx * inv_z * inv_z;
    const Real j11 = fy * inv_z, j12 = Ln::constant(0.f) - fy * it.ty * inv_z * inv_z;
    const Real* C = it.cov_cam;
    // J C J^T with J = [[j00, 0, j02], [0, j11, j12]]
    const Real a0 = j00 * C[0] + j02 * C[6], a1 = j00 * C[1] + j02 * C[7], a2 = j00 * C[2] + j02 * C[8];
    const Real b1 = j11 * C[4] + j12 * C[7], b2 = j11 * C[5] + j12 * C[8];
    const Real eps = Ln::constant(cam.eps2d);
    it.cov2d[0] = a0 * j00 + a2 * j02 + eps;
    it.cov2d[1] = a1 * j11 + a2 * j12;
    it.cov2d[2] = b1 * j11 + b2 * j12 + eps;
    it.det = it.cov2d[0] * it.cov2d[2] - it.cov2d[1] * it.cov2d[1];
    return Ln::both(in_depth, Ln::gt(it.det, Ln::constant(0.f)));
}

// Projected 2D Gaussians, one or sixteen at a time. radius is (x, y) in pixels, as floats here
// (whole numbers); visible is false where the Gaussian cannot be seen: behind the near plane,
// beyond the far plane, too transparent to ever reach alpha 1/255, or off screen. Invisible
// lanes hold zeros.
template <class Real>
struct Projected {
    Real mean2d[2], conic[3], depth, opacity, radius[2];
    typename ProjLanes<Real>::Mask visible;
};

template <class Real>
AVATAR_HD Projected<Real> project_lanes(const Real* mean, const Real* quat, const Real* log_scale, Real opacity_logit,
                                        const Camera& cam) {
    typedef ProjLanes<Real> Ln;
    ProjectionIntermediates<Real> it;
    const typename Ln::Mask ok = project_intermediates(mean, quat, log_scale, cam, it);
    const Real one = Ln::constant(1.f), zero = Ln::constant(0.f);
    const Real o = one / (one + Ln::exp(zero - opacity_logit));
    // Alpha below 1/255 is never blended, so a Gaussian reaches at most the ellipse
    // sigma <= ln(255 opacity) (sigma being half the Mahalanobis distance squared).
    const Real cutoff = Ln::log(Ln::constant(255.f) * o);
    const Real z = it.pc[2];
    const Real inv_z = one / z;
    const Real mx = Ln::constant(cam.fx) * it.pc[0] * inv_z + Ln::constant(cam.cx);
    const Real my = Ln::constant(cam.fy) * it.pc[1] * inv_z + Ln::constant(cam.cy);
    const Real two_cut = Ln::constant(2.f) * Ln::max(cutoff, zero);
    const Real ex = Ln::sqrt(two_cut * Ln::max(it.cov2d[0], zero));
    const Real ey = Ln::sqrt(two_cut * Ln::max(it.cov2d[2], zero));
    const typename Ln::Mask on_screen =
        Ln::both(Ln::both(Ln::gt(mx + ex, zero), Ln::lt(mx - ex, Ln::constant((float)cam.width))),
                 Ln::both(Ln::gt(my + ey, zero), Ln::lt(my - ey, Ln::constant((float)cam.height))));
    Projected<Real> out;
    out.visible = Ln::both(Ln::both(ok, Ln::gt(cutoff, zero)), on_screen);
    const Real inv_det = one / it.det;
    out.mean2d[0] = Ln::select(out.visible, mx, zero);
    out.mean2d[1] = Ln::select(out.visible, my, zero);
    out.conic[0] = Ln::select(out.visible, it.cov2d[2] * inv_det, zero);
    out.conic[1] = Ln::select(out.visible, zero - it.cov2d[1] * inv_det, zero);
    out.conic[2] = Ln::select(out.visible, it.cov2d[0] * inv_det, zero);
    out.depth = Ln::select(out.visible, z, zero);
    out.opacity = Ln::select(out.visible, o, zero);
    out.radius[0] = Ln::select(out.visible, Ln::ceil(ex), zero);
    out.radius[1] = Ln::select(out.visible, Ln::ceil(ey), zero);
    return out;
}

// Projects one Gaussian; returns whether it is visible.
AVATAR_HD bool project_gaussian_fwd(const float* mean, const float* quat, const float* log_scale,
                                    float opacity_logit, const Camera& cam, float* mean2d, float* conic,
                                    float* depth, float* opacity, int32_t* radius) {
    const Projected<float> p = project_lanes<float>(mean, quat, log_scale, opacity_logit, cam);
    mean2d[0] = p.mean2d[0];
    mean2d[1] = p.mean2d[1];
    for (int k = 0; k < 3; ++k) conic[k] = p.conic[k];
    *depth = p.depth;
    *opacity = p.opacity;
    radius[0] = (int32_t)p.radius[0];
    radius[1] = (int32_t)p.radius[1];
    return p.visible;
}

// Gradient of project_lanes for visible Gaussians (one or sixteen at a time). v_R (row-major
// 3x3) and v_t are each Gaussian's share of the gradient of the view matrix, v_K its share of
// (fx, fy, cx, cy); the caller sums the shares.
template <class Real>
AVATAR_HD void project_lanes_bwd(const Real* mean, const Real* quat, const Real* log_scale, Real opacity_logit,
                                 const Camera& cam, const Real* v_mean2d, const Real* v_conic, Real v_depth,
                                 Real v_opacity, Real* v_mean, Real* v_quat, Real* v_log_scale, Real* v_opacity_logit,
                                 Real* v_R, Real* v_t, Real* v_K) {
    typedef ProjLanes<Real> Ln;
    ProjectionIntermediates<Real> it;
    project_intermediates(mean, quat, log_scale, cam, it);
    const Real zero = Ln::constant(0.f), one = Ln::constant(1.f), two = Ln::constant(2.f);
    const Real z = it.pc[2], inv_z = one / z, inv_z2 = inv_z * inv_z;
    const Real o = one / (one + Ln::exp(zero - opacity_logit));
    *v_opacity_logit = v_opacity * o * (one - o);

    // conic = inverse(cov2d): v_cov2d = -Q V Q with V the symmetric gradient of Q.
    const Real inv_det = one / it.det;
    const Real qa = it.cov2d[2] * inv_det, qb = zero - it.cov2d[1] * inv_det, qc = it.cov2d[0] * inv_det;
    const Real va = v_conic[0], vb = Ln::constant(0.5f) * v_conic[1], vc = v_conic[2];
    const Real m00 = qa * va + qb * vb, m01 = qa * vb + qb * vc;  // Q V
    const Real m10 = qb * va + qc * vb, m11 = qb * vb + qc * vc;
    const Real g00 = zero - (m00 * qa + m01 * qb);
    const Real g01 = zero - (m00 * qb + m01 * qc);
    const Real g11 = zero - (m10 * qb + m11 * qc);

    // cov2d = J C J^T + eps: v_C = J^T G J, v_J = 2 G J C.
    const Real fx = Ln::constant(cam.fx), fy = Ln::constant(cam.fy);
    const Real j00 = fx * inv_z, j02 = zero - fx * it.tx * inv_z2;
    const Real j11 = fy * inv_z, j12 = zero - fy * it.ty * inv_z2;
    const Real J[6] = {j00, zero, j02, zero, j11, j12};
    const Real G[4] = {g00, g01, g01, g11};
    Real GJ[6];  // G J
    for (int a = 0; a < 2; ++a)
        for (int k = 0; k < 3; ++k) GJ[a * 3 + k] = G[a * 2] * J[k] + G[a * 2 + 1] * J[3 + k];
    Real vC[9];
    for (int i = 0; i < 3; ++i)
        for (int k = 0; k < 3; ++k) vC[i * 3 + k] = J[i] * GJ[k] + J[3 + i] * GJ[3 + k];
    Real vJ[6];
    for (int a = 0; a < 2; ++a)
        for (int k = 0; k < 3; ++k)
            vJ[a * 3 + k] = two * (GJ[a * 3] * it.cov_cam[k] + GJ[a * 3 + 1] * it.cov_cam[3 + k] +
                                   GJ[a * 3 + 2] * it.cov_cam[6 + k]);

    Real v_pc[3] = {zero, zero, v_depth};
    // Jacobian entries through (tx, ty, z); tx = z * clamp(x / z), so a clamped tx follows z only.
    const Real v_tx = zero - fx * inv_z2 * vJ[2];
    const Real v_ty = zero - fy * inv_z2 * vJ[5];
    v_pc[2] = v_pc[2] - fx * inv_z2 * vJ[0] - fy * inv_z2 * vJ[4] + two * fx * it.tx * inv_z2 * inv_z * vJ[2] +
              two * fy * it.ty * inv_z2 * inv_z * vJ[5];
    v_pc[2] = v_pc[2] + Ln::select(it.clamp_x, v_tx * it.tx * inv_z, zero) +
              Ln::select(it.clamp_y, v_ty * it.ty * inv_z, zero);
    v_pc[0] = v_pc[0] + Ln::select(it.clamp_x, zero, v_tx);
    v_pc[1] = v_pc[1] + Ln::select(it.clamp_y, zero, v_ty);

    // Intrinsics: through the Jacobian, the projected mean and, when clamped, the frustum limit
    // L = tx / z, which moves with fx and cx as dL/dfx = -L / fx and dL/dcx = -1 / fx.
    const Real inv_fx = Ln::constant(1.f / cam.fx), inv_fy = Ln::constant(1.f / cam.fy);
    v_K[0] = vJ[0] * inv_z - vJ[2] * it.tx * inv_z2 + v_mean2d[0] * it.pc[0] * inv_z -
             Ln::select(it.clamp_x, v_tx * it.tx * inv_fx, zero);
    v_K[1] = vJ[4] * inv_z - vJ[5] * it.ty * inv_z2 + v_mean2d[1] * it.pc[1] * inv_z -
             Ln::select(it.clamp_y, v_ty * it.ty * inv_fy, zero);
    v_K[2] = v_mean2d[0] - Ln::select(it.clamp_x, v_tx * z * inv_fx, zero);
    v_K[3] = v_mean2d[1] - Ln::select(it.clamp_y, v_ty * z * inv_fy, zero);

    // mean2d = (fx x / z + cx, fy y / z + cy)
    v_pc[0] = v_pc[0] + fx * inv_z * v_mean2d[0];
    v_pc[1] = v_pc[1] + fy * inv_z * v_mean2d[1];
    v_pc[2] = v_pc[2] - fx * it.pc[0] * inv_z2 * v_mean2d[0] - fy * it.pc[1] * inv_z2 * v_mean2d[1];

    // cov_cam = Rv cov_world Rv^T and pc = Rv mean + t: v_W = Rv^T vC Rv, v_Rv = 2 vC Rv W + v_pc mean^T.
    const float* V = cam.R.m;
    Real CV[9];  // vC Rv
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j)
            CV[i * 3 + j] = vC[i * 3] * Ln::constant(V[j]) + vC[i * 3 + 1] * Ln::constant(V[3 + j]) +
                            vC[i * 3 + 2] * Ln::constant(V[6 + j]);
    Real vW[9];
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j)
            vW[i * 3 + j] = Ln::constant(V[i]) * CV[j] + Ln::constant(V[3 + i]) * CV[3 + j] +
                            Ln::constant(V[6 + i]) * CV[6 + j];
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j)
            v_R[i * 3 + j] = two * (CV[i * 3] * it.cov_world[j] + CV[i * 3 + 1] * it.cov_world[3 + j] +
                                    CV[i * 3 + 2] * it.cov_world[6 + j]) +
                             v_pc[i] * mean[j];
    for (int i = 0; i < 3; ++i) v_t[i] = v_pc[i];
    for (int j = 0; j < 3; ++j)
        v_mean[j] = Ln::constant(V[j]) * v_pc[0] + Ln::constant(V[3 + j]) * v_pc[1] + Ln::constant(V[6 + j]) * v_pc[2];

    // cov_world = M M^T, M = Rq diag(s): v_M = 2 vW M.
    Real v_s[3] = {zero, zero, zero}, g[9];
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) {
            const Real vM = vW[i * 3] * it.Rq[j] * it.s[j] + vW[i * 3 + 1] * it.Rq[3 + j] * it.s[j] +
                            vW[i * 3 + 2] * it.Rq[6 + j] * it.s[j];
            const Real gij = two * vM;
            g[i * 3 + j] = gij * it.s[j];  // d loss / d Rq
            v_s[j] = v_s[j] + gij * it.Rq[i * 3 + j];
        }
    for (int j = 0; j < 3; ++j) v_log_scale[j] = v_s[j] * it.s[j];

    // Rq from the unit quaternion, then back through the normalisation.
    const Real w = it.qn[0], x = it.qn[1], y = it.qn[2], qz = it.qn[3];
    Real v_qn[4];
    v_qn[0] = two * (qz * (g[3] - g[1]) + y * (g[2] - g[6]) + x * (g[7] - g[5]));
    v_qn[1] = two * (y * (g[1] + g[3]) + qz * (g[2] + g[6]) + w * (g[7] - g[5]) - two * x * (g[4] + g[8]));
    v_qn[2] = two * (x * (g[1] + g[3]) + w * (g[2] - g[6]) + qz * (g[5] + g[7]) - two * y * (g[0] + g[8]));
    v_qn[3] = two * (w * (g[3] - g[1]) + x * (g[2] + g[6]) + y * (g[5] + g[7]) - two * qz * (g[0] + g[4]));
    const Real d = it.qn[0] * v_qn[0] + it.qn[1] * v_qn[1] + it.qn[2] * v_qn[2] + it.qn[3] * v_qn[3];
    for (int i = 0; i < 4; ++i) v_quat[i] = (v_qn[i] - it.qn[i] * d) * it.q_inv_norm;
}

AVATAR_HD void project_gaussian_bwd(const float* mean, const float* quat, const float* log_scale,
                                    float opacity_logit, const Camera& cam, const float* v_mean2d,
                                    const float* v_conic, float v_depth, float v_opacity, float* v_mean,
                                    float* v_quat, float* v_log_scale, float* v_opacity_logit, float* v_R,
                                    float* v_t, float* v_K) {
    project_lanes_bwd<float>(mean, quat, log_scale, opacity_logit, cam, v_mean2d, v_conic, v_depth, v_opacity, v_mean,
                             v_quat, v_log_scale, v_opacity_logit, v_R, v_t, v_K);
}

}  // namespace avatar
