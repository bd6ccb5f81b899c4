// Python bindings: tensors in, raw pointers to the CPU loops (or the CUDA launchers) out.
//
// This is the only file that includes torch, so the kernels themselves compile in seconds. The
// Python layer (avatar/ops) validates shapes and values and passes contiguous float32 tensors;
// the checks here only guard against misuse of the raw entry points.
#include <torch/extension.h>

#include <vector>

#include "buffer_pool.h"
#include "cpu_ops.h"
#include "raster_cpu.h"

#ifdef AVATAR_WITH_CUDA
#include "cuda_launch.h"
#endif

namespace {

using torch::Tensor;

void check(const Tensor& t, const char* name, at::ScalarType dtype = at::kFloat) {
    TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
    TORCH_CHECK(t.scalar_type() == dtype, name, " has the wrong dtype");
}

void check_cpu(const Tensor& t, const char* name, at::ScalarType dtype = at::kFloat) {
    check(t, name, dtype);
    TORCH_CHECK(t.device().is_cpu(), name, " must be on the CPU");
}

int threads() { return std::max(1, at::get_num_threads()); }

#ifdef AVATAR_WITH_CUDA
// CUDA entry points take the stream as an integer handle from Python
// (torch.cuda.current_stream().cuda_stream), which keeps torch's CUDA headers out of this file.
void* as_stream(int64_t handle) { return reinterpret_cast<void*>(static_cast<intptr_t>(handle)); }
#endif

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

avatar::HashTriplaneParams hash_params(const Tensor& tables, const std::vector<int64_t>& resolutions,
                                       const std::vector<double>& box_min, const std::vector<double>& box_max) {
    TORCH_CHECK(tables.dim() == 4 && tables.size(0) == 3, "tables must be [3, levels, table_size, features]");
    const int64_t levels = tables.size(1), table_size = tables.size(2), features = tables.size(3);
    TORCH_CHECK(levels >= 1 && levels <= avatar::kHashMaxLevels, "levels must be in [1, ", avatar::kHashMaxLevels, "]");
    TORCH_CHECK(features >= 1 && features <= avatar::kHashMaxFeatures, "features per level must be in [1, ",
                avatar::kHashMaxFeatures, "]");
    TORCH_CHECK(table_size >= 1 && (table_size & (table_size - 1)) == 0, "table_size must be a power of two");
    TORCH_CHECK((int64_t)resolutions.size() == levels, "one resolution per level");
    TORCH_CHECK(box_min.size() == 3 && box_max.size() == 3, "box corners have three coordinates");
    avatar::HashTriplaneParams p{};
    p.levels = (int)levels;
    p.features = (int)features;
    p.table_size = (uint32_t)table_size;
    for (int64_t l = 0; l < levels; ++l) {
        TORCH_CHECK(resolutions[l] >= 1 && resolutions[l] < (1 << 24), "resolutions must be in [1, 2^24)");
        p.resolution[l] = (int32_t)resolutions[l];
    }
    for (int k = 0; k < 3; ++k) {
        TORCH_CHECK(box_max[k] > box_min[k], "the box must have positive extent");
        p.box_min[k] = (float)box_min[k];
        p.inv_extent[k] = (float)(1.0 / (box_max[k] - box_min[k]));
    }
    return p;
}

Tensor hash_triplane_fwd(Tensor points, Tensor tables, std::vector<int64_t> resolutions, std::vector<double> box_min,
                         std::vector<double> box_max, int64_t stream) {
    check(points, "points");
    check(tables, "tables");
    const auto p = hash_params(tables, resolutions, box_min, box_max);
    const int64_t n = points.size(0);
    const int64_t per_point = 3 * p.levels * p.features;
    if (points.is_cuda()) {
        Tensor out = torch::empty({n, per_point}, points.options());
#ifdef AVATAR_WITH_CUDA
        avatar::cuda::hash_triplane_forward(n, points.data_ptr<float>(), tables.data_ptr<float>(), p,
                                            out.data_ptr<float>(), as_stream(stream));
        return out;
#else
        TORCH_CHECK(false, "this build of the avatar kernels has no CUDA support");
#endif
    }
    check_cpu(points, "points");
    // Feature-major storage, returned as its [N, 3 L F] transpose: a linear layer consumes the
    // view without a copy, and the CPU loops write contiguous runs (see hash_triplane_cpu.cpp).
    Tensor out = avatar::pooled_empty({per_point, n}, points.options());
    avatar::cpu::hash_triplane_forward(n, points.data_ptr<float>(), tables.data_ptr<float>(), p, out.data_ptr<float>(),
                                       threads());
    return out.t();
}

// Returns v_tables (undefined unless need_tables) and v_points (undefined unless need_points).
std::vector<Tensor> hash_triplane_bwd(Tensor points, Tensor tables, std::vector<int64_t> resolutions,
                                      std::vector<double> box_min, std::vector<double> box_max, Tensor v_out,
                                      bool need_tables, bool need_points, int64_t stream) {
    check(points, "points");
    check(tables, "tables");
    const auto p = hash_params(tables, resolutions, box_min, box_max);
    const int64_t n = points.size(0);
    Tensor v_tables, v_points;
    if (points.is_cuda()) {
        v_tables = need_tables ? torch::zeros_like(tables) : Tensor();
        v_points = need_points ? torch::zeros_like(points) : Tensor();
    } else {
        v_tables = need_tables ? avatar::pooled_zeros(tables.sizes(), tables.options()) : Tensor();
        v_points = need_points ? avatar::pooled_zeros(points.sizes(), points.options()) : Tensor();
    }
    float* vt = need_tables ? v_tables.data_ptr<float>() : nullptr;
    float* vp = need_points ? v_points.data_ptr<float>() : nullptr;
    if (points.is_cuda()) {
#ifdef AVATAR_WITH_CUDA
        v_out = v_out.to(at::kFloat).contiguous();
        avatar::cuda::hash_triplane_backward(n, points.data_ptr<float>(), tables.data_ptr<float>(), p,
                                             v_out.data_ptr<float>(), vt, vp, as_stream(stream));
        return {v_tables, v_points};
#else
        TORCH_CHECK(false, "this build of the avatar kernels has no CUDA support");
#endif
    }
    // Feature-major, like the forward output (free when v_out is the transpose of a contiguous
    // tensor, one transposing copy otherwise).
    Tensor v_major = v_out.to(at::kFloat).t().contiguous();
    TORCH_CHECK(v_major.size(0) == 3 * p.levels * p.features && v_major.size(1) == n, "v_features has the wrong shape");
    avatar::cpu::hash_triplane_backward(n, points.data_ptr<float>(), tables.data_ptr<float>(), p,
                                        v_major.data_ptr<float>(), vt, vp, threads());
    return {v_tables, v_points};
}

avatar::RigidPose make_pose(const Tensor& rotation, const Tensor& translation, const Tensor& pose_quat) {
    // Twelve numbers: copy through the CPU whatever the device.
    Tensor r = rotation.detach().to(at::kCPU, at::kFloat).contiguous();
    Tensor t = translation.detach().to(at::kCPU, at::kFloat).contiguous();
    Tensor q = pose_quat.detach().to(at::kCPU, at::kFloat).contiguous();
    TORCH_CHECK(r.numel() == 9 && t.numel() == 3 && q.numel() == 4, "pose must be R [3, 3], t [3], q [4]");
    avatar::RigidPose pose;
    for (int k = 0; k < 9; ++k) pose.R[k] = r.data_ptr<float>()[k];
    for (int k = 0; k < 3; ++k) pose.t[k] = t.data_ptr<float>()[k];
    for (int k = 0; k < 4; ++k) pose.q[k] = q.data_ptr<float>()[k];
    return pose;
}

std::vector<Tensor> deform_fwd(Tensor means, Tensor quats, Tensor log_scales, Tensor d_means, Tensor d_quats,
                               Tensor d_log_scales, Tensor rotation, Tensor translation, Tensor pose_quat,
                               int64_t stream) {
    for (auto* t : {&means, &quats, &log_scales, &d_means, &d_quats, &d_log_scales}) check(*t, "deformation input");
    const auto pose = make_pose(rotation, translation, pose_quat);
    const int64_t n = means.size(0);
    const bool cpu = !means.is_cuda();
    Tensor out_means = cpu ? avatar::pooled_empty(means.sizes(), means.options()) : torch::empty_like(means);
    Tensor out_quats = cpu ? avatar::pooled_empty(quats.sizes(), quats.options()) : torch::empty_like(quats);
    Tensor out_log_scales = cpu ? avatar::pooled_empty(log_scales.sizes(), log_scales.options())
                                : torch::empty_like(log_scales);
    if (means.is_cuda()) {
#ifdef AVATAR_WITH_CUDA
        avatar::cuda::deform_forward(n, means.data_ptr<float>(), quats.data_ptr<float>(), log_scales.data_ptr<float>(),
                                     d_means.data_ptr<float>(), d_quats.data_ptr<float>(),
                                     d_log_scales.data_ptr<float>(), pose, out_means.data_ptr<float>(),
                                     out_quats.data_ptr<float>(), out_log_scales.data_ptr<float>(), as_stream(stream));
        return {out_means, out_quats, out_log_scales};
#else
        TORCH_CHECK(false, "this build of the avatar kernels has no CUDA support");
#endif
    }
    avatar::cpu::deform_forward(n, means.data_ptr<float>(), quats.data_ptr<float>(), log_scales.data_ptr<float>(),
                                d_means.data_ptr<float>(), d_quats.data_ptr<float>(), d_log_scales.data_ptr<float>(),
                                pose, out_means.data_ptr<float>(), out_quats.data_ptr<float>(),
                                out_log_scales.data_ptr<float>(), threads());
    return {out_means, out_quats, out_log_scales};
}

// Returns v_means, v_quats, v_log_scales, v_d_means, v_d_quats, v_d_log_scales, v_pose [16].
std::vector<Tensor> deform_bwd(Tensor means, Tensor quats, Tensor d_means, Tensor d_quats, Tensor rotation,
                               Tensor translation, Tensor pose_quat, Tensor v_out_means, Tensor v_out_quats,
                               Tensor v_out_log_scales, int64_t stream) {
    for (auto* t : {&means, &quats, &d_means, &d_quats, &v_out_means, &v_out_quats, &v_out_log_scales})
        check(*t, "deformation input");
    const auto pose = make_pose(rotation, translation, pose_quat);
    const int64_t n = means.size(0);
    Tensor v_means = torch::empty_like(means), v_quats = torch::empty_like(quats);
    Tensor v_log_scales = torch::empty_like(v_out_log_scales), v_d_means = torch::empty_like(d_means);
    Tensor v_d_quats = torch::empty_like(d_quats), v_d_log_scales = torch::empty_like(v_out_log_scales);
    const float *m = means.data_ptr<float>(), *q = quats.data_ptr<float>();
    const float *dm = d_means.data_ptr<float>(), *dq = d_quats.data_ptr<float>();
    const float *vom = v_out_means.data_ptr<float>(), *voq = v_out_quats.data_ptr<float>();
    const float* vos = v_out_log_scales.data_ptr<float>();
    if (means.is_cuda()) {
#ifdef AVATAR_WITH_CUDA
        Tensor shares = torch::empty({n, 16}, means.options());
        avatar::cuda::deform_backward(n, m, q, dm, dq, pose, vom, voq, vos, v_means.data_ptr<float>(),
                                      v_quats.data_ptr<float>(), v_log_scales.data_ptr<float>(),
                                      v_d_means.data_ptr<float>(), v_d_quats.data_ptr<float>(),
                                      v_d_log_scales.data_ptr<float>(), shares.data_ptr<float>(), as_stream(stream));
        return {v_means, v_quats, v_log_scales, v_d_means, v_d_quats, v_d_log_scales, shares.sum(0)};
#else
        TORCH_CHECK(false, "this build of the avatar kernels has no CUDA support");
#endif
    }
    Tensor v_pose = torch::empty({16}, means.options());
    avatar::cpu::deform_backward(n, m, q, dm, dq, pose, vom, voq, vos, v_means.data_ptr<float>(),
                                 v_quats.data_ptr<float>(), v_log_scales.data_ptr<float>(), v_d_means.data_ptr<float>(),
                                 v_d_quats.data_ptr<float>(), v_d_log_scales.data_ptr<float>(),
                                 v_pose.data_ptr<float>(), threads());
    return {v_means, v_quats, v_log_scales, v_d_means, v_d_quats, v_d_log_scales, v_pose};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.doc() = "avatar compute kernels: Gaussian rasteriser (CPU), hash-grid triplane, Gaussian deformation";
    m.attr("with_cuda") =
#ifdef AVATAR_WITH_CUDA
        true;
#else
        false;
#endif
    m.def("project_fwd", &project_fwd);
    m.def("project_bwd", &project_bwd);
    m.def("blend_fwd", &blend_fwd);
    m.def("blend_bwd", &blend_bwd);
    m.def("hash_triplane_fwd", &hash_triplane_fwd);
    m.def("hash_triplane_bwd", &hash_triplane_bwd);
    m.def("deform_fwd", &deform_fwd);
    m.def("deform_bwd", &deform_bwd);
}
