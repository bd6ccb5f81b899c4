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
    std::vector<int32_t> pair_lists;  // [kTile / 2, n]
};

struct ForwardOutputs {
    float* image;
    float* alpha;
    float* depth;
    float* final_T;
    int32_t* last;
};

// One tile row during the front-to-back walk.
template <int NC>
struct RowState {
    simd::vfloat T;        // transmittance, 0 once the pixel has stopped
    simd::vfloat T_stop;   // transmittance the pixel stopped with (0 while it runs)
    simd::vfloat acc[NC];
    simd::vfloat dep;
    simd::vint last;

    void start(simd::vmask live) {
        using namespace simd;
        T = select(live, splat(1.f), splat(0.f));
        T_stop = splat(0.f);
        for (int c = 0; c < NC; ++c) acc[c] = splat(0.f);
        dep = splat(0.f);
        last = splati(-1);
    }

    // Blends Gaussian k into the row. A stopped pixel has T = 0, so every later Gaussian adds
    // nothing to it and "stops" it again; the only loop-carried chain is T -> T (1 - alpha) -> T.
    inline void step(const TileGaussian& p, simd::vfloat px, float py, int32_t k) {
        using namespace simd;
        vfloat dx;
        float dy;
        vfloat alpha = vmin(row_raw_alpha(p, px, py, &dx, &dy), splat(kAlphaMax));
        alpha = select(ge(alpha, splat(kAlphaMin)), alpha, splat(0.f));
        const vfloat T_next = T * (splat(1.f) - alpha);
        const vmask stop = lt(T_next, splat(kTransmittanceMin));
        const vmask used = mask_andnot(gt(alpha, splat(0.f)), stop);
        const vfloat w = select(used, alpha * T, splat(0.f));
        for (int c = 0; c < NC; ++c) acc[c] += w * splat(p.color[c]);
        dep += w * splat(p.z);
        last = select_i(used, splati(k), last);
        T_stop += select(stop, T, splat(0.f));
        T = select(stop, splat(0.f), T_next);
    }
};

template <int NC>
void write_row(const BlendArgs& a, const TileBox& box, int r, int c0, bool first_chunk, const float* bg,
               const RowState<NC>& s, const ForwardOutputs& out) {
    using namespace simd;
    alignas(64) float T_out[kLanes], acc_out[NC][kLanes], dep_out[kLanes];
    alignas(64) int32_t last_out[kLanes];
    store(T_out, s.T + s.T_stop);
    for (int c = 0; c < NC; ++c) store(acc_out[c], s.acc[c]);
    store(dep_out, s.dep);
    store_i(last_out, s.last);
    const int64_t row_base = (int64_t)(box.y0 + r) * a.grid.width + box.x0;
    for (int i = 0; i < box.cols; ++i) {
        const int64_t pix = row_base + i;
        const float Tf = T_out[i];
        for (int c = 0; c < NC; ++c) out.image[pix * a.channels + c0 + c] = acc_out[c][i] + Tf * bg[c];
        if (first_chunk) {
            out.alpha[pix] = 1.f - Tf;
            out.depth[pix] = dep_out[i];
            out.final_T[pix] = Tf;
            out.last[pix] = last_out[i];
        }
    }
}

template <int NC>
void blend_tile_forward(const BlendArgs& a, int tile, int c0, bool first_chunk, ForwardScratch& s,
                        const ForwardOutputs& out) {
    using namespace simd;
    const TileBox box = tile_box(a.grid, tile);
    gather_tile(a, tile, box, c0, NC, s.params, s.row_masks);
    const int32_t n = (int32_t)s.params.size();

    // Rows go in pairs: two independent transmittance chains per Gaussian keep the vector units
    // busy while each chain waits on its multiply, and the Gaussian's parameters are loaded and
    // broadcast once for both. A Gaussian joins a pair's list when it reaches either row.
    constexpr int kPairs = kTile / 2;
    s.pair_lists.resize((size_t)kPairs * (size_t)std::max(n, 1));
    int32_t pair_count[kPairs] = {0};
    for (int32_t k = 0; k < n; ++k) {
        const uint32_t m = s.row_masks[(size_t)k];
        for (uint32_t pm = (m | (m >> 1)) & 0x5555u; pm; pm &= pm - 1) {
            const int pair = __builtin_ctz(pm) >> 1;
            s.pair_lists[(size_t)pair * n + pair_count[pair]++] = k;
        }
    }

    float bg[kMaxChunk] = {0.f, 0.f, 0.f, 0.f};
    if (a.background)
        for (int c = 0; c < NC; ++c) bg[c] = a.background[c0 + c];
    const vfloat lanes = lane_index();
    const vfloat px = splat((float)box.x0 + 0.5f) + lanes;
    // Lanes past the image's right edge (and rows past its bottom) start stopped.
    const vmask live = lt(lanes, splat((float)box.cols));
    const vmask none = mask_of(false);

    for (int pair = 0; pair * 2 < box.rows; ++pair) {
        const int r0 = 2 * pair, r1 = 2 * pair + 1;
        const float py0 = (float)(box.y0 + r0) + 0.5f, py1 = py0 + 1.f;
        RowState<NC> s0, s1;
        s0.start(live);
        s1.start(r1 < box.rows ? live : none);
        const int32_t* list = s.pair_lists.data() + (size_t)pair * n;
        for (int32_t j = 0; j < pair_count[pair]; ++j) {
            const int32_t k = list[j];
            const TileGaussian& p = s.params[(size_t)k];
            s0.step(p, px, py0, k);
            s1.step(p, px, py1, k);
            if (!bits(gt(s0.T, splat(0.f)) | gt(s1.T, splat(0.f)))) break;
        }
        write_row(a, box, r0, c0, first_chunk, bg, s0, out);
        if (r1 < box.rows) write_row(a, box, r1, c0, first_chunk, bg, s1, out);
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
