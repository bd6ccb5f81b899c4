// Forward blending, one tile per task and one tile row per 16-lane vector.
//
// Each row walks only the Gaussians whose ellipse crosses it (per-row lists built from the row
// masks), so the row's transmittance and colour sums stay in registers for the whole walk and a
// row stops as soon as all its pixels are saturated.
#include <string.h>

#include <algorithm>
#include <vector>

#include "blend.h"

namespace avatar {
namespace cpu {

namespace {

struct ForwardScratch {
    std::vector<TileGaussian> params;
    std::vector<uint32_t> row_masks;
    std::vector<int32_t> row_lists;  // [kTile, n]
};

struct ForwardOutputs {
    float* image;
    float* alpha;
    float* depth;
    float* final_T;
    int32_t* last;
};

template <int NC>
void blend_tile_forward(const BlendArgs& a, int tile, int c0, bool first_chunk, ForwardScratch& s,
                        const ForwardOutputs& out) {
    using namespace simd;
    const TileBox box = tile_box(a.grid, tile);
    gather_tile(a, tile, box, c0, NC, s.params, s.row_masks);
    const int32_t n = (int32_t)s.params.size();
    s.row_lists.resize((size_t)kTile * (size_t)std::max(n, 1));
    int32_t row_count[kTile] = {0};
    for (int32_t k = 0; k < n; ++k) {
        for (uint32_t m = s.row_masks[(size_t)k]; m; m &= m - 1) {
            const int r = __builtin_ctz(m);
            s.row_lists[(size_t)r * n + row_count[r]++] = k;
        }
    }

    float bg[kMaxChunk] = {0.f, 0.f, 0.f, 0.f};
    if (a.background)
        for (int c = 0; c < NC; ++c) bg[c] = a.background[c0 + c];
    const vfloat lanes = lane_index();
    const vfloat px = splat((float)box.x0 + 0.5f) + lanes;
    // Lanes past the image's right edge start saturated (negative T marks a finished pixel).
    const vfloat T_start = select(lanes < splat((float)box.cols), splat(1.f), splat(-1.f));

    for (int r = 0; r < box.rows; ++r) {
        const float py = (float)(box.y0 + r) + 0.5f;
        vfloat T = T_start;
        vfloat acc[NC];
        for (int c = 0; c < NC; ++c) acc[c] = splat(0.f);
        vfloat dep = splat(0.f);
        vint last = splati(-1);
        const int32_t* list = s.row_lists.data() + (size_t)r * n;
        for (int32_t j = 0; j < row_count[r]; ++j) {
            const int32_t k = list[j];
            const TileGaussian& p = s.params[(size_t)k];
            vfloat dx;
            float dy;
            const vfloat alpha = vmin(row_raw_alpha(p, px, py, &dx, &dy), splat(kAlphaMax));
            const vint valid = (alpha >= splat(kAlphaMin)) & (T > splat(0.f));
            if (!movemask(valid)) continue;
            const vfloat T_next = T * (splat(1.f) - alpha);
            const vint stop = valid & (T_next < splat(kTransmittanceMin));
            const vint use = valid & ~stop;
            const vfloat w = select(use, alpha * T, splat(0.f));
            for (int c = 0; c < NC; ++c) acc[c] += w * splat(p.color[c]);
            dep += w * splat(p.z);
            last = selecti(use, splati(k), last);
            // A stopping pixel keeps its transmittance, negated to mark it finished.
            T = select(use, T_next, select(stop, splat(0.f) - T, T));
            if (movemask(stop) && !movemask(T > splat(0.f))) break;
        }

        alignas(64) float T_out[kLanes], acc_out[NC][kLanes], dep_out[kLanes];
        alignas(64) int32_t last_out[kLanes];
        store(T_out, T);
        for (int c = 0; c < NC; ++c) store(acc_out[c], acc[c]);
        store(dep_out, dep);
        storei(last_out, last);
        const int64_t row_base = (int64_t)(box.y0 + r) * a.grid.width + box.x0;
        for (int i = 0; i < box.cols; ++i) {
            const int64_t pix = row_base + i;
            const float Tf = fabsf(T_out[i]);
            for (int c = 0; c < NC; ++c) out.image[pix * a.channels + c0 + c] = acc_out[c][i] + Tf * bg[c];
            if (first_chunk) {
                out.alpha[pix] = 1.f - Tf;
                out.depth[pix] = dep_out[i];
                out.final_T[pix] = Tf;
                out.last[pix] = last_out[i];
            }
        }
    }
}

template <int NC>
void blend_chunk_forward(const BlendArgs& a, int c0, const ForwardOutputs& out, int nthreads) {
    const int n_tiles = a.grid.n_tiles();
#pragma omp parallel num_threads(nthreads)
    {
        ForwardScratch scratch;
#pragma omp for schedule(dynamic, 1)
        for (int tile = 0; tile < n_tiles; ++tile) blend_tile_forward<NC>(a, tile, c0, c0 == 0, scratch, out);
    }
}

}  // namespace

void blend_forward(const BlendArgs& args, float* image, float* alpha, float* depth, float* final_T,
                   int32_t* last, int nthreads) {
    const ForwardOutputs out{image, alpha, depth, final_T, last};
    // Channels go in chunks of up to four: every chunk sees the same alphas, so the chunks agree.
    for (int c0 = 0; c0 < args.channels; c0 += kMaxChunk) {
        switch (std::min(args.channels - c0, kMaxChunk)) {
            case 1: blend_chunk_forward<1>(args, c0, out, nthreads); break;
            case 2: blend_chunk_forward<2>(args, c0, out, nthreads); break;
            case 3: blend_chunk_forward<3>(args, c0, out, nthreads); break;
            default: blend_chunk_forward<4>(args, c0, out, nthreads); break;
        }
    }
}

}  // namespace cpu
}  // namespace avatar
