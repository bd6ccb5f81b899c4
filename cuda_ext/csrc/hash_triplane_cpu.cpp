// CPU loops over hash_triplane.h.
//
// Loops run (plane, level)-major: one table (a few hundred KB) stays in cache while every point
// reads it, where a point-major order would sweep all tables (tens of MB) for each point. For
// the same reason features are stored feature-major ([3 L F, N]): each table's loop then writes
// (and the backward pass reads) one contiguous run instead of F floats in every point's row.
// With AVX-512 the forward lookups go sixteen points at a time, through the same templated code
// the scalar loops and the CUDA kernels use, with gathers for the table reads.
#include <string.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "cpu_ops.h"
#include "simd.h"

// Templates instantiated on __m512 make GCC note that the type's alignment attribute is not part
// of the template argument; nothing here depends on it.
#pragma GCC diagnostic ignored "-Wignored-attributes"

namespace avatar {

#if defined(AVATAR_SIMD_AVX512)
template <>
struct HashLanes<simd::vfloat> {
    typedef __m512i Index;
    static simd::vfloat constant(float x) { return _mm512_set1_ps(x); }
    static Index index_constant(uint32_t x) { return _mm512_set1_epi32((int)x); }
    static simd::vfloat floor(simd::vfloat x) {
        return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    }
    static simd::vfloat min(simd::vfloat a, simd::vfloat b) { return _mm512_min_ps(a, b); }
    static Index to_index(simd::vfloat x) { return _mm512_cvttps_epu32(x); }
    static Index add(Index a, Index b) { return _mm512_add_epi32(a, b); }
    static Index mul(Index a, Index b) { return _mm512_mullo_epi32(a, b); }
    static Index hash(Index iu, Index iv, uint32_t mask) {
        const Index mixed = _mm512_xor_si512(iu, _mm512_mullo_epi32(iv, index_constant(HashLanes<float>::kHashPrime)));
        return _mm512_and_si512(mixed, index_constant(mask));
    }
    // Indices are signed 32-bit lane offsets: the caller keeps table_size * features below 2^31.
    static simd::vfloat gather(const float* table, Index row, int features, int f) {
        const Index at = _mm512_add_epi32(_mm512_mullo_epi32(row, index_constant((uint32_t)features)),
                                          index_constant((uint32_t)f));
        return _mm512_i32gather_ps(at, table, 4);
    }
};
#endif

namespace cpu {

namespace {

inline void add_to(float* dst, float v) { *dst += v; }

// Normalised coordinates in structure-of-arrays form, unit[a * n + i], so that sixteen points'
// coordinate on one axis are one vector load; inside (optional) as normalise_point gives it.
void normalise_points(int64_t n, const float* points, const HashTriplaneParams& p, float* unit, bool* inside,
                      int nthreads) {
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 2048)
    for (int64_t i = 0; i < n; ++i) {
        float u[3];
        bool in[3];
        normalise_point(points + 3 * i, p, u, in);
        for (int a = 0; a < 3; ++a) unit[a * n + i] = u[a];
        if (inside)
            for (int a = 0; a < 3; ++a) inside[3 * i + a] = in[a];
    }
}

// Fills scratch[(task * F + f) * n + i] for every point i of one (plane, level).
template <int F>
void lookup_level(int64_t n, const float* unit, const HashLevel& L, const float* tables, float* scratch) {
    const float* ua = unit + L.a0 * n;
    const float* ub = unit + L.a1 * n;
    int64_t i = 0;
#if defined(AVATAR_SIMD_AVX512)
    for (; i + simd::kLanes <= n; i += simd::kLanes) {
        simd::vfloat out[F];
        hash_level_fwd<F>(simd::load(ua + i), simd::load(ub + i), L, tables, out);
        for (int f = 0; f < F; ++f) simd::store(scratch + f * n + i, out[f]);
    }
#endif
    for (; i < n; ++i) {
        float out[F];
        hash_level_fwd<F>(ua[i], ub[i], L, tables, out);
        for (int f = 0; f < F; ++f) scratch[f * n + i] = out[f];
    }
}

}  // namespace

void hash_triplane_forward(int64_t n, const float* points, const float* tables, const HashTriplaneParams& p,
                           float* out, int nthreads) {
    const int tasks = 3 * p.levels;
    // Reused between calls. Named through a reference: inside the parallel region the
    // thread_local name would mean each worker's own (empty) copy.
    static thread_local std::vector<float> cached;
    std::vector<float>& unit = cached;
    unit.resize((size_t)n * 3);
    normalise_points(n, points, p, unit.data(), nullptr, nthreads);
    dispatch_features(p.features, [&]<int F>() {
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1)
        for (int task = 0; task < tasks; ++task)
            lookup_level<F>(n, unit.data(), hash_level(p, task / p.levels, task % p.levels), tables,
                            out + (size_t)task * F * n);
    });
}

