// Element math of the NeRF ops, shared by the CPU loops (volume_cpu.cpp) and the CUDA kernels
// (volume_cuda.cu): one ray at a time.
//
// Marching: a ray o + t d is clipped to an axis-aligned box and stepped in equal intervals
// [t_k, t_k + step] from where it enters (or from `t_start`, when a caller marches in rounds) until
// it leaves (or an interval would start at or beyond `t_stop`); an interval is a sample when the occupancy-grid cell holding its midpoint is occupied. The grid
// covers the box with res^3 cells, x fastest: cell (ix, iy, iz) is byte ix + res (iy + res iz).
//
// Compositing: samples of one ray, in order, with density sigma >= 0, length delta and C channels
// of colour c: alpha_i = 1 - exp(-sigma_i delta_i), T_i = prod_{j<i} (1 - alpha_j),
// w_i = T_i alpha_i, out = sum_i w_i c_i, opacity = 1 - T_n (= sum_i w_i).
// The gradient of sigma_i is delta_i (T_{i+1} g_i - sum_{k>i} w_k g_k), with g_i the gradient of
// the loss with respect to w_i (g_i = v_out . c_i + v_opacity); the suffix sums come from the
// forward outputs, so the backward pass walks each ray once, front to back.
//
// Volume lookup: a volume of C channels [C, res, res, res] ([z, y, x], x fastest) holds values at the
// cell centres of a box; a point gets their trilinear interpolation, and a point beyond the outermost
// centres the border's (torch's grid_sample with align_corners=False and border padding).
#pragma once

#include "common.h"

