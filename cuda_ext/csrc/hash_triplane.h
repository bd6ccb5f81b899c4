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

// The two coordinates of each plane: xy, yz, xz.
AVATAR_HD void plane_axes(int plane, int* a0, int* a1) {
    *a0 = plane == 1 ? 1 : 0;
    *a1 = plane == 0 ? 1 : 2;
}

struct PlaneCell {
    uint32_t index[4];   // table rows of the corners (u0 v0), (u1 v0), (u0 v1), (u1 v1)
    float fu, fv;        // position inside the cell
    float du, dv;        // d(grid coordinate) / d(point coordinate); zero outside the box
};

AVATAR_HD uint32_t hash_vertex(uint32_t iu, uint32_t iv, uint32_t row, bool dense, uint32_t table_size) {
    // The second prime is the one instant-ngp uses; xor-ing keeps neighbouring cells apart.
    return dense ? iu + iv * row : ((iu * 1u) ^ (iv * 2654435761u)) & (table_size - 1u);
}

AVATAR_HD PlaneCell locate_cell(const float* point, int plane, int level, const HashTriplaneParams& p) {
    int a0, a1;
    plane_axes(plane, &a0, &a1);
    const int res = p.resolution[level];
    PlaneCell cell;
    float coord[2];
    float slope[2];
    const int axes[2] = {a0, a1};
    for (int k = 0; k < 2; ++k) {
        const int a = axes[k];
        const float x = (point[a] - p.box_min[a]) * p.inv_extent[a];
        const bool inside = x >= 0.f && x <= 1.f;
        coord[k] = fminf(fmaxf(x, 0.f), 1.f) * (float)res;
        slope[k] = inside ? (float)res * p.inv_extent[a] : 0.f;
    }
    const float cu = fminf(floorf(coord[0]), (float)(res - 1));
    const float cv = fminf(floorf(coord[1]), (float)(res - 1));
    cell.fu = coord[0] - cu;
    cell.fv = coord[1] - cv;
    cell.du = slope[0];
    cell.dv = slope[1];
    const uint32_t iu = (uint32_t)cu, iv = (uint32_t)cv;
    const uint32_t row = (uint32_t)res + 1u;
    const bool dense = (uint64_t)row * row <= (uint64_t)p.table_size;
    cell.index[0] = hash_vertex(iu, iv, row, dense, p.table_size);
    cell.index[1] = hash_vertex(iu + 1u, iv, row, dense, p.table_size);
    cell.index[2] = hash_vertex(iu, iv + 1u, row, dense, p.table_size);
    cell.index[3] = hash_vertex(iu + 1u, iv + 1u, row, dense, p.table_size);
    return cell;
}

AVATAR_HD const float* level_table(const float* tables, int plane, int level, const HashTriplaneParams& p) {
    return tables + ((int64_t)plane * p.levels + level) * (int64_t)p.table_size * p.features;
}

// Features of one point on one plane and level: out[0 : features].
AVATAR_HD void hash_plane_level_fwd(const float* point, int plane, int level, const HashTriplaneParams& p,
                                    const float* tables, float* out) {
    const PlaneCell c = locate_cell(point, plane, level, p);
    const float* t = level_table(tables, plane, level, p);
    const float w[4] = {(1.f - c.fu) * (1.f - c.fv), c.fu * (1.f - c.fv), (1.f - c.fu) * c.fv, c.fu * c.fv};
    for (int f = 0; f < p.features; ++f) {
        float acc = 0.f;
        for (int k = 0; k < 4; ++k) acc += w[k] * t[(int64_t)c.index[k] * p.features + f];
        out[f] = acc;
    }
}

// Gradient of hash_plane_level_fwd. add(ptr, value) accumulates into the table gradient (plain
// add on the CPU, where one thread owns a table; atomic on the GPU). v_point (3) is accumulated.
template <class AddFn>
AVATAR_HD void hash_plane_level_bwd(const float* point, int plane, int level, const HashTriplaneParams& p,
                                    const float* tables, const float* v_out, float* v_tables, float* v_point,
                                    AddFn add) {
    const PlaneCell c = locate_cell(point, plane, level, p);
    const float w[4] = {(1.f - c.fu) * (1.f - c.fv), c.fu * (1.f - c.fv), (1.f - c.fu) * c.fv, c.fu * c.fv};
    const int64_t base = ((int64_t)plane * p.levels + level) * (int64_t)p.table_size * p.features;
    if (v_tables) {
        for (int k = 0; k < 4; ++k)
            for (int f = 0; f < p.features; ++f)
                add(v_tables + base + (int64_t)c.index[k] * p.features + f, w[k] * v_out[f]);
    }
    if (v_point) {
        const float* t = tables + base;
        float g_u = 0.f, g_v = 0.f;
        for (int f = 0; f < p.features; ++f) {
            const float t0 = t[(int64_t)c.index[0] * p.features + f], t1 = t[(int64_t)c.index[1] * p.features + f];
            const float t2 = t[(int64_t)c.index[2] * p.features + f], t3 = t[(int64_t)c.index[3] * p.features + f];
            g_u += v_out[f] * ((1.f - c.fv) * (t1 - t0) + c.fv * (t3 - t2));
            g_v += v_out[f] * ((1.f - c.fu) * (t2 - t0) + c.fu * (t3 - t1));
        }
        int a0, a1;
        plane_axes(plane, &a0, &a1);
        v_point[a0] += g_u * c.du;
        v_point[a1] += g_v * c.dv;
    }
}

}  // namespace avatar
