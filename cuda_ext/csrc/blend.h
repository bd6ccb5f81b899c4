// What the forward and backward blend loops share: the per-tile copy of each Gaussian's
// parameters, and the alpha of one Gaussian over one 16-pixel tile row. Both passes call the
// same inline code, so the backward pass sees exactly the alphas the forward pass blended.
#pragma once

#include <stdint.h>

#include <vector>

#include "bounds.h"
#include "raster_cpu.h"
#include "simd.h"

namespace avatar {
namespace cpu {

constexpr float kAlphaMin = 1.f / 255.f;     // lighter contributions are skipped
constexpr float kAlphaMax = 0.99f;           // keeps 1 - alpha invertible for the backward pass
constexpr float kTransmittanceMin = 1e-4f;   // a pixel stops before its transmittance drops below
constexpr int kMaxChunk = 4;                 // colour channels blended per pass

// One Gaussian as a tile sees it: geometry and this pass's colours, in one cache line.
struct alignas(64) TileGaussian {
    float mx, my;      // 2D mean
    float ha, b, hc;   // sigma = ha dx^2 + b dx dy + hc dy^2
    float log_o;       // ln(opacity): alpha = exp(ln(opacity) - sigma)
    float z;           // depth
    float opacity;
    float color[kMaxChunk];
    float pad[4];
};

struct TileBox {
    int x0, y0, cols, rows;
};

inline TileBox tile_box(const TileGrid& grid, int tile) {
    TileBox b;
    b.x0 = (tile % grid.tiles_x) * kTile;
    b.y0 = (tile / grid.tiles_x) * kTile;
    b.cols = grid.width - b.x0 < kTile ? grid.width - b.x0 : kTile;
    b.rows = grid.height - b.y0 < kTile ? grid.height - b.y0 : kTile;
    return b;
}

// Copies the tile's Gaussians (channels [c0, c0 + nc)) and returns in row_masks[k] the tile
// rows that Gaussian k reaches.
inline void gather_tile(const BlendArgs& a, int tile, const TileBox& box, int c0, int nc,
                        std::vector<TileGaussian>& params, std::vector<uint32_t>& row_masks) {
    const int32_t start = a.tile_offsets[tile];
    const int32_t n = a.tile_offsets[tile + 1] - start;
    params.resize((size_t)n);
    row_masks.resize((size_t)n);
    for (int32_t k = 0; k < n; ++k) {
        const int32_t s = a.tile_entries[start + k];
        const PackedGaussian& g = a.packed[s];
        TileGaussian& p = params[(size_t)k];
        p.mx = g.e.mx;
        p.my = g.e.my;
        p.ha = g.e.ha;
        p.b = g.e.b;
        p.hc = g.e.hc;
        p.log_o = g.log_o;
        p.z = g.z;
        p.opacity = g.opacity;
        const float* col = a.colors + (int64_t)s * a.channels + c0;
        for (int c = 0; c < kMaxChunk; ++c) p.color[c] = c < nc ? col[c] : 0.f;
        row_masks[(size_t)k] = ellipse_row_mask(g.e, box.x0, box.y0, box.cols, box.rows);
    }
}

// exp(ln(opacity) - sigma) over a tile row, before the 0.99 clamp; dx = pixel x - mean x.
inline simd::vfloat row_raw_alpha(const TileGaussian& p, simd::vfloat px, float py, simd::vfloat* dx_out,
                                  float* dy_out) {
    using namespace simd;
    const float dy = py - p.my;
    const vfloat dx = px - splat(p.mx);
    const vfloat e = dx * (splat(p.ha) * dx + splat(p.b * dy)) + splat(p.hc * dy * dy - p.log_o);
    *dx_out = dx;
    *dy_out = dy;
    return fast_exp(splat(0.f) - e);
}

}  // namespace cpu
}  // namespace avatar
