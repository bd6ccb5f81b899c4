// Launch functions of the CUDA kernels, callable from C++ compiled without nvcc.
//
// The .cu files include no torch headers and take raw device pointers; `stream` is a
// cudaStream_t passed as void* so this header needs no CUDA include either.
#pragma once

#include <stdint.h>

#include "deform.h"
#include "field_mlp.h"
#include "hash_triplane.h"
#include "volume.h"

namespace avatar {
namespace cuda {

void hash_triplane_forward(int64_t n, const float* points, const float* tables, const HashTriplaneParams& p,
                           float* out, void* stream);

// v_tables (zeroed) and v_points (zeroed) accumulate atomically; either may be null.
void hash_triplane_backward(int64_t n, const float* points, const float* tables, const HashTriplaneParams& p,
                            const float* v_out, float* v_tables, float* v_points, void* stream);

// features (FieldInputs) -> density [N], colour [N, 3] (null when p.density_only).
void field_mlp_forward(int64_t n, const FieldInputs& features, const FieldMlpParams& p, float* density, float* colour,
                       void* stream);

void deform_forward(int64_t n, const float* means, const float* quats, const float* log_scales,
                    const float* d_means, const float* d_quats, const float* d_log_scales, const RigidPose& pose,
                    float* out_means, float* out_quats, float* out_log_scales, void* stream);

// v_pose_shares [N, 16]: each Gaussian's share of the pose gradient, summed by the caller.
void deform_backward(int64_t n, const float* means, const float* quats, const float* d_means,
                     const float* d_quats, const RigidPose& pose, const float* v_out_means,
                     const float* v_out_quats, const float* v_out_log_scales, float* v_means, float* v_quats,
                     float* v_log_scales, float* v_d_means, float* v_d_quats, float* v_d_log_scales,
                     float* v_pose_shares, void* stream);

// Volume rendering (volume.h). Marching is two passes: counts [R] and t_next [R], then, with
// offsets [R + 1] the running sum of the counts, the samples' ray ids and intervals.
void march_count(int64_t n, const float* origins, const float* dirs, const float* t_start, const float* t_stop, const MarchParams& m,
                 const uint8_t* grid, int64_t* counts, float* t_next, void* stream);
void march_fill(int64_t n, const float* origins, const float* dirs, const float* t_start, const float* t_stop, const MarchParams& m,
                const uint8_t* grid, const int64_t* offsets, int64_t* ray_ids, float* t_begin, float* t_end,
                void* stream);

// The same for several parts at once (march_parts_ray): t_next [P, R]; the samples' parts [S] and points [S, 3]
// (in their part's space). The fill pass writes t_next again, with the same values.
void march_parts_count(int64_t n, const float* origins, const float* dirs, const float* t_start, const float* t_stop,
                       const MarchPartsParams& q, int64_t* counts, float* t_next, void* stream);
void march_parts_fill(int64_t n, const float* origins, const float* dirs, const float* t_start, const float* t_stop,
                      const MarchPartsParams& q, const int64_t* offsets, float* t_next, int64_t* ray_ids, float* t_begin,
                      float* t_end, int64_t* parts, float* points, void* stream);

// Samples of ray r are [offsets[r], offsets[r + 1]); color [S, channels]; weights [S] may be null.
void composite_forward(int64_t n, const int64_t* offsets, const float* sigma, const float* delta, const float* color,
                       int channels, float* weights, float* out, float* opacity, void* stream);
void composite_backward(int64_t n, const int64_t* offsets, const float* sigma, const float* delta,
                        const float* color, int channels, const float* out, const float* opacity, const float* v_out,
                        const float* v_opacity, float* v_sigma, float* v_color, void* stream);

// volume [C, res, res, res] at points [N, 3] -> out [N, C].
void lookup_volume(int64_t n, const float* points, const float* volume, const LookupParams& v, float* out, void* stream);

}  // namespace cuda
}  // namespace avatar
