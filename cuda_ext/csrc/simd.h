// Sixteen-lane float vectors for the CPU blend loops: one lane per pixel of a 16-pixel tile row.
//
// With GCC or Clang these are the compilers' generic vector types, which lower to one AVX-512
// register, two AVX2 registers or four SSE registers depending on -march; elsewhere a plain
// struct with the same operations keeps the code portable (and lets the optimiser vectorise it).
// Masks are integer vectors of 0 / -1 per lane, as the compare operators return them.
#pragma once

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace avatar {
namespace simd {

constexpr int kLanes = 16;

#if defined(__GNUC__) || defined(__clang__)
#define AVATAR_VECTOR_EXTENSIONS 1
typedef float vfloat __attribute__((vector_size(64), aligned(64)));
typedef int32_t vint __attribute__((vector_size(64), aligned(64)));

// Brace initialisation rather than `vfloat{} + x`: adding 0.0 is not an identity for -0.0, so the
// compiler would have to keep that addition.
inline vfloat splat(float x) { return vfloat{x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x}; }
inline vint splati(int32_t x) { return vint{x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x}; }
inline vint as_int(vfloat v) { return (vint)v; }
inline vfloat as_float(vint v) { return (vfloat)v; }
inline vfloat select(vint mask, vfloat a, vfloat b) { return mask ? a : b; }
inline vint selecti(vint mask, vint a, vint b) { return mask ? a : b; }
inline vfloat vmin(vfloat a, vfloat b) { return a < b ? a : b; }
inline vfloat vmax(vfloat a, vfloat b) { return a > b ? a : b; }
#else
struct vfloat {
    float v[kLanes];
    float operator[](int i) const { return v[i]; }
    float& operator[](int i) { return v[i]; }
};
struct vint {
    int32_t v[kLanes];
    int32_t operator[](int i) const { return v[i]; }
    int32_t& operator[](int i) { return v[i]; }
};
#define AVATAR_LANEWISE(T, R, op, expr) \
    inline R operator op(T a, T b) { R r; for (int i = 0; i < kLanes; ++i) r.v[i] = expr; return r; }
AVATAR_LANEWISE(vfloat, vfloat, +, a.v[i] + b.v[i])
AVATAR_LANEWISE(vfloat, vfloat, -, a.v[i] - b.v[i])
AVATAR_LANEWISE(vfloat, vfloat, *, a.v[i] * b.v[i])
AVATAR_LANEWISE(vfloat, vfloat, /, a.v[i] / b.v[i])
AVATAR_LANEWISE(vfloat, vint, <, a.v[i] < b.v[i] ? -1 : 0)
AVATAR_LANEWISE(vfloat, vint, <=, a.v[i] <= b.v[i] ? -1 : 0)
AVATAR_LANEWISE(vfloat, vint, >, a.v[i] > b.v[i] ? -1 : 0)
AVATAR_LANEWISE(vfloat, vint, >=, a.v[i] >= b.v[i] ? -1 : 0)
AVATAR_LANEWISE(vint, vint, +, a.v[i] + b.v[i])
AVATAR_LANEWISE(vint, vint, -, a.v[i] - b.v[i])
AVATAR_LANEWISE(vint, vint, &, a.v[i] & b.v[i])
AVATAR_LANEWISE(vint, vint, |, a.v[i] | b.v[i])
AVATAR_LANEWISE(vint, vint, <=, a.v[i] <= b.v[i] ? -1 : 0)
AVATAR_LANEWISE(vint, vint, <, a.v[i] < b.v[i] ? -1 : 0)
#undef AVATAR_LANEWISE
inline vint operator~(vint a) { vint r; for (int i = 0; i < kLanes; ++i) r.v[i] = ~a.v[i]; return r; }
inline vint operator<<(vint a, int s) { vint r; for (int i = 0; i < kLanes; ++i) r.v[i] = (int32_t)((uint32_t)a.v[i] << s); return r; }
inline vfloat operator-(vfloat a) { vfloat r; for (int i = 0; i < kLanes; ++i) r.v[i] = -a.v[i]; return r; }
inline vfloat& operator+=(vfloat& a, vfloat b) { a = a + b; return a; }
inline vfloat splat(float x) { vfloat r; for (int i = 0; i < kLanes; ++i) r.v[i] = x; return r; }
inline vint splati(int32_t x) { vint r; for (int i = 0; i < kLanes; ++i) r.v[i] = x; return r; }
inline vint as_int(vfloat v) { vint r; memcpy(&r, &v, sizeof r); return r; }
inline vfloat as_float(vint v) { vfloat r; memcpy(&r, &v, sizeof r); return r; }
inline vfloat select(vint m, vfloat a, vfloat b) { vfloat r; for (int i = 0; i < kLanes; ++i) r.v[i] = m.v[i] ? a.v[i] : b.v[i]; return r; }
inline vint selecti(vint m, vint a, vint b) { vint r; for (int i = 0; i < kLanes; ++i) r.v[i] = m.v[i] ? a.v[i] : b.v[i]; return r; }
inline vfloat vmin(vfloat a, vfloat b) { return select(a < b, a, b); }
inline vfloat vmax(vfloat a, vfloat b) { return select(a > b, a, b); }
#endif

inline vfloat load(const float* p) { vfloat v; memcpy(&v, p, sizeof v); return v; }
inline vint loadi(const int32_t* p) { vint v; memcpy(&v, p, sizeof v); return v; }
inline void store(float* p, vfloat v) { memcpy(p, &v, sizeof v); }
inline void storei(int32_t* p, vint v) { memcpy(p, &v, sizeof v); }

// Lane i holds i: pixel offsets inside a tile row.
inline vfloat lane_index() {
    vfloat r = splat(0.f);
    for (int i = 0; i < kLanes; ++i) r[i] = (float)i;
    return r;
}

// Bit i set when lane i of the mask is set.
inline uint32_t movemask(vint m) {
#if defined(__AVX512F__) && defined(AVATAR_VECTOR_EXTENSIONS)
    __m512i x;
    memcpy(&x, &m, sizeof x);
    return (uint32_t)_mm512_test_epi32_mask(x, x);
#elif defined(__AVX2__) && defined(AVATAR_VECTOR_EXTENSIONS)
    __m256 half[2];
    memcpy(half, &m, sizeof half);
    return (uint32_t)_mm256_movemask_ps(half[0]) | ((uint32_t)_mm256_movemask_ps(half[1]) << 8);
#else
    uint32_t bits = 0;
    for (int i = 0; i < kLanes; ++i) bits |= (m[i] != 0 ? 1u : 0u) << i;
    return bits;
#endif
}

inline float hsum(vfloat v) {
#if (defined(__AVX512F__) || defined(__AVX2__)) && defined(AVATAR_VECTOR_EXTENSIONS)
    __m256 half[2];
    memcpy(half, &v, sizeof half);
    const __m256 s8 = _mm256_add_ps(half[0], half[1]);
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    s4 = _mm_add_ss(s4, _mm_movehdup_ps(s4));
    return _mm_cvtss_f32(s4);
#else
    float s = 0.f;
    for (int i = 0; i < kLanes; ++i) s += v[i];
    return s;
#endif
}

// exp(x) for x <= 0 to about 2.5e-7 relative error, in a dozen vector instructions.
// Rounds x*log2(e) to the nearest integer n with the 1.5*2^23 trick, evaluates 2^f for the
// remainder f in [-0.5, 0.5] with a degree-5 fit, and adds n to the exponent bits. Inputs below
// -87 are clamped (the result, ~1e-38, is far below any alpha threshold).
inline vfloat fast_exp(vfloat x) {
    const vfloat magic = splat(12582912.f);  // 1.5 * 2^23
    const vfloat t = vmax(x, splat(-87.f)) * splat(1.44269504089f);
    const vfloat shifted = t + magic;
    const vfloat n = shifted - magic;
    const vfloat f = t - n;
    vfloat p = splat(1.3278164e-3f);
    p = p * f + splat(9.6755559e-3f);
    p = p * f + splat(5.5507079e-2f);
    p = p * f + splat(2.4022119e-1f);
    p = p * f + splat(6.9314694e-1f);
    p = p * f + splat(1.0000001f);
    const vint exponent = (as_int(shifted) - splati(0x4B400000)) << 23;
    return as_float(as_int(p) + exponent);
}

}  // namespace simd
}  // namespace avatar
