// Bindings of the hash-grid triplane encoding, the NeRF fields' layers and the fused Gaussian deformation (CPU loops
// or CUDA launchers).
#include "bindings.h"
#include "buffer_pool.h"
#include "cpu_ops.h"

#ifdef AVATAR_WITH_CUDA
#include "cuda_launch.h"
#endif

namespace avatar::bind {

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

// features [N, inputs], any strides (the CPU encoding's transposed view is read in place); layers as field_mlp.h
// names them; vectors [groups, width] ([0, width]: no gate). Returns density [N] and colour [N, 3] (empty when
// density_only).
std::vector<Tensor> field_mlp_fwd(Tensor features, Tensor w_in, Tensor b_in, Tensor vectors, Tensor w_hidden,
                                  Tensor b_hidden, Tensor w_out, Tensor b_out, double density_shift, bool density_only,
                                  int64_t stream) {
    TORCH_CHECK(features.scalar_type() == at::kFloat && features.dim() == 2, "features must be a float32 [N, inputs]");
    for (auto* t : {&w_in, &b_in, &vectors, &w_hidden, &b_hidden, &w_out, &b_out}) check(*t, "field layer");
    TORCH_CHECK(w_in.dim() == 2 && vectors.dim() == 2 && w_hidden.dim() == 2 && w_out.dim() == 2,
                "w_in, vectors, w_hidden and w_out are matrices");
    const int64_t n = features.size(0), inputs = features.size(1), groups = vectors.size(0), width = w_hidden.size(0);
    TORCH_CHECK(inputs >= 1 && inputs <= avatar::kFieldMaxInputs, "features per point must be in [1, ",
                avatar::kFieldMaxInputs, "]");
    TORCH_CHECK(width >= 1 && width <= avatar::kFieldMaxWidth, "width must be in [1, ", avatar::kFieldMaxWidth, "]");
    TORCH_CHECK(groups <= avatar::kFieldMaxGroups, "at most ", avatar::kFieldMaxGroups, " groups");
    TORCH_CHECK(w_in.size(0) == width + groups && w_in.size(1) == inputs && b_in.numel() == width + groups,
                "w_in must be [width + groups, inputs] and b_in [width + groups]");
    TORCH_CHECK(groups == 0 || vectors.size(1) == width, "vectors must be [groups, width]");
    TORCH_CHECK(w_hidden.size(1) == width && b_hidden.numel() == width, "w_hidden must be [width, width], b_hidden [width]");
    TORCH_CHECK(w_out.size(0) == 4 && w_out.size(1) == width && b_out.numel() == 4, "w_out must be [4, width], b_out [4]");
    avatar::FieldMlpParams p{(int)inputs, (int)width, (int)groups, (float)density_shift, density_only,
                             w_in.data_ptr<float>(), b_in.data_ptr<float>(), vectors.data_ptr<float>(),
                             w_hidden.data_ptr<float>(), b_hidden.data_ptr<float>(), w_out.data_ptr<float>(),
                             b_out.data_ptr<float>()};
    const avatar::FieldInputs x{features.data_ptr<float>(), features.stride(0), features.stride(1)};
    Tensor density = torch::empty({n}, features.options());
    Tensor colour = torch::empty({density_only ? 0 : n, 3}, features.options());
    float* c = density_only ? nullptr : colour.data_ptr<float>();
    if (features.is_cuda()) {
#ifdef AVATAR_WITH_CUDA
        avatar::cuda::field_mlp_forward(n, x, p, density.data_ptr<float>(), c, as_stream(stream));
        return {density, colour};
#else
        TORCH_CHECK(false, "this build of the avatar kernels has no CUDA support");
#endif
    }
    TORCH_CHECK(features.device().is_cpu(), "features must be on the CPU");
    avatar::cpu::field_mlp_forward(n, x, p, density.data_ptr<float>(), c, threads());
    return {density, colour};
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

}  // namespace avatar::bind