void hash_triplane_backward(int64_t n, const float* points, const float* tables, const HashTriplaneParams& p,
                            const float* v_out, float* v_tables, float* v_points, int nthreads) {
    const int tasks = 3 * p.levels;
    static thread_local std::vector<float> cached_unit;
    static thread_local std::vector<float> cached_slope;
    std::vector<float>& unit = cached_unit;
    unit.resize((size_t)n * 3);
    // slope[a * n + i]: d(unit coordinate)/d(point coordinate) along axis a, 0 where clamped.
    std::vector<float>& slope = cached_slope;
    slope.resize((size_t)n * 3);
    {
        std::unique_ptr<bool[]> inside(new bool[(size_t)n * 3 + 1]);
        normalise_points(n, points, p, unit.data(), inside.get(), nthreads);
        for (int64_t i = 0; i < n; ++i)
            for (int a = 0; a < 3; ++a) slope[a * n + i] = inside[3 * i + a] ? p.inv_extent[a] : 0.f;
    }
    dispatch_features(p.features, [&]<int F>() {
        if (v_tables) {
            // One thread owns each table: no atomics, and the adds always run in point order
            // (corner, then feature, within a point), so the gradient is the same on every run and
            // for every thread count. Cells are located sixteen points at a time; the adds stay
            // scalar because lanes may hit the same row.
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1)
            for (int task = 0; task < tasks; ++task) {
                const HashLevel L = hash_level(p, task / p.levels, task % p.levels);
                const float* v = v_out + (size_t)task * F * n;
                int64_t i = 0;
#if defined(AVATAR_SIMD_AVX512)
                const float* ua = unit.data() + L.a0 * n;
                const float* ub = unit.data() + L.a1 * n;
                float* t = v_tables + L.offset;
                for (; i + simd::kLanes <= n; i += simd::kLanes) {
                    const PlaneCell<simd::vfloat> c = locate_cell(simd::load(ua + i), simd::load(ub + i), L);
                    simd::vfloat w[4];
                    corner_weights(c, w);
                    alignas(64) int32_t rows[4][simd::kLanes];
                    alignas(64) float weights[4][simd::kLanes];
                    for (int k = 0; k < 4; ++k) {
                        _mm512_store_si512(rows[k], c.index[k]);
                        simd::store(weights[k], w[k]);
                    }
                    for (int l = 0; l < simd::kLanes; ++l)
                        for (int k = 0; k < 4; ++k) {
                            float* row = t + (int64_t)(uint32_t)rows[k][l] * F;
                            for (int f = 0; f < F; ++f) row[f] += weights[k][l] * v[f * n + i + l];
                        }
                }
#endif
                for (; i < n; ++i) {
                    const float u[3] = {unit[i], unit[n + i], unit[2 * n + i]};
                    float g[F];
                    for (int f = 0; f < F; ++f) g[f] = v[f * n + i];
                    hash_level_bwd_table<F>(u, L, g, v_tables, add_to);
                }
            }
        }
        if (v_points) {
            // Point chunks in parallel, every table per chunk (a point's gradient sums over all of
            // them), sixteen points per vector.
            constexpr int64_t kChunk = 2048;
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1)
            for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
                const int64_t i1 = std::min(i0 + kChunk, n);
                float acc[3][kChunk];
                for (int a = 0; a < 3; ++a)
                    for (int64_t i = 0; i < i1 - i0; ++i) acc[a][i] = 0.f;
                for (int task = 0; task < tasks; ++task) {
                    const HashLevel L = hash_level(p, task / p.levels, task % p.levels);
                    const float* ua = unit.data() + L.a0 * n;
                    const float* ub = unit.data() + L.a1 * n;
                    const float* v = v_out + (size_t)task * F * n;
                    int64_t i = i0;
#if defined(AVATAR_SIMD_AVX512)
                    for (; i + simd::kLanes <= i1; i += simd::kLanes) {
                        simd::vfloat g[F], gu, gv;
                        for (int f = 0; f < F; ++f) g[f] = simd::load(v + f * n + i);
                        hash_level_grad_uv<F>(simd::load(ua + i), simd::load(ub + i), L, tables, g, &gu, &gv);
                        float* pa = acc[L.a0] + (i - i0);
                        float* pb = acc[L.a1] + (i - i0);
                        simd::store(pa, simd::load(pa) + gu * simd::splat(L.res) * simd::load(slope.data() + L.a0 * n + i));
                        simd::store(pb, simd::load(pb) + gv * simd::splat(L.res) * simd::load(slope.data() + L.a1 * n + i));
                    }
#endif
                    for (; i < i1; ++i) {
                        float g[F], gu, gv;
                        for (int f = 0; f < F; ++f) g[f] = v[f * n + i];
                        hash_level_grad_uv<F>(ua[i], ub[i], L, tables, g, &gu, &gv);
                        acc[L.a0][i - i0] += gu * L.res * slope[L.a0 * n + i];
                        acc[L.a1][i - i0] += gv * L.res * slope[L.a1 * n + i];
                    }
                }
                for (int64_t i = i0; i < i1; ++i)
                    for (int a = 0; a < 3; ++a) v_points[3 * i + a] = acc[a][i - i0];
            }
        }
    });
}

}  // namespace cpu
}  // namespace avatar
