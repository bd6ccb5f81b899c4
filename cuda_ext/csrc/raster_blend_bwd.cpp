// Backward blending: each tile replays its Gaussians from the back, recovering every pixel's
// transmittance from the final one (T_i = T_{i+1} / (1 - alpha_i)).
//
// The loop is Gaussian-major so that one Gaussian's gradient sums stay in vector registers over
// all the rows it covers and are reduced once per tile. Per pixel it carries the transmittance
// and G, the gradient-weighted colour of everything behind (sum over channels of
// v_image x colour behind, background included, plus v_depth x depth behind), which is all that
// d loss / d alpha_i = T_i (c_i . v - G_i) + T_final / (1 - alpha_i) v_alpha needs.
#include <string.h>

#include <algorithm>
#include <vector>

#include "blend.h"

namespace avatar {
namespace cpu {

namespace {

struct BackwardScratch {
    std::vector<TileGaussian> params;
    std::vector<uint32_t> block_masks;
};

struct BackwardInputs {
    const float* final_T;
    const int32_t* last;
    const float* depth;  // the forward's expected depth
    const float* v_image;
    const float* v_alpha;
    const float* v_depth;
    float* isect_grads;
};

template <int NC>
void blend_tile_backward(const BlendArgs& a, int tile, int c0, bool first_chunk, BackwardScratch& s,
                         const BackwardInputs& in) {
    using namespace simd;
    const int32_t start = a.tile_offsets[tile];
    if (a.tile_offsets[tile + 1] == start) return;
    const TileBox box = tile_box(a.grid, tile);

    // Per-pixel state of the tile in block layout (blend.h): [block][lane].
    alignas(64) float T[kBlocks][kLanes], G[kBlocks][kLanes], vc[NC][kBlocks][kLanes];
    alignas(64) float vd[kBlocks][kLanes], tva[kBlocks][kLanes];
    alignas(64) int32_t last[kBlocks][kLanes];
    int32_t block_last[kBlocks];
    int32_t k_max = -1;
    float bg[kMaxChunk] = {0.f, 0.f, 0.f, 0.f};
    if (a.background)
        for (int c = 0; c < NC; ++c) bg[c] = a.background[c0 + c];
    for (int b = 0; b < kBlocks; ++b) {
        block_last[b] = -1;
        for (int l = 0; l < kLanes; ++l) {
            T[b][l] = 1.f;
            G[b][l] = vd[b][l] = tva[b][l] = 0.f;
            for (int c = 0; c < NC; ++c) vc[c][b][l] = 0.f;
            last[b][l] = -1;
            const int r = block_row(b, l), col = block_col(b, l);
            if (r >= box.rows || col >= box.cols) continue;
            const int64_t pix = (int64_t)(box.y0 + r) * a.grid.width + box.x0 + col;
            const float Tf = in.final_T[pix];
            T[b][l] = Tf;
            last[b][l] = in.last[pix];
            float g = 0.f;
            for (int c = 0; c < NC; ++c) {
                vc[c][b][l] = in.v_image[pix * a.channels + c0 + c];
                g += bg[c] * vc[c][b][l];
            }
            G[b][l] = g;
            if (first_chunk) {
                // The output is E = D / A (expected depth, A = 1 - T_final): the walk needs the
                // gradient of the depth sum D, v_D = v_E / A, and of A, v_A - v_E E / A.
                const float A = max_f(1.f - Tf, 1e-10f);
                const float v_E = in.v_depth ? in.v_depth[pix] : 0.f;
                vd[b][l] = v_E / A;
                tva[b][l] = Tf * ((in.v_alpha ? in.v_alpha[pix] : 0.f) - v_E * in.depth[pix] / A);
            }
            block_last[b] = std::max(block_last[b], last[b][l]);
        }
        k_max = std::max(k_max, block_last[b]);
    }
    if (k_max < 0) return;
    // Gaussians behind every pixel's last contribution play no part in the gradient.
    gather_tile(a, tile, box, c0, NC, s.params, s.block_masks, k_max + 1);

    const BlockLanes lanes(box);
    const int stride = kIsectGeomGrads + a.channels;
    for (int32_t k = k_max; k >= 0; --k) {
        const TileGaussian& p = s.params[(size_t)k];
        vfloat s_dx2 = splat(0.f), s_dxdy = splat(0.f), s_dy2 = splat(0.f), s_dx = splat(0.f), s_dy = splat(0.f);
        vfloat s_logo = splat(0.f), s_z = splat(0.f), s_col[NC];
        for (int c = 0; c < NC; ++c) s_col[c] = splat(0.f);
        bool touched = false;
        for (uint32_t m = s.block_masks[(size_t)k]; m; m &= m - 1) {
            const int b = __builtin_ctz(m);
            if (block_last[b] < k) continue;
            vfloat dx, dy;
            const vfloat raw = block_raw_alpha(p, lanes.px[b & 1], lanes.py[b >> 1], &dx, &dy);
            const vfloat alpha = vmin(raw, splat(kAlphaMax));
            const vmask used = ge(alpha, splat(kAlphaMin)) & le_i(splati(k), load_i(last[b]));
            if (!bits(used)) continue;
            touched = true;
            const vfloat T_after = load(T[b]);
            const vfloat G_after = load(G[b]);
            const vfloat inv_one_minus = reciprocal(splat(1.f) - alpha);
            const vfloat T_here = T_after * inv_one_minus;
            const vfloat w = select(used, alpha * T_here, splat(0.f));
            const vfloat v_depth = load(vd[b]);
            vfloat cv = splat(p.z) * v_depth;
            for (int c = 0; c < NC; ++c) {
                const vfloat v = load(vc[c][b]);
                cv += splat(p.color[c]) * v;
                s_col[c] += w * v;
            }
            s_z += w * v_depth;
            const vfloat cv_minus_G = cv - G_after;
            const vfloat v_alpha = T_here * cv_minus_G + load(tva[b]) * inv_one_minus;
            // Clamped alphas carry no gradient to the Gaussian's shape or opacity.
            const vfloat a_v = select(used & lt(raw, splat(kAlphaMax)), alpha * v_alpha, splat(0.f));
            s_logo += a_v;
            // d sigma = -(alpha v_alpha); the sums below are its moments over dx, dy.
            const vfloat a_dx = a_v * dx, a_dy = a_v * dy;
            s_dx += a_dx;
            s_dy += a_dy;
            s_dx2 += a_dx * dx;
            s_dxdy += a_dx * dy;
            s_dy2 += a_dy * dy;
            // Step both back past this Gaussian: G_here = alpha cv + (1 - alpha) G_after.
            store_where(T[b], used, T_here);
            store_where(G[b], used, G_after + alpha * cv_minus_G);
        }
        if (!touched) continue;
        // v_sigma = -alpha v_alpha, and sigma = 0.5 a dx^2 + b dx dy + 0.5 c dy^2, dx = px - mx.
        const float m_dx2 = -hsum(s_dx2), m_dxdy = -hsum(s_dxdy), m_dy2 = -hsum(s_dy2);
        const float m_dx = -hsum(s_dx), m_dy = -hsum(s_dy);
        const float a2 = 2.f * p.ha, c2 = 2.f * p.hc;
        float* out = in.isect_grads + (int64_t)a.tile_emit[start + k] * stride;
        out[0] += -(a2 * m_dx + p.b * m_dy);
        out[1] += -(p.b * m_dx + c2 * m_dy);
        out[2] += 0.5f * m_dx2;
        out[3] += m_dxdy;
        out[4] += 0.5f * m_dy2;
        out[5] += hsum(s_logo) / p.opacity;
        out[6] += hsum(s_z);
        for (int c = 0; c < NC; ++c) out[kIsectGeomGrads + c0 + c] += hsum(s_col[c]);
    }
}

template <int NC>
void blend_chunk_backward(const BlendArgs& a, int c0, const BackwardInputs& in, int nthreads) {
    const int n_tiles = a.grid.n_tiles();
#pragma omp parallel num_threads(nthreads)
    {
        static thread_local BackwardScratch scratch;
#pragma omp for schedule(dynamic, 1)
        for (int tile = 0; tile < n_tiles; ++tile) blend_tile_backward<NC>(a, tile, c0, c0 == 0, scratch, in);
    }
}

}  // namespace

void blend_backward(const BlendArgs& args, const float* final_T, const int32_t* last, const float* depth,
                    const float* v_image, const float* v_alpha, const float* v_depth, float* isect_grads,
                    int nthreads) {
    const BackwardInputs in{final_T, last, depth, v_image, v_alpha, v_depth, isect_grads};
    for (int c0 = 0; c0 < args.channels; c0 += kMaxChunk) {
        switch (std::min(args.channels - c0, kMaxChunk)) {
            case 1: blend_chunk_backward<1>(args, c0, in, nthreads); break;
            case 2: blend_chunk_backward<2>(args, c0, in, nthreads); break;
            case 3: blend_chunk_backward<3>(args, c0, in, nthreads); break;
            default: blend_chunk_backward<4>(args, c0, in, nthreads); break;
        }
    }
}

void reduce_isect_grads(int64_t s_count, const int32_t* sorted_ids, const int32_t* emit_offsets,
                        const float* isect_grads, int channels, float* v_means2d, float* v_conics,
                        float* v_opacities, float* v_depths, float* v_colors, int nthreads) {
    const int stride = kIsectGeomGrads + channels;
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 256)
    for (int64_t s = 0; s < s_count; ++s) {
        const int32_t g = sorted_ids[s];
        float sum[kIsectGeomGrads] = {0.f};
        float* vcol = v_colors + (int64_t)g * channels;
        for (int32_t e = emit_offsets[s]; e < emit_offsets[s + 1]; ++e) {
            const float* rec = isect_grads + (int64_t)e * stride;
            for (int j = 0; j < kIsectGeomGrads; ++j) sum[j] += rec[j];
            for (int c = 0; c < channels; ++c) vcol[c] += rec[kIsectGeomGrads + c];
        }
        v_means2d[2 * g] = sum[0];
        v_means2d[2 * g + 1] = sum[1];
        v_conics[3 * g] = sum[2];
        v_conics[3 * g + 1] = sum[3];
        v_conics[3 * g + 2] = sum[4];
        v_opacities[g] = sum[5];
        v_depths[g] = sum[6];
    }
}

}  // namespace cpu
}  // namespace avatar
