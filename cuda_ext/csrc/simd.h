// Sixteen-lane float vectors for the CPU blend loops: one lane per pixel of a 16-pixel tile row.
//
// Three implementations of one small interface, picked at compile time (the build targets the
// machine it runs on):
// - AVX-512: native registers, and compares yield __mmask16 so masks stay in mask registers;
// - GCC/Clang vector extensions: lowered to AVX2/SSE pairs, masks are 0 / -1 integer lanes;
// - plain arrays with loops, for any other compiler.
// Comparisons are functions (lt, le, gt, ge) returning a vmask; masks combine with &, |, and
// mask_andnot; bits() turns one into a 16-bit integer.
#pragma once

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

// Small vector helpers must inline: out of line, a 16-lane value is passed through memory (and
// GCC's heuristics do decline the bigger ones, such as fast_exp, on AVX2 and SSE builds).
#if defined(__GNUC__) || defined(__clang__)
#define AVATAR_SIMD_INLINE inline __attribute__((always_inline))
#else
#define AVATAR_SIMD_INLINE inline
#endif

namespace avatar {
namespace simd {

constexpr int kLanes = 16;

// AVATAR_SIMD_PORTABLE forces the plain-array version (to test it with GCC).
#if defined(__AVX512F__) && (defined(__GNUC__) || defined(__clang__)) && !defined(AVATAR_SIMD_PORTABLE)
#define AVATAR_SIMD_AVX512 1
typedef __m512 vfloat;  // GCC and Clang define + - * / on it
typedef __m512i vint;
typedef __mmask16 vmask;

AVATAR_SIMD_INLINE vfloat splat(float x) { return _mm512_set1_ps(x); }
AVATAR_SIMD_INLINE vint splati(int32_t x) { return _mm512_set1_epi32(x); }
AVATAR_SIMD_INLINE vmask lt(vfloat a, vfloat b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
AVATAR_SIMD_INLINE vmask le(vfloat a, vfloat b) { return _mm512_cmp_ps_mask(a, b, _CMP_LE_OQ); }
AVATAR_SIMD_INLINE vmask gt(vfloat a, vfloat b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
AVATAR_SIMD_INLINE vmask ge(vfloat a, vfloat b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
AVATAR_SIMD_INLINE vmask le_i(vint a, vint b) { return _mm512_cmple_epi32_mask(a, b); }
AVATAR_SIMD_INLINE vmask mask_andnot(vmask a, vmask b) { return (vmask)(a & (vmask)~b); }  // a and not b
AVATAR_SIMD_INLINE vmask mask_of(bool b) { return b ? (vmask)0xffff : (vmask)0; }
AVATAR_SIMD_INLINE uint32_t bits(vmask m) { return (uint32_t)m; }
AVATAR_SIMD_INLINE vfloat select(vmask m, vfloat a, vfloat b) { return _mm512_mask_blend_ps(m, b, a); }
AVATAR_SIMD_INLINE vint select_i(vmask m, vint a, vint b) { return _mm512_mask_blend_epi32(m, b, a); }
AVATAR_SIMD_INLINE vfloat vmin(vfloat a, vfloat b) { return _mm512_min_ps(a, b); }
AVATAR_SIMD_INLINE vfloat vmax(vfloat a, vfloat b) { return _mm512_max_ps(a, b); }
AVATAR_SIMD_INLINE vfloat load(const float* p) { return _mm512_loadu_ps(p); }
AVATAR_SIMD_INLINE vint load_i(const int32_t* p) { return _mm512_loadu_si512(p); }
AVATAR_SIMD_INLINE void store(float* p, vfloat v) { _mm512_storeu_ps(p, v); }
AVATAR_SIMD_INLINE void store_i(int32_t* p, vint v) { _mm512_storeu_si512(p, v); }
AVATAR_SIMD_INLINE vfloat lane_index() { return _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }
AVATAR_SIMD_INLINE float hsum(vfloat v) {
    const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(v),
                                    _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    s4 = _mm_add_ss(s4, _mm_movehdup_ps(s4));
    return _mm_cvtss_f32(s4);
}

#elif (defined(__GNUC__) || defined(__clang__)) && !defined(AVATAR_SIMD_PORTABLE)
#define AVATAR_SIMD_VECTOR_EXTENSIONS 1
// Sixteen lanes as two (AVX2) or four (SSE, NEON) vectors of the machine's own width. GCC's
// generic vectors wider than the hardware are lowered lane by lane, with branches, for
// compares and blends, which made the blend loops fifteen times slower on AVX2.
#if defined(__AVX__)
constexpr int kPartBytes = 32;
#else
constexpr int kPartBytes = 16;
#endif
constexpr int kParts = 64 / kPartBytes;
constexpr int kPartLanes = kLanes / kParts;
typedef float pfloat __attribute__((vector_size(kPartBytes)));
typedef int32_t pint __attribute__((vector_size(kPartBytes)));

struct vfloat {
    pfloat p[kParts];
    float operator[](int i) const { return p[i / kPartLanes][i % kPartLanes]; }
    float& operator[](int i) { return reinterpret_cast<float*>(p)[i]; }
};
struct vint {
    pint p[kParts];
};
typedef vint vmask;

#define AVATAR_PARTWISE(T, R, op)                                            \
    AVATAR_SIMD_INLINE R operator op(T a, T b) {                                         \
        R r;                                                                 \
        for (int k = 0; k < kParts; ++k) r.p[k] = a.p[k] op b.p[k];          \
        return r;                                                            \
    }
AVATAR_PARTWISE(vfloat, vfloat, +)
AVATAR_PARTWISE(vfloat, vfloat, -)
AVATAR_PARTWISE(vfloat, vfloat, *)
AVATAR_PARTWISE(vfloat, vfloat, /)
AVATAR_PARTWISE(vint, vint, +)
AVATAR_PARTWISE(vint, vint, -)
AVATAR_PARTWISE(vint, vint, &)
AVATAR_PARTWISE(vint, vint, |)
#undef AVATAR_PARTWISE
AVATAR_SIMD_INLINE vfloat& operator+=(vfloat& a, vfloat b) { return a = a + b; }
AVATAR_SIMD_INLINE vint operator~(vint a) {
    for (int k = 0; k < kParts; ++k) a.p[k] = ~a.p[k];
    return a;
}
AVATAR_SIMD_INLINE vint operator<<(vint a, int s) {
    for (int k = 0; k < kParts; ++k) a.p[k] = a.p[k] << s;
    return a;
}
#define AVATAR_COMPARE(name, T, op)                                          \
    AVATAR_SIMD_INLINE vmask name(T a, T b) {                                            \
        vmask r;                                                             \
        for (int k = 0; k < kParts; ++k) r.p[k] = a.p[k] op b.p[k];          \
        return r;                                                            \
    }
AVATAR_COMPARE(lt, vfloat, <)
AVATAR_COMPARE(le, vfloat, <=)
AVATAR_COMPARE(gt, vfloat, >)
AVATAR_COMPARE(ge, vfloat, >=)
AVATAR_COMPARE(le_i, vint, <=)
#undef AVATAR_COMPARE

AVATAR_SIMD_INLINE vfloat splat(float x) {
    vfloat r;
    for (int k = 0; k < kParts; ++k) r.p[k] = x - pfloat{};  // x - 0 is exactly x, even for -0
    return r;
}
AVATAR_SIMD_INLINE vint splati(int32_t x) {
    vint r;
    for (int k = 0; k < kParts; ++k) r.p[k] = x + pint{};
    return r;
}
AVATAR_SIMD_INLINE vint as_int(vfloat v) {
    vint r;
    for (int k = 0; k < kParts; ++k) r.p[k] = (pint)v.p[k];
    return r;
}
AVATAR_SIMD_INLINE vfloat as_float(vint v) {
    vfloat r;
    for (int k = 0; k < kParts; ++k) r.p[k] = (pfloat)v.p[k];
    return r;
}
AVATAR_SIMD_INLINE vmask mask_andnot(vmask a, vmask b) { return a & ~b; }
AVATAR_SIMD_INLINE vmask mask_of(bool b) { return splati(b ? -1 : 0); }
AVATAR_SIMD_INLINE uint32_t bits(vmask m) {
#if defined(__AVX__)
    uint32_t b = 0;
    for (int k = 0; k < kParts; ++k) {
        __m256 part;
        memcpy(&part, &m.p[k], sizeof part);
        b |= (uint32_t)_mm256_movemask_ps(part) << (8 * k);
    }
    return b;
#else
    uint32_t b = 0;
    for (int i = 0; i < kLanes; ++i) b |= (m.p[i / kPartLanes][i % kPartLanes] != 0 ? 1u : 0u) << i;
    return b;
#endif
}
// Blends as bitwise operations (each part a native and/andnot/or).
AVATAR_SIMD_INLINE vint select_i(vmask m, vint a, vint b) { return (a & m) | (b & ~m); }
AVATAR_SIMD_INLINE vfloat select(vmask m, vfloat a, vfloat b) { return as_float(select_i(m, as_int(a), as_int(b))); }
AVATAR_SIMD_INLINE vfloat vmin(vfloat a, vfloat b) { return select(lt(a, b), a, b); }
AVATAR_SIMD_INLINE vfloat vmax(vfloat a, vfloat b) { return select(gt(a, b), a, b); }
// Part by part, so each is one native load or store (a single 64-byte memcpy is split into
// 16-byte moves that then stall the wider reads through store forwarding).
AVATAR_SIMD_INLINE vfloat load(const float* p) {
    vfloat v;
    for (int k = 0; k < kParts; ++k) memcpy(&v.p[k], p + k * kPartLanes, kPartBytes);
    return v;
}
AVATAR_SIMD_INLINE vint load_i(const int32_t* p) {
    vint v;
    for (int k = 0; k < kParts; ++k) memcpy(&v.p[k], p + k * kPartLanes, kPartBytes);
    return v;
}
AVATAR_SIMD_INLINE void store(float* p, vfloat v) {
    for (int k = 0; k < kParts; ++k) memcpy(p + k * kPartLanes, &v.p[k], kPartBytes);
}
AVATAR_SIMD_INLINE void store_i(int32_t* p, vint v) {
    for (int k = 0; k < kParts; ++k) memcpy(p + k * kPartLanes, &v.p[k], kPartBytes);
}
AVATAR_SIMD_INLINE vfloat lane_index() {
    alignas(64) static const float idx[kLanes] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    return load(idx);
}
AVATAR_SIMD_INLINE float hsum(vfloat v) {
    pfloat s = v.p[0];
    for (int k = 1; k < kParts; ++k) s += v.p[k];
    float r = 0.f;
    for (int i = 0; i < kPartLanes; ++i) r += s[i];
    return r;
}

#else
struct vfloat {
    float v[kLanes];
    float operator[](int i) const { return v[i]; }
    float& operator[](int i) { return v[i]; }
};
struct vint {
    int32_t v[kLanes];
};
typedef uint32_t vmask;
#define AVATAR_LANEWISE(op)                                                 \
    AVATAR_SIMD_INLINE vfloat operator op(vfloat a, vfloat b) {                         \
        vfloat r;                                                           \
        for (int i = 0; i < kLanes; ++i) r.v[i] = a.v[i] op b.v[i];         \
        return r;                                                           \
    }
AVATAR_LANEWISE(+)
AVATAR_LANEWISE(-)
AVATAR_LANEWISE(*)
AVATAR_LANEWISE(/)
#undef AVATAR_LANEWISE
AVATAR_SIMD_INLINE vfloat& operator+=(vfloat& a, vfloat b) { return a = a + b; }
#define AVATAR_COMPARE(name, op)                                            \
    AVATAR_SIMD_INLINE vmask name(vfloat a, vfloat b) {                                 \
        vmask m = 0;                                                        \
        for (int i = 0; i < kLanes; ++i) m |= (a.v[i] op b.v[i] ? 1u : 0u) << i; \
        return m;                                                           \
    }
AVATAR_COMPARE(lt, <)
AVATAR_COMPARE(le, <=)
AVATAR_COMPARE(gt, >)
AVATAR_COMPARE(ge, >=)
#undef AVATAR_COMPARE
AVATAR_SIMD_INLINE vfloat splat(float x) { vfloat r; for (int i = 0; i < kLanes; ++i) r.v[i] = x; return r; }
AVATAR_SIMD_INLINE vint splati(int32_t x) { vint r; for (int i = 0; i < kLanes; ++i) r.v[i] = x; return r; }
AVATAR_SIMD_INLINE vmask le_i(vint a, vint b) {
    vmask m = 0;
    for (int i = 0; i < kLanes; ++i) m |= (a.v[i] <= b.v[i] ? 1u : 0u) << i;
    return m;
}
AVATAR_SIMD_INLINE vmask mask_andnot(vmask a, vmask b) { return a & ~b & 0xffffu; }
AVATAR_SIMD_INLINE vmask mask_of(bool b) { return b ? 0xffffu : 0u; }
AVATAR_SIMD_INLINE uint32_t bits(vmask m) { return m & 0xffffu; }
AVATAR_SIMD_INLINE vfloat select(vmask m, vfloat a, vfloat b) { vfloat r; for (int i = 0; i < kLanes; ++i) r.v[i] = (m >> i) & 1u ? a.v[i] : b.v[i]; return r; }
AVATAR_SIMD_INLINE vint select_i(vmask m, vint a, vint b) { vint r; for (int i = 0; i < kLanes; ++i) r.v[i] = (m >> i) & 1u ? a.v[i] : b.v[i]; return r; }
AVATAR_SIMD_INLINE vfloat vmin(vfloat a, vfloat b) { return select(lt(a, b), a, b); }
AVATAR_SIMD_INLINE vfloat vmax(vfloat a, vfloat b) { return select(gt(a, b), a, b); }
AVATAR_SIMD_INLINE vfloat load(const float* p) { vfloat v; memcpy(&v, p, sizeof v); return v; }
AVATAR_SIMD_INLINE vint load_i(const int32_t* p) { vint v; memcpy(&v, p, sizeof v); return v; }
AVATAR_SIMD_INLINE void store(float* p, vfloat v) { memcpy(p, &v, sizeof v); }
AVATAR_SIMD_INLINE void store_i(int32_t* p, vint v) { memcpy(p, &v, sizeof v); }
AVATAR_SIMD_INLINE vfloat lane_index() { vfloat r; for (int i = 0; i < kLanes; ++i) r.v[i] = (float)i; return r; }
AVATAR_SIMD_INLINE float hsum(vfloat v) { float s = 0.f; for (int i = 0; i < kLanes; ++i) s += v.v[i]; return s; }
#endif

// sqrt(max(x, 0)): negative inputs (outside a footprint) give 0 rather than NaN.
AVATAR_SIMD_INLINE vfloat sqrt_nonneg(vfloat x) {
#if defined(AVATAR_SIMD_AVX512)
    return _mm512_sqrt_ps(_mm512_max_ps(x, _mm512_setzero_ps()));
#else
    vfloat r = vmax(x, splat(0.f));
    for (int i = 0; i < kLanes; ++i) r[i] = sqrtf(r[i]);
    return r;
#endif
}

// 1 / x to within an ulp or two: a 14-bit estimate refined by one Newton step on AVX-512,
// where a full-width division would hold the divider for 16 cycles per vector.
AVATAR_SIMD_INLINE vfloat reciprocal(vfloat x) {
#if defined(AVATAR_SIMD_AVX512)
    const vfloat r = _mm512_rcp14_ps(x);
    return _mm512_fmadd_ps(r, _mm512_fnmadd_ps(x, r, splat(1.f)), r);
#else
    return splat(1.f) / x;
#endif
}

// 2^t for t <= 0, within 4e-7 relative for t > -12 (where every alpha lives): t splits into
// the nearest integer n and a remainder f in [-0.5, 0.5], 2^f comes from a degree-5 fit, and n
// goes into the exponent. Inputs are clamped at -115: far below any alpha threshold, and clear
// of denormals, which would slow every later multiply.
AVATAR_SIMD_INLINE vfloat fast_exp2_nonpositive(vfloat t) {
    t = vmax(t, splat(-115.f));
#if defined(AVATAR_SIMD_AVX512)
    const vfloat n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
#else
    const vfloat magic = splat(12582912.f);  // 1.5 * 2^23: adding it rounds to an integer
    const vfloat shifted = t + magic;
    const vfloat n = shifted - magic;
#endif
    const vfloat f = t - n;
    vfloat p = splat(1.3278164e-3f);
    p = p * f + splat(9.6755559e-3f);
    p = p * f + splat(5.5507079e-2f);
    p = p * f + splat(2.4022119e-1f);
    p = p * f + splat(6.9314694e-1f);
    p = p * f + splat(1.0000001f);
#if defined(AVATAR_SIMD_AVX512)
    return _mm512_scalef_ps(p, n);
#elif defined(AVATAR_SIMD_VECTOR_EXTENSIONS)
    const vint exponent = (as_int(shifted) - splati(0x4B400000)) << 23;
    return as_float(as_int(p) + exponent);
#else
    vfloat r;
    for (int i = 0; i < kLanes; ++i) r.v[i] = ldexpf(p.v[i], (int)n.v[i]);
    return r;
#endif
}

// exp(x) for any x, via 2^(x log2 e): within 4e-7 relative for |x| < 8, 4e-6 at the ends of
// [-80, 88] (rounding of x log2 e), clamped beyond.
AVATAR_SIMD_INLINE vfloat fast_exp(vfloat x) {
    const vfloat t = vmin(vmax(x, splat(-80.f)), splat(88.f)) * splat(1.44269504089f);
#if defined(AVATAR_SIMD_AVX512)
    const vfloat n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const vfloat f = t - n;
    vfloat p = splat(1.3278164e-3f);
    p = p * f + splat(9.6755559e-3f);
    p = p * f + splat(5.5507079e-2f);
    p = p * f + splat(2.4022119e-1f);
    p = p * f + splat(6.9314694e-1f);
    p = p * f + splat(1.0000001f);
    return _mm512_scalef_ps(p, n);
#else
    // Positive arguments: 2^t = 2^(t - 128) 2^128 would overflow the helper's range, so split.
    const vfloat hi = vmax(t, splat(0.f)), lo = vmin(t, splat(0.f));
    vfloat r = fast_exp2_nonpositive(lo);
    vfloat up = fast_exp2_nonpositive(splat(0.f) - hi);
    return r / up;
#endif
}

// Stores the lanes of v where mask is set, leaving the others in memory untouched.
AVATAR_SIMD_INLINE void store_where(float* p, vmask mask, vfloat v) {
#if defined(AVATAR_SIMD_AVX512)
    _mm512_mask_storeu_ps(p, mask, v);
#else
    store(p, select(mask, v, load(p)));
#endif
}

// acc + x where mask is set, acc elsewhere (one masked add on AVX-512).
AVATAR_SIMD_INLINE vfloat add_where(vfloat acc, vmask mask, vfloat x) {
#if defined(AVATAR_SIMD_AVX512)
    return _mm512_mask_add_ps(acc, mask, acc, x);
#else
    return acc + select(mask, x, splat(0.f));
#endif
}

// ln(x) for x > 0 to about 1e-7 relative error: x = 2^e m with m in [0.75, 1.5), and
// ln(m) = 2 atanh(s), s = (m - 1) / (m + 1) in [-1/7, 1/5], by its series to s^9.
AVATAR_SIMD_INLINE vfloat fast_log(vfloat x) {
#if defined(AVATAR_SIMD_AVX512)
    const vfloat m = _mm512_getmant_ps(x, _MM_MANT_NORM_p75_1p5, _MM_MANT_SIGN_zero);
    const vfloat e = _mm512_getexp_ps(x) - _mm512_getexp_ps(m);  // exact: x = 2^e m
    const vfloat s = (m - splat(1.f)) / (m + splat(1.f));
    const vfloat s2 = s * s;
    vfloat p = splat(1.f / 9.f);
    p = p * s2 + splat(1.f / 7.f);
    p = p * s2 + splat(1.f / 5.f);
    p = p * s2 + splat(1.f / 3.f);
    p = p * s2 + splat(1.f);
    return e * splat(0.693147180559945f) + splat(2.f) * s * p;
#else
    vfloat r = x;
    for (int i = 0; i < kLanes; ++i) r[i] = logf(x[i]);
    return r;
#endif
}

}  // namespace simd
}  // namespace avatar
