// Bindings of the Gaussian rasteriser's CPU kernels: projection and tile blending, forward and backward.
#include "bindings.h"
#include "buffer_pool.h"
#include "raster_cpu.h"

namespace avatar::bind {

avatar::Camera make_camera(const Tensor& viewmat, const Tensor& K, int64_t width, int64_t height, double near_plane,
                           double far_plane, double eps2d) {
    check_cpu(viewmat, "viewmat");
    check_cpu(K, "K");
    const float* v = viewmat.data_ptr<float>();
    const float* k = K.data_ptr<float>();
    avatar::Camera cam;
    for (int r = 0; r < 3; ++r) {
        for (int c = 0; c < 3; ++c) cam.R.m[r * 3 + c] = v[r * 4 + c];
        cam.t[r] = v[r * 4 + 3];
    }
    cam.fx = k[0];
    cam.fy = k[4];
    cam.cx = k[2];
    cam.cy = k[5];
    cam.width = (int)width;
    cam.height = (int)height;
    cam.near_plane = (float)near_plane;
    cam.far_plane = (float)far_plane;
    cam.eps2d = (float)eps2d;
    return cam;
}

std::vector<Tensor> project_fwd(Tensor means, Tensor quats, Tensor log_scales, Tensor opacity_logits, Tensor viewmat,
                                Tensor K, int64_t width, int64_t height, double near_plane, double far_plane,
                                double eps2d) {
    check_cpu(means, "means");
    check_cpu(quats, "quats");
    check_cpu(log_scales, "log_scales");
    check_cpu(opacity_logits, "opacity_logits");
    const auto cam = make_camera(viewmat, K, width, height, near_plane, far_plane, eps2d);
    const int64_t n = means.size(0);
    auto opts = means.options();
    Tensor means2d = avatar::pooled_empty({n, 2}, opts), conics = avatar::pooled_empty({n, 3}, opts);
    Tensor depths = avatar::pooled_empty({n}, opts), opacities = avatar::pooled_empty({n}, opts);
    Tensor radii = avatar::pooled_empty({n, 2}, opts.dtype(at::kInt));
    avatar::cpu::project_forward(n, means.data_ptr<float>(), quats.data_ptr<float>(), log_scales.data_ptr<float>(),
                                 opacity_logits.data_ptr<float>(), cam, means2d.data_ptr<float>(),
                                 conics.data_ptr<float>(), depths.data_ptr<float>(), opacities.data_ptr<float>(),
                                 radii.data_ptr<int32_t>(), threads());
    return {means2d, conics, depths, opacities, radii};
}

std::vector<Tensor> project_bwd(Tensor means, Tensor quats, Tensor log_scales, Tensor opacity_logits, Tensor viewmat,
                                Tensor K, int64_t width, int64_t height, double near_plane, double far_plane,
                                double eps2d, Tensor radii, Tensor v_means2d, Tensor v_conics, Tensor v_depths,
                                Tensor v_opacities) {
    for (auto* t : {&means, &quats, &log_scales, &opacity_logits, &v_means2d, &v_conics, &v_depths, &v_opacities})
        check_cpu(*t, "projection input");
    check_cpu(radii, "radii", at::kInt);
    const auto cam = make_camera(viewmat, K, width, height, near_plane, far_plane, eps2d);
    const int64_t n = means.size(0);
    Tensor v_means = torch::empty_like(means), v_quats = torch::empty_like(quats);
    Tensor v_log_scales = torch::empty_like(log_scales), v_logits = torch::empty_like(opacity_logits);
    Tensor v_viewmat = torch::zeros({4, 4}, means.options()), v_K = torch::zeros({3, 3}, means.options());
    avatar::cpu::project_backward(
        n, means.data_ptr<float>(), quats.data_ptr<float>(), log_scales.data_ptr<float>(),
        opacity_logits.data_ptr<float>(), cam, radii.data_ptr<int32_t>(), v_means2d.data_ptr<float>(),
        v_conics.data_ptr<float>(), v_depths.data_ptr<float>(), v_opacities.data_ptr<float>(),
        v_means.data_ptr<float>(), v_quats.data_ptr<float>(), v_log_scales.data_ptr<float>(),
        v_logits.data_ptr<float>(), v_viewmat.data_ptr<float>(), v_K.data_ptr<float>(), threads());
    return {v_means, v_quats, v_log_scales, v_logits, v_viewmat, v_K};
}

void check_blend_inputs(const Tensor& means2d, const Tensor& conics, const Tensor& opacities, const Tensor& depths,
                        const Tensor& colors, const c10::optional<Tensor>& background) {
    check_cpu(means2d, "means2d");
    check_cpu(conics, "conics");
    check_cpu(opacities, "opacities");
    check_cpu(depths, "depths");
    check_cpu(colors, "colors");
    TORCH_CHECK(colors.dim() == 2 && colors.size(1) >= 1, "colors must be [N, C] with C >= 1");
    if (background.has_value() && background->defined()) {
        check_cpu(*background, "background");
        TORCH_CHECK(background->numel() == colors.size(1), "background must have one value per channel");
    }
}

// The depth-ordered, packed copy of the visible Gaussians that binning and blending read. Kept
// per calling thread and reused, so its memory is not faulted in afresh every frame.
struct Packed {
    std::vector<avatar::cpu::PackedGaussian> gaussians;
    std::vector<float> colors;
};

const Packed& pack(const Tensor& sorted_ids, const Tensor& means2d, const Tensor& conics, const Tensor& opacities,
                   const Tensor& depths, const Tensor& colors) {
    static thread_local Packed p;
    const int64_t s_count = sorted_ids.size(0);
    const int channels = (int)colors.size(1);
    p.gaussians.resize((size_t)s_count);
    p.colors.resize((size_t)s_count * channels);
    avatar::cpu::pack_gaussians(s_count, sorted_ids.data_ptr<int32_t>(), means2d.data_ptr<float>(),
                                conics.data_ptr<float>(), opacities.data_ptr<float>(), depths.data_ptr<float>(),
                                colors.data_ptr<float>(), channels, p.gaussians.data(), p.colors.data(), threads());
    return p;
}

avatar::cpu::BlendArgs blend_args(const Packed& p, const Tensor& colors, const c10::optional<Tensor>& background,
                                  int64_t width, int64_t height, const Tensor& tile_offsets, const Tensor& tile_entries,
                                  const Tensor& tile_emit) {
    avatar::cpu::BlendArgs a{};
    a.grid = avatar::cpu::make_tile_grid((int)width, (int)height);
    a.packed = p.gaussians.data();
    a.colors = p.colors.data();
    a.channels = (int)colors.size(1);
    a.background = background.has_value() && background->defined() ? background->data_ptr<float>() : nullptr;
    a.tile_offsets = tile_offsets.data_ptr<int32_t>();
    a.tile_entries = tile_entries.data_ptr<int32_t>();
    a.tile_emit = tile_emit.data_ptr<int32_t>();
    return a;
}

// Returns image, alpha, expected depth, and, when need_backward, what the backward pass replays: final_T,
// last, sorted_ids, emit_offsets, tile_offsets, tile_entries, tile_emit (undefined otherwise).
std::vector<Tensor> blend_fwd(Tensor means2d, Tensor conics, Tensor opacities, Tensor depths, Tensor colors,
                              Tensor radii, c10::optional<Tensor> background, int64_t width, int64_t height,
                              bool need_backward) {
    check_blend_inputs(means2d, conics, opacities, depths, colors, background);
    check_cpu(radii, "radii", at::kInt);
    const int64_t n = means2d.size(0);
    const int nt = threads();
    const auto grid = avatar::cpu::make_tile_grid((int)width, (int)height);
    auto fopts = means2d.options();
    auto iopts = fopts.dtype(at::kInt);
    Tensor sorted_ids = torch::empty({n}, iopts);
    const int64_t s_count = avatar::cpu::sort_visible_by_depth(n, depths.data_ptr<float>(),
                                                               radii.data_ptr<int32_t>(), sorted_ids.data_ptr<int32_t>());
    sorted_ids = sorted_ids.narrow(0, 0, s_count);
    const Packed& packed = pack(sorted_ids, means2d, conics, opacities, depths, colors);
    Tensor emit_offsets = torch::empty({s_count + 1}, iopts);
    static thread_local std::vector<int32_t> emit_tiles;
    avatar::cpu::find_tile_intersections(s_count, packed.gaussians.data(), grid, emit_offsets.data_ptr<int32_t>(),
                                         emit_tiles, nt);
    const int64_t m = (int64_t)emit_tiles.size();
    Tensor tile_offsets = torch::empty({grid.n_tiles() + 1}, iopts);
    Tensor tile_entries = avatar::pooled_empty({m}, iopts), tile_emit = avatar::pooled_empty({m}, iopts);
    avatar::cpu::sort_intersections_by_tile(s_count, emit_offsets.data_ptr<int32_t>(), emit_tiles.data(), grid,
                                            tile_offsets.data_ptr<int32_t>(), tile_entries.data_ptr<int32_t>(),
                                            tile_emit.data_ptr<int32_t>(), nt);
    const auto a = blend_args(packed, colors, background, width, height, tile_offsets, tile_entries, tile_emit);
    Tensor image = avatar::pooled_empty({height, width, colors.size(1)}, fopts);
    Tensor alpha = avatar::pooled_empty({height, width}, fopts), depth = avatar::pooled_empty({height, width}, fopts);
    Tensor final_T, last;
    if (need_backward) {
        final_T = avatar::pooled_empty({height, width}, fopts);
        last = avatar::pooled_empty({height, width}, iopts);
    }
    avatar::cpu::blend_forward(a, image.data_ptr<float>(), alpha.data_ptr<float>(), depth.data_ptr<float>(),
                               need_backward ? final_T.data_ptr<float>() : nullptr,
                               need_backward ? last.data_ptr<int32_t>() : nullptr, nt);
    if (!need_backward) return {image, alpha, depth};
    return {image, alpha, depth, final_T, last, sorted_ids, emit_offsets, tile_offsets, tile_entries, tile_emit};
}

// Returns v_means2d, v_conics, v_opacities, v_depths, v_colors.
std::vector<Tensor> blend_bwd(Tensor means2d, Tensor conics, Tensor opacities, Tensor depths, Tensor colors,
                              c10::optional<Tensor> background, int64_t width, int64_t height, Tensor depth,
                              Tensor final_T, Tensor last, Tensor sorted_ids, Tensor emit_offsets, Tensor tile_offsets,
                              Tensor tile_entries, Tensor tile_emit, Tensor v_image, c10::optional<Tensor> v_alpha,
                              c10::optional<Tensor> v_depth) {
    check_blend_inputs(means2d, conics, opacities, depths, colors, background);
    for (auto* t : {&last, &sorted_ids, &emit_offsets, &tile_offsets, &tile_entries, &tile_emit})
        check_cpu(*t, "binning", at::kInt);
    check_cpu(final_T, "final_T");
    check_cpu(depth, "depth");
    check_cpu(v_image, "v_image");
    const float* va = nullptr;
    const float* vd = nullptr;
    if (v_alpha.has_value() && v_alpha->defined()) {
        check_cpu(*v_alpha, "v_alpha");
        va = v_alpha->data_ptr<float>();
    }
    if (v_depth.has_value() && v_depth->defined()) {
        check_cpu(*v_depth, "v_depth");
        vd = v_depth->data_ptr<float>();
    }
    const int nt = threads();
    const int64_t n = means2d.size(0), c = colors.size(1), m = tile_entries.size(0);
    const Packed& packed = pack(sorted_ids, means2d, conics, opacities, depths, colors);
    const auto a = blend_args(packed, colors, background, width, height, tile_offsets, tile_entries, tile_emit);
    Tensor isect_grads = avatar::pooled_zeros({m, avatar::cpu::kIsectGeomGrads + c}, means2d.options());
    avatar::cpu::blend_backward(a, final_T.data_ptr<float>(), last.data_ptr<int32_t>(), depth.data_ptr<float>(),
                                v_image.data_ptr<float>(), va, vd, isect_grads.data_ptr<float>(), nt);
    Tensor v_means2d = torch::zeros({n, 2}, means2d.options()), v_conics = torch::zeros({n, 3}, means2d.options());
    Tensor v_opacities = torch::zeros({n}, means2d.options()), v_depths = torch::zeros({n}, means2d.options());
    Tensor v_colors = torch::zeros({n, c}, means2d.options());
    avatar::cpu::reduce_isect_grads(sorted_ids.size(0), sorted_ids.data_ptr<int32_t>(),
                                    emit_offsets.data_ptr<int32_t>(), isect_grads.data_ptr<float>(), (int)c,
                                    v_means2d.data_ptr<float>(), v_conics.data_ptr<float>(),
                                    v_opacities.data_ptr<float>(), v_depths.data_ptr<float>(),
                                    v_colors.data_ptr<float>(), nt);
    return {v_means2d, v_conics, v_opacities, v_depths, v_colors};
}

}  // namespace avatar::bind
