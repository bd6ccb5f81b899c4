// What the forward and backward blend loops share: the per-tile copy of each Gaussian's
// parameters, the layout of a tile in 16-lane blocks, and the alpha of one Gaussian over one
// block. Both passes call the same inline code, so the backward pass sees exactly the alphas the
// forward pass blended.
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
    // The same quadratic scaled by log2(e), so alpha = 2^-(sigma2) needs no extra multiply:
    // sigma2 = ha2 dx^2 + b2 dx dy + hc2 dy^2 - log2(opacity).
    float ha2, b2, hc2, log2_o;
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

// A tile is blended as sixteen blocks of 2 rows x 8 columns, one 16-lane vector each: lane l of
// block b is the pixel at tile row 2 (b >> 1) + (l >> 3), column 8 (b & 1) + (l & 7). A Gaussian
// is evaluated only on the blocks its ellipse reaches; its footprint on a row is typically about
// seven pixels, so whole 16-pixel rows would leave most lanes idle.
constexpr int kBlocks = 16;

inline int block_row(int block, int lane) { return 2 * (block >> 1) + (lane >> 3); }
inline int block_col(int block, int lane) { return 8 * (block & 1) + (lane & 7); }

// Pixel-centre coordinates of every lane of every block of a tile, and which lanes are inside
// the image.
struct BlockLanes {
    simd::vfloat px[2];   // by column half
    simd::vfloat py[8];   // by row pair
    simd::vmask live[kBlocks];

    explicit BlockLanes(const TileBox& box) {
        using namespace simd;
        alignas(64) float col[kLanes], row[kLanes];
        for (int l = 0; l < kLanes; ++l) {
            col[l] = (float)(l & 7);
            row[l] = (float)(l >> 3);
        }
        const vfloat lane_col = load(col), lane_row = load(row);
        for (int h = 0; h < 2; ++h) px[h] = splat((float)(box.x0 + 8 * h) + 0.5f) + lane_col;
        for (int p = 0; p < 8; ++p) py[p] = splat((float)(box.y0 + 2 * p) + 0.5f) + lane_row;
        for (int b = 0; b < kBlocks; ++b) {
            const vfloat cols = splat((float)(box.cols - 8 * (b & 1)));
            const vfloat rows = splat((float)(box.rows - 2 * (b >> 1)));
            live[b] = lt(lane_col, cols) & lt(lane_row, rows);
        }
    }
};

// Copies the tile's first `limit` Gaussians (all when negative; channels [c0, c0 + nc)) and
// returns in block_masks[k] the blocks that Gaussian k reaches.
inline void gather_tile(const BlendArgs& a, int tile, const TileBox& box, int c0, int nc,
                        std::vector<TileGaussian>& params, std::vector<uint32_t>& block_masks,
                        int32_t limit = -1) {
    const int32_t start = a.tile_offsets[tile];
    int32_t n = a.tile_offsets[tile + 1] - start;
    if (limit >= 0 && limit < n) n = limit;
    params.resize((size_t)n);
    block_masks.resize((size_t)n);
    // Tiles read their Gaussians' records in depth order, scattered over the whole array:
    // prefetching a few entries ahead overlaps those cache misses.
    constexpr int kAhead = 8;
    for (int32_t k = 0; k < n && k < kAhead; ++k) __builtin_prefetch(a.packed + a.tile_entries[start + k]);
    for (int32_t k = 0; k < n; ++k) {
        if (k + kAhead < n) __builtin_prefetch(a.packed + a.tile_entries[start + k + kAhead]);
        const int32_t s = a.tile_entries[start + k];
        const PackedGaussian& g = a.packed[s];
        TileGaussian& p = params[(size_t)k];
        p.mx = g.e.mx;
        p.my = g.e.my;
        p.ha = g.e.ha;
        p.b = g.e.b;
        p.hc = g.e.hc;
        p.log_o = g.log_o;
        constexpr float kLog2e = 1.44269504089f;
        p.ha2 = g.e.ha * kLog2e;
        p.b2 = g.e.b * kLog2e;
        p.hc2 = g.e.hc * kLog2e;
        p.log2_o = g.log_o * kLog2e;
        p.z = g.z;
        p.opacity = g.opacity;
        const float* col = c0 == 0 ? g.color : a.colors + (int64_t)s * a.channels + c0;
        for (int c = 0; c < kMaxChunk; ++c) p.color[c] = c < nc ? col[c] : 0.f;
        block_masks[(size_t)k] = ellipse_block_mask(g.e, box.x0, box.y0, box.cols, box.rows);
    }
}

// exp(ln(opacity) - sigma) over a block, before the 0.99 clamp; dx, dy = pixel - mean.
AVATAR_SIMD_INLINE simd::vfloat block_raw_alpha(const TileGaussian& p, simd::vfloat px, simd::vfloat py, simd::vfloat* dx_out,
                                    simd::vfloat* dy_out) {
    using namespace simd;
    const vfloat dx = px - splat(p.mx);
    const vfloat dy = py - splat(p.my);
    const vfloat e2 = dx * (splat(p.ha2) * dx + splat(p.b2) * dy) + (splat(p.hc2) * dy * dy - splat(p.log2_o));
    *dx_out = dx;
    *dy_out = dy;
    return fast_exp2_nonpositive(splat(0.f) - e2);
}

}  // namespace cpu
}  // namespace avatar
