// Where a projected Gaussian can reach alpha >= 1/255: tests of its ellipse against tiles and
// tile rows. Written once over a generic scalar type so the same code serves scalar floats (tile
// binning) and 16-lane vectors (the 16 rows of a tile at once).
//
// With conic (a, b, c) the blend evaluates sigma = ha dx^2 + b dx dy + hc dy^2 (ha = a/2,
// hc = c/2) and alpha = opacity * exp(-sigma), so alpha >= 1/255 needs sigma <= ln(255 opacity).
#pragma once

#include <math.h>

#include "common.h"
#include "simd.h"

namespace avatar {

// Slack on the cutoff so that rounding in the blend's exp never reaches a pixel the bounds
// skipped; it costs a negligible number of extra evaluations.
constexpr float kCutoffSlack = 1e-3f;
constexpr float kTileSize = 16.f;
constexpr int kTile = 16;

inline float vmin(float a, float b) { return min_f(a, b); }
inline float vmax(float a, float b) { return max_f(a, b); }
using simd::vmax;
using simd::vmin;

// min over u in [lo, hi] of hu u^2 + b v u + hv v^2, for hu > 0 (the conic is positive definite);
// inv_2hu = 1 / (2 hu) is passed in because these tests run far more often than ellipses change.
template <class F>
AVATAR_SIMD_INLINE F segment_min_sigma(F hu, F inv_2hu, F b, F hv, F v, F lo, F hi) {
    const F bv = b * v;
    F u = F{} - bv * inv_2hu;
    u = vmin(vmax(u, lo), hi);
    return u * (hu * u + bv) + hv * v * v;
}

struct ScreenEllipse {
    float mx, my;      // centre in pixels
    float ha, b, hc;   // half the conic's diagonal and its off-diagonal
    float inv_2ha, inv_2hc;
    float det;         // the conic's determinant, a c - b^2 (> 0)
    float cutoff;      // ln(255 opacity) plus slack
};

inline ScreenEllipse make_screen_ellipse(const float* mean2d, const float* conic, float opacity) {
    ScreenEllipse e;
    e.mx = mean2d[0];
    e.my = mean2d[1];
    e.ha = 0.5f * conic[0];
    e.b = conic[1];
    e.hc = 0.5f * conic[2];
    e.inv_2ha = 1.f / conic[0];
    e.inv_2hc = 1.f / conic[2];
    // In double: a c and b^2 nearly cancel for long thin ellipses.
    e.det = (float)((double)conic[0] * conic[2] - (double)conic[1] * conic[1]);
    e.cutoff = logf(255.f * opacity) + kCutoffSlack;
    return e;
}

// Half extents of the ellipse's axis-aligned bounding box: sqrt(2 cutoff Sigma_xx) and
// sqrt(2 cutoff Sigma_yy), with Sigma the inverse of the conic.
inline void ellipse_extents(const ScreenEllipse& e, float* ex, float* ey) {
    const float k = max_f(e.cutoff, 0.f) * 2.f / e.det;
    *ex = sqrtf(k * 2.f * e.hc);
    *ey = sqrtf(k * 2.f * e.ha);
}

// Bit j set when the ellipse reaches the rectangle [xa[j], xb[j]] x [ya, yb] (sixteen tiles of
// one tile row at once). The minimum of sigma over a rectangle is 0 when the centre is inside,
// else it lies on one of the four edges.
inline uint32_t ellipse_hits_rects(const ScreenEllipse& e, simd::vfloat xa, simd::vfloat xb, float ya, float yb) {
    using namespace simd;
    const vfloat lox = xa - splat(e.mx), hix = xb - splat(e.mx);
    const float loy = ya - e.my, hiy = yb - e.my;
    const vfloat ha = splat(e.ha), b = splat(e.b), hc = splat(e.hc);
    const vfloat iha = splat(e.inv_2ha), ihc = splat(e.inv_2hc);
    vfloat s = segment_min_sigma(ha, iha, b, hc, splat(loy), lox, hix);
    s = vmin(s, segment_min_sigma(ha, iha, b, hc, splat(hiy), lox, hix));
    s = vmin(s, segment_min_sigma(hc, ihc, b, ha, lox, splat(loy), splat(hiy)));
    s = vmin(s, segment_min_sigma(hc, ihc, b, ha, hix, splat(loy), splat(hiy)));
    const vmask inside = le(lox, splat(0.f)) & ge(hix, splat(0.f)) & mask_of(loy <= 0.f && hiy >= 0.f);
    return bits(inside | le(s, splat(e.cutoff)));
}

// Which of a tile's 2-row x 8-column blocks the ellipse reaches: bit 2 p + h stands for rows
// 2p and 2p+1, columns [8h, 8h + 8) (see blend.h). Solved per row, sixteen rows at once: on row
// dy the ellipse spans dx in (-b dy +- sqrt(disc)) / (2 ha), disc = 4 ha cutoff - det dy^2.
inline uint32_t ellipse_block_mask(const ScreenEllipse& e, int x0, int y0, int cols, int rows) {
    using namespace simd;
    const vfloat dy = splat((float)y0 + 0.5f - e.my) + lane_index();
    const vfloat disc = splat(4.f * e.ha * e.cutoff) - splat(e.det) * dy * dy;
    const vfloat root = sqrt_nonneg(disc);
    const vfloat centre = splat(e.mx) - splat(e.b) * dy * splat(e.inv_2ha);
    const vfloat half_width = root * splat(e.inv_2ha);
    const vfloat lo = centre - half_width, hi = centre + half_width;
    const vmask on_row = ge(disc, splat(0.f));
    // Pixel centres of each half of the row, cut at the image's right edge.
    const float first0 = (float)x0 + 0.5f, last0 = (float)x0 + (float)(cols < 8 ? cols : 8) - 0.5f;
    const float first1 = (float)x0 + 8.5f, last1 = (float)x0 + (float)cols - 0.5f;
    const uint32_t rows0 = bits(on_row & ge(hi, splat(first0)) & le(lo, splat(last0)));
    const uint32_t rows1 = cols > 8 ? bits(on_row & ge(hi, splat(first1)) & le(lo, splat(last1))) : 0u;
    const uint32_t in_tile = rows >= 32 ? 0xffffffffu : ((1u << rows) - 1u);
    const uint32_t r0 = rows0 & in_tile, r1 = rows1 & in_tile;
    return ((r0 | (r0 >> 1)) & 0x5555u) | (((r1 | (r1 >> 1)) & 0x5555u) << 1);
}

}  // namespace avatar
