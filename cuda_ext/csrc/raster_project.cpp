// CPU loops over project.h: sixteen Gaussians per iteration with AVX-512, one otherwise.
#include <string.h>

#include <vector>

#include "raster_cpu.h"
#include "simd.h"

// Templates instantiated on __m512 make GCC note that the type's alignment attribute is not part
// of the template argument; nothing here depends on it.
#pragma GCC diagnostic ignored "-Wignored-attributes"

namespace avatar {

#if defined(AVATAR_SIMD_AVX512)
template <>
struct ProjLanes<simd::vfloat> {
    typedef __mmask16 Mask;
    static simd::vfloat constant(float x) { return _mm512_set1_ps(x); }
    static simd::vfloat sqrt(simd::vfloat x) { return _mm512_sqrt_ps(x); }
    static simd::vfloat exp(simd::vfloat x) { return simd::fast_exp(x); }
    static simd::vfloat log(simd::vfloat x) { return simd::fast_log(x); }
    static simd::vfloat ceil(simd::vfloat x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC); }
    static simd::vfloat min(simd::vfloat a, simd::vfloat b) { return _mm512_min_ps(a, b); }
    static simd::vfloat max(simd::vfloat a, simd::vfloat b) { return _mm512_max_ps(a, b); }
    static Mask lt(simd::vfloat a, simd::vfloat b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
    static Mask gt(simd::vfloat a, simd::vfloat b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
    static Mask both(Mask a, Mask b) { return (Mask)(a & b); }
    static Mask either(Mask a, Mask b) { return (Mask)(a | b); }
    static simd::vfloat select(Mask m, simd::vfloat a, simd::vfloat b) { return _mm512_mask_blend_ps(m, b, a); }
};
#endif

namespace cpu {

void project_forward(int64_t n, const float* means, const float* quats, const float* log_scales,
                     const float* opacity_logits, const Camera& cam, float* means2d, float* conics,
                     float* depths, float* opacities, int32_t* radii, int nthreads) {
    using namespace simd;
    // Blocks of sixteen Gaussians through the vector instantiation of project_lanes; the ragged
    // end (or every Gaussian, without AVX-512) through the scalar one.
#if defined(AVATAR_SIMD_AVX512)
    const int64_t n_blocks = n / kLanes;
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 64)
    for (int64_t blk = 0; blk < n_blocks; ++blk) {
        const int64_t i0 = blk * kLanes;
        vfloat m[3], q[4], ls[3];
        for (int k = 0; k < 3; ++k) {
            const __m512i at3 = _mm512_add_epi32(_mm512_mullo_epi32(lane, _mm512_set1_epi32(3)), _mm512_set1_epi32(k));
            m[k] = _mm512_i32gather_ps(at3, means + 3 * i0, 4);
            ls[k] = _mm512_i32gather_ps(at3, log_scales + 3 * i0, 4);
        }
        for (int k = 0; k < 4; ++k)
            q[k] = _mm512_i32gather_ps(_mm512_add_epi32(_mm512_slli_epi32(lane, 2), _mm512_set1_epi32(k)),
                                       quats + 4 * i0, 4);
        const Projected<vfloat> p = project_lanes<vfloat>(m, q, ls, load(opacity_logits + i0), cam);
        alignas(64) float out[9][kLanes];
        store(out[0], p.mean2d[0]);
        store(out[1], p.mean2d[1]);
        for (int k = 0; k < 3; ++k) store(out[2 + k], p.conic[k]);
        store(out[5], p.radius[0]);
        store(out[6], p.radius[1]);
        store(depths + i0, p.depth);
        store(opacities + i0, p.opacity);
        for (int l = 0; l < kLanes; ++l) {
            const int64_t i = i0 + l;
            means2d[2 * i] = out[0][l];
            means2d[2 * i + 1] = out[1][l];
            for (int k = 0; k < 3; ++k) conics[3 * i + k] = out[2 + k][l];
            radii[2 * i] = (int32_t)out[5][l];
            radii[2 * i + 1] = (int32_t)out[6][l];
        }
    }
    const int64_t scalar_from = n_blocks * kLanes;
#else
    const int64_t scalar_from = 0;
#endif
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 256) if (n - scalar_from > 4096)
    for (int64_t i = scalar_from; i < n; ++i) {
        project_gaussian_fwd(means + 3 * i, quats + 4 * i, log_scales + 3 * i, opacity_logits[i], cam,
                             means2d + 2 * i, conics + 3 * i, depths + i, opacities + i, radii + 2 * i);
    }
}

void project_backward(int64_t n, const float* means, const float* quats, const float* log_scales,
                      const float* opacity_logits, const Camera& cam, const int32_t* radii,
                      const float* v_means2d, const float* v_conics, const float* v_depths,
                      const float* v_opacities, float* v_means, float* v_quats, float* v_log_scales,
                      float* v_opacity_logits, float* v_viewmat, float* v_K, int nthreads) {
    // The view-matrix gradient is a sum over all Gaussians. Summing fixed blocks in a fixed order
    // keeps it identical from run to run whatever the thread count.
    constexpr int64_t kBlock = 2048;
    const int64_t n_blocks = (n + kBlock - 1) / kBlock;
    std::vector<double> partial((size_t)n_blocks * 16, 0.0);
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1)
    for (int64_t blk = 0; blk < n_blocks; ++blk) {
        double* acc = partial.data() + blk * 16;
        const int64_t end = (blk + 1) * kBlock < n ? (blk + 1) * kBlock : n;
        int64_t i = blk * kBlock;
#if defined(AVATAR_SIMD_AVX512)
        // Sixteen Gaussians at a time through the vector instantiation of project_lanes_bwd.
        using namespace simd;
        const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        auto strided = [&](const float* base, int stride, int k) {
            return _mm512_i32gather_ps(_mm512_add_epi32(_mm512_mullo_epi32(lane, _mm512_set1_epi32(stride)),
                                                        _mm512_set1_epi32(k)),
                                       base, 4);
        };
        vfloat share[16];
        for (int k = 0; k < 16; ++k) share[k] = splat(0.f);
        for (; i + kLanes <= end; i += kLanes) {
            vfloat m[3], q[4], ls[3], vm2[2], vcon[3];
            for (int k = 0; k < 3; ++k) {
                m[k] = strided(means + 3 * i, 3, k);
                ls[k] = strided(log_scales + 3 * i, 3, k);
                vcon[k] = strided(v_conics + 3 * i, 3, k);
            }
            for (int k = 0; k < 4; ++k) q[k] = strided(quats + 4 * i, 4, k);
            for (int k = 0; k < 2; ++k) vm2[k] = strided(v_means2d + 2 * i, 2, k);
            const __m512i rx = _mm512_i32gather_epi32(_mm512_slli_epi32(lane, 1), radii + 2 * i, 4);
            const __m512i ry = _mm512_i32gather_epi32(_mm512_add_epi32(_mm512_slli_epi32(lane, 1), _mm512_set1_epi32(1)),
                                                      radii + 2 * i, 4);
            const __mmask16 visible = _mm512_cmpgt_epi32_mask(_mm512_or_si512(rx, ry), _mm512_setzero_si512());
            vfloat vmean[3], vquat[4], vls[3], vlogit, vR[9], vt[3], vK[4];
            project_lanes_bwd<vfloat>(m, q, ls, load(opacity_logits + i), cam, vm2, vcon, load(v_depths + i),
                                      load(v_opacities + i), vmean, vquat, vls, &vlogit, vR, vt, vK);
            // Culled lanes hold garbage (possibly NaN from z <= 0): select, never multiply, them away.
            alignas(64) float out[11][kLanes];
            for (int k = 0; k < 3; ++k) store(out[k], select(visible, vmean[k], splat(0.f)));
            for (int k = 0; k < 4; ++k) store(out[3 + k], select(visible, vquat[k], splat(0.f)));
            for (int k = 0; k < 3; ++k) store(out[7 + k], select(visible, vls[k], splat(0.f)));
            store(v_opacity_logits + i, select(visible, vlogit, splat(0.f)));
            for (int l = 0; l < kLanes; ++l) {
                const int64_t g = i + l;
                for (int k = 0; k < 3; ++k) v_means[3 * g + k] = out[k][l];
                for (int k = 0; k < 4; ++k) v_quats[4 * g + k] = out[3 + k][l];
                for (int k = 0; k < 3; ++k) v_log_scales[3 * g + k] = out[7 + k][l];
            }
            for (int k = 0; k < 9; ++k) share[k] = add_where(share[k], visible, vR[k]);
            for (int k = 0; k < 3; ++k) share[9 + k] = add_where(share[9 + k], visible, vt[k]);
            for (int k = 0; k < 4; ++k) share[12 + k] = add_where(share[12 + k], visible, vK[k]);
        }
        for (int k = 0; k < 16; ++k) acc[k] += hsum(share[k]);
#endif
        for (; i < end; ++i) {
            float* vm = v_means + 3 * i;
            float* vq = v_quats + 4 * i;
            float* vs = v_log_scales + 3 * i;
            if (radii[2 * i] <= 0 && radii[2 * i + 1] <= 0) {
                memset(vm, 0, 3 * sizeof(float));
                memset(vq, 0, 4 * sizeof(float));
                memset(vs, 0, 3 * sizeof(float));
                v_opacity_logits[i] = 0.f;
                continue;
            }
            float vR[9], vt[3], vK[4];
            project_gaussian_bwd(means + 3 * i, quats + 4 * i, log_scales + 3 * i, opacity_logits[i], cam,
                                 v_means2d + 2 * i, v_conics + 3 * i, v_depths[i], v_opacities[i], vm, vq, vs,
                                 v_opacity_logits + i, vR, vt, vK);
            for (int k = 0; k < 9; ++k) acc[k] += vR[k];
            for (int k = 0; k < 3; ++k) acc[9 + k] += vt[k];
            for (int k = 0; k < 4; ++k) acc[12 + k] += vK[k];
        }
    }
    double total[16] = {0};
    for (int64_t blk = 0; blk < n_blocks; ++blk)
        for (int k = 0; k < 16; ++k) total[k] += partial[blk * 16 + k];
    memset(v_viewmat, 0, 16 * sizeof(float));
    for (int r = 0; r < 3; ++r) {
        for (int c = 0; c < 3; ++c) v_viewmat[r * 4 + c] = (float)total[r * 3 + c];
        v_viewmat[r * 4 + 3] = (float)total[9 + r];
    }
    memset(v_K, 0, 9 * sizeof(float));
    v_K[0] = (float)total[12];
    v_K[4] = (float)total[13];
    v_K[2] = (float)total[14];
    v_K[5] = (float)total[15];
}

}  // namespace cpu
}  // namespace avatar
