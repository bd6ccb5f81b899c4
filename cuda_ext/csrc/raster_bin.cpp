// Tile binning: depth order of the visible Gaussians, then per-tile lists in that order.
//
// Sorting once by depth and then distributing with a stable counting sort by tile gives every
// tile its list already in depth order, so no per-tile sort is needed (those cost more than the
// whole projection at 40k Gaussians).
#include <math.h>
#include <string.h>

#include <algorithm>
#include <vector>

#include "bounds.h"
#include "raster_cpu.h"

namespace avatar {
namespace cpu {

TileGrid make_tile_grid(int width, int height) {
    TileGrid g;
    g.width = width;
    g.height = height;
    g.tiles_x = (width + kTile - 1) / kTile;
    g.tiles_y = (height + kTile - 1) / kTile;
    return g;
}

int64_t sort_visible_by_depth(int64_t n, const float* depths, const int32_t* radii, int32_t* sorted_ids) {
    // Scratch reused between frames (fresh buffers would be faulted in every call).
    static thread_local std::vector<uint32_t> keys, keys_tmp;
    static thread_local std::vector<int32_t> ids_tmp;
    int64_t count = 0;
    for (int64_t i = 0; i < n; ++i)
        if (radii[2 * i] > 0 || radii[2 * i + 1] > 0) sorted_ids[count++] = (int32_t)i;
    keys.resize((size_t)count);
    keys_tmp.resize((size_t)count);
    ids_tmp.resize((size_t)count);
    // Stable LSD radix sort, four passes of 8 bits (256 buckets keep every scatter stream in L1);
    // ties keep id order. Depths of visible Gaussians are positive, and positive floats order
    // like their bit patterns. All four digit histograms are counted in one sweep.
    constexpr int kBuckets = 256;
    int64_t hist[4][kBuckets] = {{0}};
    for (int64_t k = 0; k < count; ++k) {
        uint32_t key;
        memcpy(&key, depths + sorted_ids[k], sizeof key);
        keys[(size_t)k] = key;
        for (int d = 0; d < 4; ++d) ++hist[d][(key >> (8 * d)) & 255u];
    }
    uint32_t* src_k = keys.data();
    uint32_t* dst_k = keys_tmp.data();
    int32_t* src_i = sorted_ids;
    int32_t* dst_i = ids_tmp.data();
    for (int pass = 0; pass < 4; ++pass) {
        const int shift = 8 * pass;
        int64_t sum = 0;
        for (int b = 0; b < kBuckets; ++b) {
            const int64_t h = hist[pass][b];
            hist[pass][b] = sum;
            sum += h;
        }
        for (int64_t k = 0; k < count; ++k) {
            const int64_t pos = hist[pass][(src_k[k] >> shift) & 255u]++;
            dst_k[pos] = src_k[k];
            dst_i[pos] = src_i[k];
        }
        std::swap(src_k, dst_k);
        std::swap(src_i, dst_i);
    }
    // An even number of passes leaves the result where it started.
    if (src_i != sorted_ids) memcpy(sorted_ids, src_i, count * sizeof(int32_t));
    return count;
}

namespace {

// Calls fn(tile_index) for each tile whose pixel centres the Gaussian's ellipse reaches, in
// row-major tile order. Counting and filling both go through here so they always agree.
template <class Fn>
inline void for_each_tile(const ScreenEllipse& e, const TileGrid& grid, Fn&& fn) {
    float ex, ey;
    ellipse_extents(e, &ex, &ey);
    if (!(e.cutoff > 0.f) || !isfinite(e.mx) || !isfinite(e.my) || !isfinite(ex) || !isfinite(ey)) return;
    // Pixel i has its centre at i + 0.5; clamp in float before converting to stay in int range.
    const float px0 = max_f(ceilf(e.mx - ex - 0.5f), 0.f);
    const float px1 = min_f(floorf(e.mx + ex - 0.5f), (float)(grid.width - 1));
    const float py0 = max_f(ceilf(e.my - ey - 0.5f), 0.f);
    const float py1 = min_f(floorf(e.my + ey - 0.5f), (float)(grid.height - 1));
    if (px0 > px1 || py0 > py1) return;
    const int tx0 = (int)px0 / kTile, tx1 = (int)px1 / kTile;
    const int ty0 = (int)py0 / kTile, ty1 = (int)py1 / kTile;
    if (tx0 == tx1 && ty0 == ty1) {
        // A lone candidate tile skips the exact test: carrying it when the ellipse slips
        // between pixel centres costs less than testing every small Gaussian.
        fn(ty0 * grid.tiles_x + tx0);
        return;
    }
    // The exact test runs on sixteen candidate tiles of a tile row at once.
    using namespace simd;
    const vfloat lanes = lane_index();
    const float right_edge = (float)(grid.width - 1) + 0.5f;
    for (int ty = ty0; ty <= ty1; ++ty) {
        const float ya = ty * kTileSize + 0.5f;
        const float yb = (float)std::min(ty * kTile + kTile - 1, grid.height - 1) + 0.5f;
        for (int tx_base = tx0; tx_base <= tx1; tx_base += kLanes) {
            const vfloat xa = (splat((float)tx_base) + lanes) * splat(kTileSize) + splat(0.5f);
            const vfloat xb = vmin(xa + splat(kTileSize - 1.f), splat(right_edge));
            const int count = std::min(tx1 - tx_base + 1, kLanes);
            uint32_t hits = ellipse_hits_rects(e, xa, xb, ya, yb) & ((1u << count) - 1u);
            for (; hits; hits &= hits - 1) fn(ty * grid.tiles_x + tx_base + __builtin_ctz(hits));
        }
    }
}

}  // namespace

// Work is split into more pieces than threads and handed out dynamically throughout: on a shared
// or virtualised machine one thread often starts late, and an even static split would make the
// other wait for it. The split never depends on the thread count, so neither do the results.
constexpr int kChunks = 32;

void pack_gaussians(int64_t s_count, const int32_t* sorted_ids, const float* means2d, const float* conics,
                    const float* opacities, const float* depths, const float* colors, int channels,
                    PackedGaussian* packed, float* colors_sorted, int nthreads) {
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 512)
    for (int64_t s = 0; s < s_count; ++s) {
        const int32_t g = sorted_ids[s];
        PackedGaussian& p = packed[s];
        p.e = make_screen_ellipse(means2d + 2 * g, conics + 3 * g, opacities[g]);
        p.opacity = opacities[g];
        p.log_o = logf(p.opacity);
        p.z = depths[g];
        for (int c = 0; c < 4; ++c) p.color[c] = c < channels ? colors[(int64_t)g * channels + c] : 0.f;
        for (int c = 0; c < channels; ++c) colors_sorted[s * channels + c] = colors[(int64_t)g * channels + c];
    }
}

namespace {

// One chunk's list of intersected tiles, on its own cache lines: chunks are filled by different
// threads, and vectors sharing a line would bounce it between cores on every push_back.
struct alignas(64) ChunkTiles {
    std::vector<int32_t> tiles;
};

}  // namespace

void find_tile_intersections(int64_t s_count, const PackedGaussian* packed, const TileGrid& grid,
                             int32_t* emit_offsets, std::vector<int32_t>& emit_tiles, int nthreads) {
    // One pass of the (exact, so not free) tile tests: each chunk of Gaussians (contiguous in
    // depth order) collects its tiles, and the chunks are concatenated in order afterwards.
    // Reused between frames. Named through a reference: inside the parallel region the
    // thread_local name would mean each worker's own (empty) copy.
    static thread_local std::vector<ChunkTiles> cached(kChunks);
    std::vector<ChunkTiles>& found = cached;
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1)
    for (int c = 0; c < kChunks; ++c) {
        std::vector<int32_t>& out = found[(size_t)c].tiles;
        out.clear();
        for (int64_t s = s_count * c / kChunks; s < s_count * (c + 1) / kChunks; ++s) {
            const size_t before = out.size();
            for_each_tile(packed[s].e, grid, [&](int tile) { out.push_back(tile); });
            emit_offsets[s + 1] = (int32_t)(out.size() - before);
        }
    }
    emit_offsets[0] = 0;
    for (int64_t s = 0; s < s_count; ++s) emit_offsets[s + 1] += emit_offsets[s];
    emit_tiles.resize((size_t)emit_offsets[s_count]);
    size_t start[kChunks + 1] = {0};
    for (int c = 0; c < kChunks; ++c) start[c + 1] = start[c] + found[(size_t)c].tiles.size();
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1)
    for (int c = 0; c < kChunks; ++c) {
        const std::vector<int32_t>& tiles = found[(size_t)c].tiles;
        if (!tiles.empty()) memcpy(emit_tiles.data() + start[c], tiles.data(), tiles.size() * sizeof(int32_t));
    }
}