namespace avatar {

constexpr int kVolumeMaxChannels = 8;

struct MarchParams {
    float box_min[3];
    float box_max[3];
    float cells_per_unit[3];  // res / extent per axis
    int32_t res;              // cells per side of the occupancy grid
    float step;               // interval length along the ray (the ray's direction is unit length)
    float near;               // samples start no closer than this
    int32_t max_samples;      // per ray and call
};

// Entry and exit of o + t d through the box (slab test); false when the ray misses it.
AVATAR_HD bool ray_box(const float* o, const float* d, const float* lo, const float* hi, float* t0, float* t1) {
    float enter = -3.4e38f, leave = 3.4e38f;
    for (int a = 0; a < 3; ++a) {
        if (d[a] == 0.f) {
            if (o[a] < lo[a] || o[a] > hi[a]) return false;
            continue;
        }
        const float inv = 1.f / d[a];
        float ta = (lo[a] - o[a]) * inv, tb = (hi[a] - o[a]) * inv;
        if (ta > tb) {
            const float s = ta;
            ta = tb;
            tb = s;
        }
        enter = max_f(enter, ta);
        leave = min_f(leave, tb);
    }
    *t0 = enter;
    *t1 = leave;
    return leave > enter;
}

// Occupancy-grid byte holding point p, or -1 outside the grid.
AVATAR_HD int64_t grid_cell(const float* p, const MarchParams& m) {
    int64_t index = 0, stride = 1;
    for (int a = 0; a < 3; ++a) {
        const float u = (p[a] - m.box_min[a]) * m.cells_per_unit[a];
        if (!(u >= 0.f) || u >= (float)m.res) return -1;
        index += (int64_t)u * stride;
        stride *= m.res;
    }
    return index;
}

// Steps one ray. For each sample, emit(k, t_begin, t_end) with k its number on this ray; returns
// how many there were (at most m.max_samples) and writes where stepping stopped to *t_next (a later
// call with t_start = *t_next continues the same intervals; 3.4e38 once the ray has left the box).
template <typename Emit>
AVATAR_HD int march_ray(const float* o, const float* d, float t_start, float t_stop, const MarchParams& m,
                        const uint8_t* grid, float* t_next, Emit emit) {
    float t0, t1;
    *t_next = 3.4e38f;
    if (!ray_box(o, d, m.box_min, m.box_max, &t0, &t1)) return 0;
    const float begin = max_f(max_f(t0, m.near), t_start);
    int count = 0;
    for (int64_t k = 0;; ++k) {
        const float a = begin + (float)k * m.step;
        const float mid = a + 0.5f * m.step;
        if (mid >= t1) return count;
        if (count == m.max_samples || a >= t_stop) {
            *t_next = a;
            return count;
        }
        const float p[3] = {o[0] + mid * d[0], o[1] + mid * d[1], o[2] + mid * d[2]};
        const int64_t cell = grid_cell(p, m);
        if (cell >= 0 && grid[cell]) {
            emit(count, a, a + m.step);
            ++count;
        }
    }
}

// Marching several parts at once (a head in its own frame, a torso in camera space): each part has its box,
// grid and copy of the ray (in its own space); their samples come out merged in depth order along the ray
// (ties: the lower part first), up to max_samples of them in all, so that a caller marching in rounds
// composites each round's samples as they are. A part's t_next is where its next sample starts (3.4e38:
// it has none left before its t_stop or the far side of its box).
constexpr int kMarchMaxParts = 4;

struct MarchPartsParams {
    MarchParams part[kMarchMaxParts];  // each part's box, grid size, step and near (its max_samples unused)
    const uint8_t* grid[kMarchMaxParts];
    int32_t parts;
    int32_t max_samples;  // per ray and call, all parts together
};

// Where one part's stepping along one ray stands: its next sample is [a, a + step], at point p (the interval's
// midpoint), while live.
struct PartCursor {
    float begin, t1, t_stop, a;
    float p[3];
    int64_t k;  // steps taken from `begin`
    bool live;
};

// Moves the cursor to the part's next sample (the same lattice of steps as march_ray).
AVATAR_HD void part_advance(const float* o, const float* d, const MarchParams& m, const uint8_t* grid, PartCursor& c) {
    while (c.live) {
        const float a = c.begin + (float)c.k * m.step;
        const float mid = a + 0.5f * m.step;
        if (mid >= c.t1 || a >= c.t_stop) {
            c.live = false;
            return;
        }
        ++c.k;
        const float p[3] = {o[0] + mid * d[0], o[1] + mid * d[1], o[2] + mid * d[2]};
        const int64_t cell = grid_cell(p, m);
        if (cell >= 0 && grid[cell]) {
            c.a = a;
            for (int i = 0; i < 3; ++i) c.p[i] = p[i];
            return;
        }
    }
}

// Ray r of n (origins, dirs [P, n, 3]; t_start, t_stop, t_next [P, n]). For each sample, emit(k, part, t_begin,
// t_end, point) with k its number on this ray; returns how many there were.
template <typename Emit>
AVATAR_HD int march_parts_ray(int64_t r, int64_t n, const float* origins, const float* dirs, const float* t_start,
                              const float* t_stop, const MarchPartsParams& q, float* t_next, Emit emit) {
    PartCursor cursor[kMarchMaxParts];
    for (int part = 0; part < q.parts; ++part) {
        const MarchParams& m = q.part[part];
        const float *o = origins + 3 * (part * n + r), *d = dirs + 3 * (part * n + r);
        PartCursor& c = cursor[part];
        float t0 = 0.f;
        c.t1 = 0.f;  // a ray that misses the box is not live: neither is read
        c.live = ray_box(o, d, m.box_min, m.box_max, &t0, &c.t1);
        c.begin = max_f(max_f(t0, m.near), t_start[part * n + r]);
        c.t_stop = t_stop[part * n + r];
        c.k = 0;
        part_advance(o, d, m, q.grid[part], c);
    }
    int count = 0;
    while (count < q.max_samples) {
        int best = -1;
        for (int part = 0; part < q.parts; ++part)
            if (cursor[part].live && (best < 0 || cursor[part].a < cursor[best].a)) best = part;
        if (best < 0) break;
        PartCursor& c = cursor[best];
        emit(count, best, c.a, c.a + q.part[best].step, c.p);
        ++count;
        part_advance(origins + 3 * (best * n + r), dirs + 3 * (best * n + r), q.part[best], q.grid[best], c);
    }
    for (int part = 0; part < q.parts; ++part) t_next[part * n + r] = cursor[part].live ? cursor[part].a : 3.4e38f;
    return count;
}

// Row i of march_parts' packed outputs: one sample of ray `ray`.
AVATAR_HD void store_part_sample(int64_t i, int64_t ray, int part, float a, float b, const float* p, int64_t* ray_ids,
                                 float* t_begin, float* t_end, int64_t* parts, float* points) {
    ray_ids[i] = ray;
    t_begin[i] = a;
    t_end[i] = b;
    parts[i] = part;
    for (int c = 0; c < 3; ++c) points[3 * i + c] = p[c];
}

// One ray's samples [start, start + count): weights w (may be null) and the composite.
AVATAR_HD void composite_ray_fwd(int64_t start, int64_t count, const float* sigma, const float* delta,
                                 const float* color, int channels, float* weights, float* out, float* opacity) {
    float acc[kVolumeMaxChannels] = {0.f};
    float T = 1.f;
    for (int64_t i = start; i < start + count; ++i) {
        const float keep = expf(-sigma[i] * delta[i]);
        const float w = T * (1.f - keep);
        for (int c = 0; c < channels; ++c) acc[c] += w * color[i * channels + c];
        if (weights) weights[i] = w;
        T *= keep;
    }
    for (int c = 0; c < channels; ++c) out[c] = acc[c];
    *opacity = 1.f - T;
}

// Gradients of one ray's sigma and colour from those of its composite (`out`, `opacity` as the
// forward pass gave them).
AVATAR_HD void composite_ray_bwd(int64_t start, int64_t count, const float* sigma, const float* delta,
                                 const float* color, int channels, const float* out, float opacity,
                                 const float* v_out, float v_opacity, float* v_sigma, float* v_color) {
    float total = v_opacity * opacity;  // sum_k w_k g_k over the whole ray
    for (int c = 0; c < channels; ++c) total += v_out[c] * out[c];
    float T = 1.f, before = 0.f;  // before: sum_{k<=i} w_k g_k
    for (int64_t i = start; i < start + count; ++i) {
        const float keep = expf(-sigma[i] * delta[i]);
        const float w = T * (1.f - keep);
        float g = v_opacity;
        for (int c = 0; c < channels; ++c) {
            g += v_out[c] * color[i * channels + c];
            v_color[i * channels + c] = w * v_out[c];
        }
        before += w * g;
        T *= keep;
        v_sigma[i] = delta[i] * (T * g - (total - before));
    }
}

struct LookupParams {
    float box_min[3];
    float cells_per_unit[3];  // res / extent per axis
    int32_t res;              // cells per side
    int32_t channels;         // C
};

// out[C] = the volume at point p: the eight cell centres around it, weighted, in each channel.
AVATAR_HD void lookup_point(const float* p, const LookupParams& v, const float* volume, float* out) {
    int32_t lo[3], step[3];
    float frac[3];
    const int32_t stride[3] = {1, v.res, v.res * v.res};
    for (int a = 0; a < 3; ++a) {
        const float u = min_f(max_f((p[a] - v.box_min[a]) * v.cells_per_unit[a] - 0.5f, 0.f), (float)(v.res - 1));
        lo[a] = (int32_t)u;  // u >= 0: truncation is floor
        step[a] = lo[a] + 1 < v.res ? stride[a] : 0;
        frac[a] = u - (float)lo[a];
    }
    const int64_t base = lo[0] + (int64_t)lo[1] * stride[1] + (int64_t)lo[2] * stride[2];
    int64_t at[8];
    float w[8];
    for (int corner = 0; corner < 8; ++corner) {
        const int bx = corner & 1, by = (corner >> 1) & 1, bz = corner >> 2;
        at[corner] = base + bx * step[0] + by * step[1] + bz * step[2];
        w[corner] = (bx ? frac[0] : 1.f - frac[0]) * (by ? frac[1] : 1.f - frac[1]) * (bz ? frac[2] : 1.f - frac[2]);
    }
    const int64_t cube = (int64_t)v.res * v.res * v.res;
    for (int c = 0; c < v.channels; ++c) {
        const float* vol = volume + c * cube;
        float acc = 0.f;
        for (int corner = 0; corner < 8; ++corner) acc += w[corner] * vol[at[corner]];
        out[c] = acc;
    }
}

}  // namespace avatar
