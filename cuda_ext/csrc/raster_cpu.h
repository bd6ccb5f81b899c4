// CPU rasteriser entry points over plain arrays (no torch types, so these files compile fast).
//
// The pipeline: project every Gaussian, order the visible ones by depth, list for each 16x16
// tile the Gaussians whose ellipse reaches it (in depth order), blend each tile front to back,
// and for the gradient replay each tile back to front.
#pragma once

#include <stdint.h>

#include <vector>

#include "bounds.h"
#include "project.h"

namespace avatar {
namespace cpu {

// ---- projection ----------------------------------------------------------------------------
void project_forward(int64_t n, const float* means, const float* quats, const float* log_scales,
                     const float* opacity_logits, const Camera& cam, float* means2d, float* conics,
                     float* depths, float* opacities, int32_t* radii, int nthreads);

// v_viewmat is the [4, 4] row-major gradient of the camera-from-world matrix (last row stays 0),
// v_K the [3, 3] gradient of the intrinsics (fx, fy, cx, cy entries).
void project_backward(int64_t n, const float* means, const float* quats, const float* log_scales,
                      const float* opacity_logits, const Camera& cam, const int32_t* radii,
                      const float* v_means2d, const float* v_conics, const float* v_depths,
                      const float* v_opacities, float* v_means, float* v_quats, float* v_log_scales,
                      float* v_opacity_logits, float* v_viewmat, float* v_K, int nthreads);

// ---- binning ---------------------------------------------------------------------------------
struct TileGrid {
    int width, height, tiles_x, tiles_y;
    int n_tiles() const { return tiles_x * tiles_y; }
};

TileGrid make_tile_grid(int width, int height);

// One visible Gaussian as binning and blending read it: everything in one cache line, stored in
// depth order, so the tiles' scattered reads touch one line per Gaussian instead of six arrays.
struct alignas(64) PackedGaussian {
    ScreenEllipse e;   // centre, conic, cutoff
    float log_o;       // ln(opacity): alpha = exp(ln(opacity) - sigma)
    float z;           // depth
    float opacity;
    float color[4];    // the first four colour channels (the rest stay in colors_sorted)
};

// Writes the ids of visible Gaussians (radius > 0) nearest first, ties by id; returns how many.
int64_t sort_visible_by_depth(int64_t n, const float* depths, const int32_t* radii, int32_t* sorted_ids);

// packed [S] and colors_sorted [S, channels] of the sorted Gaussians.
void pack_gaussians(int64_t s_count, const int32_t* sorted_ids, const float* means2d, const float* conics,
                    const float* opacities, const float* depths, const float* colors, int channels,
                    PackedGaussian* packed, float* colors_sorted, int nthreads);

// The tiles each Gaussian's ellipse reaches: emit_offsets [S + 1] (emit_offsets[s] = first
// intersection of the s-th Gaussian in depth order, [S] = total) and emit_tiles [total].
void find_tile_intersections(int64_t s_count, const PackedGaussian* packed, const TileGrid& grid,
                             int32_t* emit_offsets, std::vector<int32_t>& emit_tiles, int nthreads);

// Tile lists: the Gaussians of tile t are tile_entries[tile_offsets[t] : tile_offsets[t + 1]]
// (depth ranks s, nearest first); tile_emit holds each entry's intersection index in depth-major
// order, where the backward pass leaves that intersection's gradient.
void sort_intersections_by_tile(int64_t s_count, const int32_t* emit_offsets, const int32_t* emit_tiles,
                                const TileGrid& grid, int32_t* tile_offsets, int32_t* tile_entries,
                                int32_t* tile_emit, int nthreads);

// ---- blending --------------------------------------------------------------------------------
struct BlendArgs {
    TileGrid grid;
    const PackedGaussian* packed;  // [S] in depth order
    const float* colors;           // [S, channels] in depth order
    int channels;
    const float* background;       // [channels] or null for black
    const int32_t* tile_offsets;
    const int32_t* tile_entries;
    const int32_t* tile_emit;
};

// Per-intersection gradient record: d mean2d (2), d conic (3), d opacity, d depth, d colour (C).
constexpr int kIsectGeomGrads = 7;

// image [H, W, C], alpha [H, W], depth [H, W] (expected depth: sum of weight x depth over
// alpha, 0 where alpha is 0), final_T [H, W] and last [H, W] (position in its tile's list of the
// last Gaussian blended into the pixel, -1 for none) feed the backward pass; those two may be
// null when no backward pass will follow.
void blend_forward(const BlendArgs& args, float* image, float* alpha, float* depth, float* final_T,
                   int32_t* last, int nthreads);

// depth is the forward's expected depth; isect_grads [M, 7 + C] must be zeroed. v_alpha and
// v_depth may be null (zero).
void blend_backward(const BlendArgs& args, const float* final_T, const int32_t* last, const float* depth,
                    const float* v_image, const float* v_alpha, const float* v_depth, float* isect_grads,
                    int nthreads);

// Sums the intersection records of each Gaussian into per-Gaussian gradients (zeroed by caller).
void reduce_isect_grads(int64_t s_count, const int32_t* sorted_ids, const int32_t* emit_offsets,
                        const float* isect_grads, int channels, float* v_means2d, float* v_conics,
                        float* v_opacities, float* v_depths, float* v_colors, int nthreads);

}  // namespace cpu
}  // namespace avatar