void sort_intersections_by_tile(int64_t s_count, const int32_t* emit_offsets, const int32_t* emit_tiles,
                                const TileGrid& grid, int32_t* tile_offsets, int32_t* tile_entries,
                                int32_t* tile_emit, int nthreads) {
    const int64_t m = emit_offsets[s_count];
    const int n_tiles = grid.n_tiles();
    // Stable counting sort by tile: each chunk of intersections is histogrammed and then
    // scattered at offsets ordered (tile, chunk), so every tile keeps depth order.
    constexpr int kSortChunks = 16;
    static thread_local std::vector<int64_t> cached;
    std::vector<int64_t>& cursor = cached;
    cursor.assign((size_t)kSortChunks * n_tiles, 0);
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1)
    for (int c = 0; c < kSortChunks; ++c) {
        int64_t* hist = cursor.data() + (size_t)c * n_tiles;
        for (int64_t k = m * c / kSortChunks; k < m * (c + 1) / kSortChunks; ++k) ++hist[emit_tiles[k]];
    }
    int64_t running = 0;
    for (int t = 0; t < n_tiles; ++t) {
        tile_offsets[t] = (int32_t)running;
        for (int c = 0; c < kSortChunks; ++c) {
            int64_t& slot = cursor[(size_t)c * n_tiles + t];
            const int64_t h = slot;
            slot = running;
            running += h;
        }
    }
    tile_offsets[n_tiles] = (int32_t)running;
    // The depth rank of intersection k is the s with emit_offsets[s] <= k < emit_offsets[s + 1];
    // walking each chunk's ranks alongside its intersections avoids storing it.
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1)
    for (int c = 0; c < kSortChunks; ++c) {
        int64_t* pos = cursor.data() + (size_t)c * n_tiles;
        const int64_t k0 = m * c / kSortChunks, k1 = m * (c + 1) / kSortChunks;
        int64_t s = std::upper_bound(emit_offsets, emit_offsets + s_count + 1, (int32_t)k0) - emit_offsets - 1;
        for (int64_t k = k0; k < k1; ++k) {
            while (emit_offsets[s + 1] <= k) ++s;
            const int64_t p = pos[emit_tiles[k]]++;
            tile_entries[p] = (int32_t)s;
            tile_emit[p] = (int32_t)k;
        }
    }
}

}  // namespace cpu
}  // namespace avatar
