// CPU loop over field_mlp.h: sixteen points per vector (every weight a broadcast, every activation one vector of
// sixteen points), one at a time for the tail.
#include "cpu_ops.h"
#include "field_mlp.h"
#include "simd.h"

#pragma GCC diagnostic ignored "-Wignored-attributes"

namespace avatar {

// Sixteen points a vector whichever implementation simd.h picked (AVX-512 registers, or AVX2 / SSE pairs through
// the compiler's vector extensions: the same loop, not a scalar one, on CPUs without AVX-512).
template <>
struct MlpLanes<simd::vfloat> {
    static AVATAR_SIMD_INLINE simd::vfloat splat(float x) { return simd::splat(x); }
    static AVATAR_SIMD_INLINE simd::vfloat fma(simd::vfloat a, simd::vfloat b, simd::vfloat c) {
#if defined(AVATAR_SIMD_AVX512)
        return _mm512_fmadd_ps(a, b, c);
#else
        return a * b + c;
#endif
    }
    static AVATAR_SIMD_INLINE simd::vfloat relu(simd::vfloat x) { return simd::vmax(x, simd::splat(0.f)); }
    static AVATAR_SIMD_INLINE simd::vfloat sigmoid(simd::vfloat x) {
        return simd::reciprocal(simd::splat(1.f) + simd::fast_exp(simd::splat(0.f) - x));
    }
    static AVATAR_SIMD_INLINE simd::vfloat softplus(simd::vfloat x) {
        const simd::vfloat negative_abs = simd::vmin(x, simd::splat(0.f) - x);
        return simd::vmax(x, simd::splat(0.f)) + simd::fast_log(simd::splat(1.f) + simd::fast_exp(negative_abs));
    }
};

namespace cpu {

namespace {

inline float at(const FieldInputs& f, int64_t i, int k) { return f.data[i * f.point_stride + k * f.feature_stride]; }

}  // namespace

void field_mlp_forward(int64_t n, const FieldInputs& features, const FieldMlpParams& p, float* density, float* colour,
                       int nthreads) {
    constexpr int64_t kChunk = 1024;  // points per task: sixteen tasks in a render's call of 2^14 points
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1)
    for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
        const int64_t i1 = i0 + kChunk < n ? i0 + kChunk : n;
        int64_t i = i0;
        for (; i + simd::kLanes <= i1; i += simd::kLanes) {
            simd::vfloat x[kFieldMaxInputs], d, c[3];
            if (features.point_stride == 1) {
                for (int k = 0; k < p.inputs; ++k) x[k] = simd::load(features.data + k * features.feature_stride + i);
            } else {
                alignas(64) float lanes[simd::kLanes];
                for (int k = 0; k < p.inputs; ++k) {
                    for (int l = 0; l < simd::kLanes; ++l) lanes[l] = at(features, i + l, k);
                    x[k] = simd::load(lanes);
                }
            }
            field_mlp_point(p, x, &d, c);
            simd::store(density + i, d);
            if (!p.density_only) {
                alignas(64) float lanes[3][simd::kLanes];
                for (int ch = 0; ch < 3; ++ch) simd::store(lanes[ch], c[ch]);
                for (int l = 0; l < simd::kLanes; ++l)
                    for (int ch = 0; ch < 3; ++ch) colour[3 * (i + l) + ch] = lanes[ch][l];
            }
        }
        for (; i < i1; ++i) {
            float x[kFieldMaxInputs], c[3];
            for (int k = 0; k < p.inputs; ++k) x[k] = at(features, i, k);
            field_mlp_point(p, x, density + i, c);
            if (!p.density_only)
                for (int ch = 0; ch < 3; ++ch) colour[3 * i + ch] = c[ch];
        }
    }
}

}  // namespace cpu
}  // namespace avatar
