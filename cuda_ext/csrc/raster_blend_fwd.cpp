// Forward blending, one tile per task and one 2 x 8-pixel block per 16-lane vector (blend.h).
//
// Each block walks only the Gaussians whose ellipse reaches it (per-block lists built from the
// block masks), so its transmittance and colour sums stay in registers for the whole walk and a
// block stops as soon as all its pixels are saturated.
#include <string.h>

#include <algorithm>
#include <vector>

#include "blend.h"

namespace avatar {
namespace cpu {

namespace {

struct ForwardScratch {
    std::vector<TileGaussian> params;
    std::vector<uint32_t> block_masks;
    std::vector<int32_t> block_lists;  // [kBlocks, n]
};

struct ForwardOutputs {
    float* image;
    float* alpha;
    float* depth;
    float* final_T;
    int32_t* last;
};

// One block's pixels during the front-to-back walk.
template <int NC>
struct BlockState {
    simd::vfloat T;        // transmittance, 0 once the pixel has stopped
    simd::vfloat T_stop;   // transmittance the pixel stopped with (0 while it runs)
    simd::vfloat acc[NC];
    simd::vfloat dep;
    simd::vint last;

    explicit BlockState(simd::vmask live) {
        using namespace simd;
        T = select(live, splat(1.f), splat(0.f));
        T_stop = splat(0.f);
        for (int c = 0; c < NC; ++c) acc[c] = splat(0.f);
        dep = splat(0.f);
        last = splati(-1);
    }

    // Blends Gaussian k into the block. A stopped pixel has T = 0, so every later Gaussian adds
    // nothing to it and "stops" it again; the only loop-carried chain is T -> T (1 - alpha) -> T.
    AVATAR_SIMD_INLINE void step(const TileGaussian& p, simd::vfloat px, simd::vfloat py, int32_t k) {
        using namespace simd;
        vfloat dx, dy;
        vfloat alpha = vmin(block_raw_alpha(p, px, py, &dx, &dy), splat(kAlphaMax));
        alpha = select(ge(alpha, splat(kAlphaMin)), alpha, splat(0.f));
        const vfloat T_next = T - alpha * T;
        const vmask stop = lt(T_next, splat(kTransmittanceMin));
        const vmask used = mask_andnot(gt(alpha, splat(0.f)), stop);
        const vfloat w = select(used, alpha * T, splat(0.f));
        for (int c = 0; c < NC; ++c) acc[c] += w * splat(p.color[c]);
        dep += w * splat(p.z);
        last = select_i(used, splati(k), last);
        T_stop = add_where(T_stop, stop, T);
        T = select(stop, splat(0.f), T_next);
    }
};

template <int NC>
void write_block(const BlendArgs& a, const TileBox& box, int block, int c0, bool first_chunk, const float* bg,
                 const BlockState<NC>& s, const ForwardOutputs& out) {
    using namespace simd;
    alignas(64) float T_out[kLanes], acc_out[NC][kLanes], dep_out[kLanes];
    alignas(64) int32_t last_out[kLanes];
    const vfloat T_final = s.T + s.T_stop;
    store(T_out, T_final);
    // Colours over the background, computed as vectors before the per-pixel interleave.
    for (int c = 0; c < NC; ++c) store(acc_out[c], s.acc[c] + T_final * splat(bg[c]));
    // Expected depth: the weighted depth sum over alpha (0 where nothing was blended, since
    // alpha is then 0 and so is the sum; a blended pixel has alpha >= 1/255).
    store(dep_out, s.dep / vmax(splat(1.f) - T_final, splat(1e-10f)));
    store_i(last_out, s.last);
    alignas(64) float alpha_out[kLanes];
    store(alpha_out, splat(1.f) - T_final);
    // Lanes 0-7 are the block's upper row, 8-15 its lower one: one contiguous run per row.
    const int col0 = 8 * (block & 1), row0 = 2 * (block >> 1);
    const int width = box.cols - col0 < 8 ? box.cols - col0 : 8;
    for (int half = 0; half < 2; ++half) {
        const int r = row0 + half;
        if (r >= box.rows || width <= 0) continue;
        const int64_t pix0 = (int64_t)(box.y0 + r) * a.grid.width + box.x0 + col0;
        const int l0 = 8 * half;
        float* img = out.image + pix0 * a.channels + c0;
        for (int i = 0; i < width; ++i)
            for (int c = 0; c < NC; ++c) img[i * a.channels + c] = acc_out[c][l0 + i];
        if (first_chunk) {
            const size_t bytes = (size_t)width * sizeof(float);
            memcpy(out.alpha + pix0, alpha_out + l0, bytes);
            memcpy(out.depth + pix0, dep_out + l0, bytes);
            if (out.final_T) memcpy(out.final_T + pix0, T_out + l0, bytes);
            if (out.last) memcpy(out.last + pix0, last_out + l0, bytes);
        }
    }
}

template <int NC>
void blend_tile_forward(const BlendArgs& a, int tile, int c0, bool first_chunk, ForwardScratch& s,
                        const ForwardOutputs& out) {
    using namespace simd;
    const TileBox box = tile_box(a.grid, tile);
    gather_tile(a, tile, box, c0, NC, s.params, s.block_masks);
    const int32_t n = (int32_t)s.params.size();
    s.block_lists.resize((size_t)kBlocks * (size_t)std::max(n, 1));
    int32_t count[kBlocks] = {0};
    for (int32_t k = 0; k < n; ++k)
        for (uint32_t m = s.block_masks[(size_t)k]; m; m &= m - 1) {
            const int b = __builtin_ctz(m);
            s.block_lists[(size_t)b * n + count[b]++] = k;
        }

    float bg[kMaxChunk] = {0.f, 0.f, 0.f, 0.f};
    if (a.background)
        for (int c = 0; c < NC; ++c) bg[c] = a.background[c0 + c];
    const BlockLanes lanes(box);
    for (int b = 0; b < kBlocks; ++b) {
        if (!bits(lanes.live[b])) continue;  // entirely outside the image
        BlockState<NC> state(lanes.live[b]);
        const vfloat px = lanes.px[b & 1], py = lanes.py[b >> 1];
        const int32_t* list = s.block_lists.data() + (size_t)b * n;
        for (int32_t j = 0; j < count[b]; ++j) {
            const int32_t k = list[j];
            state.step(s.params[(size_t)k], px, py, k);
            if (!bits(gt(state.T, splat(0.f)))) break;
        }
        write_block(a, box, b, c0, first_chunk, bg, state, out);
    }
}

template <int NC>
void blend_chunk_forward(const BlendArgs& a, int c0, const ForwardOutputs& out, int nthreads) {
    const int n_tiles = a.grid.n_tiles();
#pragma omp parallel num_threads(nthreads)
    {
        // Per thread and kept between frames (OpenMP reuses its threads): no allocation per call.
        static thread_local ForwardScratch scratch;
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
