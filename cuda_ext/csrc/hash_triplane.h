// Hash-grid triplane encoding: the element math shared by the CPU loops and the CUDA kernels.
//
// A point in the box is normalised to [0, 1]^3 and projected on three planes, xy, yz and xz.
// Each plane has `levels` grids of resolution R_l cells per side, i.e. (R_l + 1)^2 vertices; a
// level whose vertices fit in the table is stored densely, otherwise vertices are hashed into
// it. Features are bilinear in the four vertices around the point and are concatenated
// plane-major, then level, then feature: out[(plane * levels + level) * features + f].
// Tables are [3, levels, table_size, features].
#pragma once

#include "common.h"

namespace avatar {

constexpr int kHashMaxLevels = 32;
constexpr int kHashMaxFeatures = 8;

struct HashTriplaneParams {
    int levels;
    int features;
    uint32_t table_size;                  // a power of two
    int32_t resolution[kHashMaxLevels];   // cells per side at each level
    float box_min[3];
    float inv_extent[3];                  // 1 / (box_max - box_min)
};

// What one (plane, level) pair needs, computed once per pair rather than once per point.
struct HashLevel {
    int a0, a1;        // the plane's two axes: xy, yz or xz
    float res;         // cells per side
    uint32_t row;      // vertices per side
    bool dense;        // all vertices fit the table: index them directly
    uint32_t mask;     // table_size - 1
    int64_t offset;    // first float of this table
};

AVATAR_HD HashLevel hash_level(const HashTriplaneParams& p, int plane, int level) {
    HashLevel L;
    L.a0 = plane == 1 ? 1 : 0;
    L.a1 = plane == 0 ? 1 : 2;
    const int res = p.resolution[level];
    L.res = (float)res;
    L.row = (uint32_t)res + 1u;
    L.dense = (uint64_t)L.row * L.row <= (uint64_t)p.table_size;
    L.mask = p.table_size - 1u;
    L.offset = ((int64_t)plane * p.levels + level) * (int64_t)p.table_size * p.features;
    return L;
}

// Point in box coordinates -> [0, 1]^3, clamped; inside[a] says whether axis a needed no clamp
// (only then does the output depend on that coordinate).
AVATAR_HD void normalise_point(const float* point, const HashTriplaneParams& p, float* unit, bool* inside) {
    for (int a = 0; a < 3; ++a) {
        const float x = (point[a] - p.box_min[a]) * p.inv_extent[a];
        inside[a] = x >= 0.f && x <= 1.f;
        unit[a] = min_f(max_f(x, 0.f), 1.f);
    }
}

// The lookup arithmetic is written once over a "lane" type: float (one point: the CUDA threads
// and the CPU's scalar loops) or a 16-lane vector (sixteen points: the CPU's AVX-512 loop, whose
// specialisation lives in hash_triplane_cpu.cpp). HashLanes<Real> spells the operations whose
// syntax differs between the two.
template <class Real>
struct HashLanes;

template <>
struct HashLanes<float> {
    typedef uint32_t Index;
    static AVATAR_HD float constant(float x) { return x; }
    static AVATAR_HD Index index_constant(uint32_t x) { return x; }
    static AVATAR_HD float floor(float x) { return floorf(x); }
    static AVATAR_HD float min(float a, float b) { return min_f(a, b); }
    static AVATAR_HD Index to_index(float x) { return (uint32_t)x; }
    static AVATAR_HD Index add(Index a, Index b) { return a + b; }
    static AVATAR_HD Index mul(Index a, Index b) { return a * b; }
    static AVATAR_HD Index hash(Index iu, Index iv, uint32_t mask) { return (iu ^ (iv * kHashPrime)) & mask; }
    static AVATAR_HD float gather(const float* table, Index row, int features, int f) {
        return table[(int64_t)row * features + f];
    }
    // The second prime is the one instant-ngp uses; xor-ing keeps neighbouring cells apart.
    static constexpr uint32_t kHashPrime = 2654435761u;
};

template <class Real>
struct PlaneCell {
    typename HashLanes<Real>::Index index[4];  // table rows of (u0 v0), (u1 v0), (u0 v1), (u1 v1)
    Real fu, fv;                                // position inside the cell
};

// u, v: the point's two coordinates on this level's plane, normalised to [0, 1].
template <class Real>
AVATAR_HD PlaneCell<Real> locate_cell(Real u01, Real v01, const HashLevel& L) {
    typedef HashLanes<Real> Ln;
    const Real res = Ln::constant(L.res), top = Ln::constant(L.res - 1.f);
    const Real u = u01 * res, v = v01 * res;
    const Real cu = Ln::min(Ln::floor(u), top), cv = Ln::min(Ln::floor(v), top);
    PlaneCell<Real> c;
    c.fu = u - cu;
    c.fv = v - cv;
    const typename Ln::Index one = Ln::index_constant(1u);
    const typename Ln::Index iu = Ln::to_index(cu), iv = Ln::to_index(cv);
    const typename Ln::Index iu1 = Ln::add(iu, one), iv1 = Ln::add(iv, one);
    if (L.dense) {
        const typename Ln::Index row = Ln::index_constant(L.row);
        const typename Ln::Index r0 = Ln::mul(iv, row), r1 = Ln::mul(iv1, row);
        c.index[0] = Ln::add(iu, r0);
        c.index[1] = Ln::add(iu1, r0);
        c.index[2] = Ln::add(iu, r1);
        c.index[3] = Ln::add(iu1, r1);
    } else {
        c.index[0] = Ln::hash(iu, iv, L.mask);
        c.index[1] = Ln::hash(iu1, iv, L.mask);
        c.index[2] = Ln::hash(iu, iv1, L.mask);
        c.index[3] = Ln::hash(iu1, iv1, L.mask);
    }
    return c;
}

// Features of one point (or sixteen) on one (plane, level): out[0 : F]. F is a template
// argument so the feature loops unroll.
template <int F, class Real>
AVATAR_HD void hash_level_fwd(Real u01, Real v01, const HashLevel& L, const float* tables, Real* out) {
    typedef HashLanes<Real> Ln;
    const PlaneCell<Real> c = locate_cell(u01, v01, L);
    const float* t = tables + L.offset;
    Real w[4];
    corner_weights(c, w);
    for (int f = 0; f < F; ++f) {
        Real acc = w[0] * Ln::gather(t, c.index[0], F, f);
        for (int k = 1; k < 4; ++k) acc = acc + w[k] * Ln::gather(t, c.index[k], F, f);
        out[f] = acc;
    }
}

// Bilinear weights of a cell's corners, in PlaneCell::index order.
template <class Real>
AVATAR_HD void corner_weights(const PlaneCell<Real>& c, Real* w) {
    const Real one = HashLanes<Real>::constant(1.f);
    w[0] = (one - c.fu) * (one - c.fv);
    w[1] = c.fu * (one - c.fv);
    w[2] = (one - c.fu) * c.fv;
    w[3] = c.fu * c.fv;
}

// Gradient of hash_level_fwd for the table: add(ptr, value) accumulates (a plain add on the CPU,
// where one thread owns each table; atomic on the GPU).
template <int F, class AddFn>
AVATAR_HD void hash_level_bwd_table(const float* unit, const HashLevel& L, const float* v_out, float* v_tables,
                                    AddFn add) {
    const PlaneCell<float> c = locate_cell(unit[L.a0], unit[L.a1], L);
    float w[4];
    corner_weights(c, w);
    float* t = v_tables + L.offset;
    for (int k = 0; k < 4; ++k)
        for (int f = 0; f < F; ++f) add(t + (int64_t)c.index[k] * F + f, w[k] * v_out[f]);
}

// Gradient of hash_level_fwd for the point's two plane coordinates, in grid units:
// d/du and d/dv of sum_f v_out[f] feature_f, with u = u01 * res.
template <int F, class Real>
AVATAR_HD void hash_level_grad_uv(Real u01, Real v01, const HashLevel& L, const float* tables, const Real* v_out,
                                  Real* g_u, Real* g_v) {
    typedef HashLanes<Real> Ln;
    const PlaneCell<Real> c = locate_cell(u01, v01, L);
    const float* t = tables + L.offset;
    const Real one = Ln::constant(1.f);
    Real gu = Ln::constant(0.f), gv = Ln::constant(0.f);
    for (int f = 0; f < F; ++f) {
        const Real t0 = Ln::gather(t, c.index[0], F, f), t1 = Ln::gather(t, c.index[1], F, f);
        const Real t2 = Ln::gather(t, c.index[2], F, f), t3 = Ln::gather(t, c.index[3], F, f);
        gu = gu + v_out[f] * ((one - c.fv) * (t1 - t0) + c.fv * (t3 - t2));
        gv = gv + v_out[f] * ((one - c.fu) * (t2 - t0) + c.fu * (t3 - t1));
    }
    *g_u = gu;
    *g_v = gv;
}

// Gradient of hash_level_fwd for the point, added to v_point[3]. inside[] from normalise_point.
template <int F>
AVATAR_HD void hash_level_bwd_point(const float* unit, const bool* inside, const HashLevel& L,
                                    const HashTriplaneParams& p, const float* tables, const float* v_out,
                                    float* v_point) {
    float g_u, g_v;
    hash_level_grad_uv<F>(unit[L.a0], unit[L.a1], L, tables, v_out, &g_u, &g_v);
    if (inside[L.a0]) v_point[L.a0] += g_u * L.res * p.inv_extent[L.a0];
    if (inside[L.a1]) v_point[L.a1] += g_v * L.res * p.inv_extent[L.a1];
}

// Calls fn.template operator()<F>() with the feature count as a compile-time constant.
template <class Fn>
AVATAR_HD void dispatch_features(int features, Fn&& fn) {
    switch (features) {
        case 1: fn.template operator()<1>(); break;
        case 2: fn.template operator()<2>(); break;
        case 3: fn.template operator()<3>(); break;
        case 4: fn.template operator()<4>(); break;
        case 5: fn.template operator()<5>(); break;
        case 6: fn.template operator()<6>(); break;
        case 7: fn.template operator()<7>(); break;
        default: fn.template operator()<8>(); break;
    }
}

}  // namespace avatar
