// Bindings of volume rendering: ray marching through an occupancy grid and compositing (CPU loops or
// CUDA launchers).
#include "bindings.h"
#include "cpu_ops.h"

#ifdef AVATAR_WITH_CUDA
#include "cuda_launch.h"
#endif

namespace avatar::bind {

namespace {

avatar::MarchParams march_params(const Tensor& grid, const std::vector<double>& box_min,
                                 const std::vector<double>& box_max, double step, double near, int64_t max_samples) {
    TORCH_CHECK(grid.dim() == 3 && grid.size(0) == grid.size(1) && grid.size(1) == grid.size(2),
                "the occupancy grid must be [res, res, res]");
    TORCH_CHECK(box_min.size() == 3 && box_max.size() == 3, "box corners have three coordinates");
    TORCH_CHECK(step > 0, "step must be positive");
    TORCH_CHECK(max_samples >= 1 && max_samples < (1 << 30), "max_samples must be in [1, 2^30)");
    avatar::MarchParams m{};
    m.res = (int32_t)grid.size(0);
    for (int a = 0; a < 3; ++a) {
        TORCH_CHECK(box_max[a] > box_min[a], "the box must have positive extent");
        m.box_min[a] = (float)box_min[a];
        m.box_max[a] = (float)box_max[a];
        m.cells_per_unit[a] = (float)(m.res / (box_max[a] - box_min[a]));
    }
    m.step = (float)step;
    m.near = (float)near;
    m.max_samples = (int32_t)max_samples;
    return m;
}

void check_offsets(const Tensor& offsets, int64_t rays) {
    check(offsets, "offsets", at::kLong);
    TORCH_CHECK(offsets.dim() == 1 && offsets.size(0) == rays + 1, "offsets must be [rays + 1]");
}

}  // namespace

// Returns offsets [R + 1] (int64), ray_ids [S] (int64), t_begin [S], t_end [S], t_next [R].
std::vector<Tensor> march_rays(Tensor origins, Tensor dirs, Tensor t_start, Tensor t_stop, Tensor grid, std::vector<double> box_min,
                               std::vector<double> box_max, double step, double near, int64_t max_samples,
                               int64_t stream) {
    check(origins, "origins");
    check(dirs, "dirs");
    check(t_start, "t_start");
    check(t_stop, "t_stop");
    check(grid, "grid", at::kByte);
    const auto m = march_params(grid, box_min, box_max, step, near, max_samples);
    const int64_t n = origins.size(0);
    auto long_options = origins.options().dtype(at::kLong);
    Tensor counts = torch::empty({n}, long_options), t_next = torch::empty({n}, origins.options());
    const float *o = origins.data_ptr<float>(), *d = dirs.data_ptr<float>(), *ts = t_start.data_ptr<float>(), *te = t_stop.data_ptr<float>();
    const uint8_t* g = grid.data_ptr<uint8_t>();
    if (origins.is_cuda()) {
#ifdef AVATAR_WITH_CUDA
        avatar::cuda::march_count(n, o, d, ts, te, m, g, counts.data_ptr<int64_t>(), t_next.data_ptr<float>(),
                                  as_stream(stream));
#else
        TORCH_CHECK(false, "this build of the avatar kernels has no CUDA support");
#endif
    } else {
        avatar::cpu::march_count(n, o, d, ts, te, m, g, counts.data_ptr<int64_t>(), t_next.data_ptr<float>(), threads());
    }
    Tensor offsets = torch::zeros({n + 1}, long_options);
    if (n) offsets.slice(0, 1).copy_(counts.cumsum(0));
    const int64_t total = offsets[n].item<int64_t>();  // one sync on CUDA: the sizes below depend on it
    Tensor ray_ids = torch::empty({total}, long_options);
    Tensor t_begin = torch::empty({total}, origins.options()), t_end = torch::empty({total}, origins.options());
    if (origins.is_cuda()) {
#ifdef AVATAR_WITH_CUDA
        avatar::cuda::march_fill(n, o, d, ts, te, m, g, offsets.data_ptr<int64_t>(), ray_ids.data_ptr<int64_t>(),
                                 t_begin.data_ptr<float>(), t_end.data_ptr<float>(), as_stream(stream));
#endif
    } else {
        avatar::cpu::march_fill(n, o, d, ts, te, m, g, offsets.data_ptr<int64_t>(), ray_ids.data_ptr<int64_t>(),
                                t_begin.data_ptr<float>(), t_end.data_ptr<float>(), threads());
    }
    return {offsets, ray_ids, t_begin, t_end, t_next};
}

// origins, dirs [P, R, 3], t_start, t_stop [P, R], one grid [res_p, res_p, res_p] and box (min, max: 6 numbers) per
// part. Returns offsets [R + 1] (int64), ray_ids [S] (int64), t_begin [S], t_end [S], parts [S] (int64),
// points [S, 3] and t_next [P, R].
std::vector<Tensor> march_parts(Tensor origins, Tensor dirs, Tensor t_start, Tensor t_stop, std::vector<Tensor> grids,
                                std::vector<double> boxes, double step, double near, int64_t max_samples, int64_t stream) {
    for (auto* t : {&origins, &dirs, &t_start, &t_stop}) check(*t, "march input");
    const int64_t parts = (int64_t)grids.size(), n = origins.size(1);
    TORCH_CHECK(parts >= 1 && parts <= avatar::kMarchMaxParts, "march_parts takes 1..", avatar::kMarchMaxParts, " parts");
    TORCH_CHECK(origins.dim() == 3 && origins.size(0) == parts && origins.size(2) == 3 && dirs.sizes() == origins.sizes(),
                "origins and dirs must be [parts, rays, 3]");
    TORCH_CHECK(t_start.dim() == 2 && t_start.size(0) == parts && t_start.size(1) == n && t_stop.sizes() == t_start.sizes(),
                "t_start and t_stop must be [parts, rays]");
    TORCH_CHECK((int64_t)boxes.size() == 6 * parts, "each part needs a box: 6 numbers");
    avatar::MarchPartsParams q{};
    q.parts = (int32_t)parts;
    q.max_samples = (int32_t)max_samples;
    for (int64_t p = 0; p < parts; ++p) {
        check(grids[p], "grid", at::kByte);
        TORCH_CHECK(grids[p].device() == origins.device(), "every grid must be on the rays' device");
        const std::vector<double> lo(boxes.begin() + 6 * p, boxes.begin() + 6 * p + 3);
        const std::vector<double> hi(boxes.begin() + 6 * p + 3, boxes.begin() + 6 * p + 6);
        q.part[p] = march_params(grids[p], lo, hi, step, near, max_samples);
        q.grid[p] = grids[p].data_ptr<uint8_t>();
    }
    auto long_options = origins.options().dtype(at::kLong);
    Tensor counts = torch::empty({n}, long_options), t_next = torch::empty({parts, n}, origins.options());
    const float *o = origins.data_ptr<float>(), *d = dirs.data_ptr<float>(), *ts = t_start.data_ptr<float>(), *te = t_stop.data_ptr<float>();
    if (origins.is_cuda()) {
#ifdef AVATAR_WITH_CUDA
        avatar::cuda::march_parts_count(n, o, d, ts, te, q, counts.data_ptr<int64_t>(), t_next.data_ptr<float>(), as_stream(stream));
#else
        TORCH_CHECK(false, "this build of the avatar kernels has no CUDA support");
#endif
    } else {
        avatar::cpu::march_parts_count(n, o, d, ts, te, q, counts.data_ptr<int64_t>(), t_next.data_ptr<float>(), threads());
    }
    Tensor offsets = torch::zeros({n + 1}, long_options);
    if (n) offsets.slice(0, 1).copy_(counts.cumsum(0));
    const int64_t total = offsets[n].item<int64_t>();  // one sync on CUDA: the sizes below depend on it
    Tensor ray_ids = torch::empty({total}, long_options), part_ids = torch::empty({total}, long_options);
    Tensor t_begin = torch::empty({total}, origins.options()), t_end = torch::empty({total}, origins.options());
    Tensor points = torch::empty({total, 3}, origins.options());
    if (origins.is_cuda()) {
#ifdef AVATAR_WITH_CUDA
        avatar::cuda::march_parts_fill(n, o, d, ts, te, q, offsets.data_ptr<int64_t>(), t_next.data_ptr<float>(),
                                       ray_ids.data_ptr<int64_t>(), t_begin.data_ptr<float>(), t_end.data_ptr<float>(),
                                       part_ids.data_ptr<int64_t>(), points.data_ptr<float>(), as_stream(stream));
#endif
    } else {
        avatar::cpu::march_parts_fill(n, o, d, ts, te, q, offsets.data_ptr<int64_t>(), t_next.data_ptr<float>(),
                                      ray_ids.data_ptr<int64_t>(), t_begin.data_ptr<float>(), t_end.data_ptr<float>(),
                                      part_ids.data_ptr<int64_t>(), points.data_ptr<float>(), threads());
    }
    return {offsets, ray_ids, t_begin, t_end, part_ids, points, t_next};
}

// Returns out [R, C], opacity [R], weights [S].
std::vector<Tensor> composite_fwd(Tensor offsets, Tensor sigma, Tensor delta, Tensor color, int64_t stream) {
    check(sigma, "sigma");
    check(delta, "delta");
    check(color, "color");
    const int64_t n = offsets.size(0) - 1, channels = color.size(1);
    check_offsets(offsets, n);
    TORCH_CHECK(channels >= 1 && channels <= avatar::kVolumeMaxChannels, "color needs 1..",
                avatar::kVolumeMaxChannels, " channels");
    Tensor out = torch::empty({n, channels}, color.options()), opacity = torch::empty({n}, color.options());
    Tensor weights = torch::empty_like(sigma);
    if (color.is_cuda()) {
#ifdef AVATAR_WITH_CUDA
        avatar::cuda::composite_forward(n, offsets.data_ptr<int64_t>(), sigma.data_ptr<float>(),
                                        delta.data_ptr<float>(), color.data_ptr<float>(), (int)channels,
                                        weights.data_ptr<float>(), out.data_ptr<float>(), opacity.data_ptr<float>(),
                                        as_stream(stream));
        return {out, opacity, weights};
#else
        TORCH_CHECK(false, "this build of the avatar kernels has no CUDA support");
#endif
    }
    avatar::cpu::composite_forward(n, offsets.data_ptr<int64_t>(), sigma.data_ptr<float>(), delta.data_ptr<float>(),
                                   color.data_ptr<float>(), (int)channels, weights.data_ptr<float>(),
                                   out.data_ptr<float>(), opacity.data_ptr<float>(), threads());
    return {out, opacity, weights};
}

// Returns v_sigma [S], v_color [S, C].
std::vector<Tensor> composite_bwd(Tensor offsets, Tensor sigma, Tensor delta, Tensor color, Tensor out,
                                  Tensor opacity, Tensor v_out, Tensor v_opacity, int64_t stream) {
    for (auto* t : {&sigma, &delta, &color, &out, &opacity, &v_out, &v_opacity}) check(*t, "composite input");
    const int64_t n = offsets.size(0) - 1, channels = color.size(1);
    check_offsets(offsets, n);
    Tensor v_sigma = torch::empty_like(sigma), v_color = torch::empty_like(color);
    if (color.is_cuda()) {
#ifdef AVATAR_WITH_CUDA
        avatar::cuda::composite_backward(n, offsets.data_ptr<int64_t>(), sigma.data_ptr<float>(),
                                         delta.data_ptr<float>(), color.data_ptr<float>(), (int)channels,
                                         out.data_ptr<float>(), opacity.data_ptr<float>(), v_out.data_ptr<float>(),
                                         v_opacity.data_ptr<float>(), v_sigma.data_ptr<float>(),
                                         v_color.data_ptr<float>(), as_stream(stream));
        return {v_sigma, v_color};
#else
        TORCH_CHECK(false, "this build of the avatar kernels has no CUDA support");
#endif
    }
    avatar::cpu::composite_backward(n, offsets.data_ptr<int64_t>(), sigma.data_ptr<float>(), delta.data_ptr<float>(),
                                    color.data_ptr<float>(), (int)channels, out.data_ptr<float>(),
                                    opacity.data_ptr<float>(), v_out.data_ptr<float>(), v_opacity.data_ptr<float>(),
                                    v_sigma.data_ptr<float>(), v_color.data_ptr<float>(), threads());
    return {v_sigma, v_color};
}

// Returns out [N, C]: volume [C, res, res, res] at points [N, 3].
Tensor lookup_volume(Tensor volume, Tensor points, std::vector<double> box_min, std::vector<double> box_max, int64_t stream) {
    check(volume, "volume");
    check(points, "points");
    TORCH_CHECK(volume.dim() == 4 && volume.size(1) == volume.size(2) && volume.size(2) == volume.size(3),
                "the volume must be [C, res, res, res]");
    TORCH_CHECK(points.dim() == 2 && points.size(1) == 3, "points must be [N, 3]");
    TORCH_CHECK(box_min.size() == 3 && box_max.size() == 3, "box corners have three coordinates");
    avatar::LookupParams v{};
    v.res = (int32_t)volume.size(1);
    v.channels = (int32_t)volume.size(0);
    for (int a = 0; a < 3; ++a) {
        TORCH_CHECK(box_max[a] > box_min[a], "the box must have positive extent");
        v.box_min[a] = (float)box_min[a];
        v.cells_per_unit[a] = (float)(v.res / (box_max[a] - box_min[a]));
    }
    const int64_t n = points.size(0);
    Tensor out = torch::empty({n, (int64_t)v.channels}, points.options());
    if (points.is_cuda()) {
#ifdef AVATAR_WITH_CUDA
        avatar::cuda::lookup_volume(n, points.data_ptr<float>(), volume.data_ptr<float>(), v, out.data_ptr<float>(),
                                    as_stream(stream));
        return out;
#else
        TORCH_CHECK(false, "this build of the avatar kernels has no CUDA support");
#endif
    }
    avatar::cpu::lookup_volume(n, points.data_ptr<float>(), volume.data_ptr<float>(), v, out.data_ptr<float>(), threads());
    return out;
}

}  // namespace avatar::bind
