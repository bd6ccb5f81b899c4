// Shared by the binding files: the only files that include torch (so the kernels themselves compile in
// seconds). The Python layer (avatar/ops) validates shapes and values and passes contiguous float32
// tensors; the checks here only guard against misuse of the raw entry points.
#pragma once

#include <torch/extension.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace avatar::bind {

using torch::Tensor;

inline void check(const Tensor& t, const char* name, at::ScalarType dtype = at::kFloat) {
    TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
    TORCH_CHECK(t.scalar_type() == dtype, name, " has the wrong dtype");
}

inline void check_cpu(const Tensor& t, const char* name, at::ScalarType dtype = at::kFloat) {
    check(t, name, dtype);
    TORCH_CHECK(t.device().is_cpu(), name, " must be on the CPU");
}

inline int threads() { return std::max(1, at::get_num_threads()); }

#ifdef AVATAR_WITH_CUDA
// CUDA entry points take the stream as an integer handle from Python
// (torch.cuda.current_stream().cuda_stream), which keeps torch's CUDA headers out of these files.
inline void* as_stream(int64_t handle) { return reinterpret_cast<void*>(static_cast<intptr_t>(handle)); }
#endif

// bindings_raster.cpp
std::vector<Tensor> project_fwd(Tensor means, Tensor quats, Tensor log_scales, Tensor opacity_logits, Tensor viewmat,
                                Tensor K, int64_t width, int64_t height, double near_plane, double far_plane,
                                double eps2d);
std::vector<Tensor> project_bwd(Tensor means, Tensor quats, Tensor log_scales, Tensor opacity_logits, Tensor viewmat,
                                Tensor K, int64_t width, int64_t height, double near_plane, double far_plane,
                                double eps2d, Tensor radii, Tensor v_means2d, Tensor v_conics, Tensor v_depths,
                                Tensor v_opacities);
std::vector<Tensor> blend_fwd(Tensor means2d, Tensor conics, Tensor opacities, Tensor depths, Tensor colors,
                              Tensor radii, c10::optional<Tensor> background, int64_t width, int64_t height,
                              bool need_backward);
std::vector<Tensor> blend_bwd(Tensor means2d, Tensor conics, Tensor opacities, Tensor depths, Tensor colors,
                              c10::optional<Tensor> background, int64_t width, int64_t height, Tensor depth,
                              Tensor final_T, Tensor last, Tensor sorted_ids, Tensor emit_offsets, Tensor tile_offsets,
                              Tensor tile_entries, Tensor tile_emit, Tensor v_image, c10::optional<Tensor> v_alpha,
                              c10::optional<Tensor> v_depth);

// bindings_fields.cpp
Tensor hash_triplane_fwd(Tensor points, Tensor tables, std::vector<int64_t> resolutions, std::vector<double> box_min,
                         std::vector<double> box_max, int64_t stream);
std::vector<Tensor> hash_triplane_bwd(Tensor points, Tensor tables, std::vector<int64_t> resolutions,
                                      std::vector<double> box_min, std::vector<double> box_max, Tensor v_out,
                                      bool need_tables, bool need_points, int64_t stream);
std::vector<Tensor> field_mlp_fwd(Tensor features, Tensor w_in, Tensor b_in, Tensor vectors, Tensor w_hidden,
                                  Tensor b_hidden, Tensor w_out, Tensor b_out, double density_shift, bool density_only,
                                  int64_t stream);
std::vector<Tensor> deform_fwd(Tensor means, Tensor quats, Tensor log_scales, Tensor d_means, Tensor d_quats,
                               Tensor d_log_scales, Tensor rotation, Tensor translation, Tensor pose_quat,
                               int64_t stream);
std::vector<Tensor> deform_bwd(Tensor means, Tensor quats, Tensor d_means, Tensor d_quats, Tensor rotation,
                               Tensor translation, Tensor pose_quat, Tensor v_out_means, Tensor v_out_quats,
                               Tensor v_out_log_scales, int64_t stream);

// bindings_volume.cpp
std::vector<Tensor> march_rays(Tensor origins, Tensor dirs, Tensor t_start, Tensor t_stop, Tensor grid, std::vector<double> box_min,
                               std::vector<double> box_max, double step, double near, int64_t max_samples,
                               int64_t stream);
std::vector<Tensor> march_parts(Tensor origins, Tensor dirs, Tensor t_start, Tensor t_stop, std::vector<Tensor> grids,
                                std::vector<double> boxes, double step, double near, int64_t max_samples, int64_t stream);
std::vector<Tensor> composite_fwd(Tensor offsets, Tensor sigma, Tensor delta, Tensor color, int64_t stream);
std::vector<Tensor> composite_bwd(Tensor offsets, Tensor sigma, Tensor delta, Tensor color, Tensor out,
                                  Tensor opacity, Tensor v_out, Tensor v_opacity, int64_t stream);
Tensor lookup_volume(Tensor volume, Tensor points, std::vector<double> box_min, std::vector<double> box_max, int64_t stream);

}  // namespace avatar::bind
