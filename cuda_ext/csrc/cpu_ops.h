// CPU entry points of the hash-grid triplane encoding, the fused deformation and volume rendering, over plain
// arrays (the rasteriser's are in raster_cpu.h).
#pragma once

#include <stdint.h>

#include "deform.h"
#include "field_mlp.h"
#include "hash_triplane.h"
#include "volume.h"

namespace avatar {
namespace cpu {

// points [N, 3] -> out [3 * levels * features, N] (feature-major; the op returns its transpose)
void hash_triplane_forward(int64_t n, const float* points, const float* tables, const HashTriplaneParams& p,
                           float* out, int nthreads);

// v_out is feature-major like the forward output. v_tables [3, levels, table_size, features]
// (zeroed by the caller) and v_points [N, 3] (written); either may be null when not needed.
void hash_triplane_backward(int64_t n, const float* points, const float* tables, const HashTriplaneParams& p,
                            const float* v_out, float* v_tables, float* v_points, int nthreads);

void deform_forward(int64_t n, const float* means, const float* quats, const float* log_scales,
                    const float* d_means, const float* d_quats, const float* d_log_scales, const RigidPose& pose,
                    float* out_means, float* out_quats, float* out_log_scales, int nthreads);

// v_pose [16]: R (9, row-major), t (3), q_pose (4), summed over all Gaussians.
void deform_backward(int64_t n, const float* means, const float* quats, const float* d_means,
                     const float* d_quats, const RigidPose& pose, const float* v_out_means,
                     const float* v_out_quats, const float* v_out_log_scales, float* v_means, float* v_quats,
                     float* v_log_scales, float* v_d_means, float* v_d_quats, float* v_d_log_scales,
                     float* v_pose, int nthreads);

// Volume rendering (volume.h). Marching is two passes: counts [R] and t_next [R], then, with
// offsets [R + 1] the running sum of the counts, the samples' ray ids and intervals.
void march_count(int64_t n, const float* origins, const float* dirs, const float* t_start, const float* t_stop, const MarchParams& m,
                 const uint8_t* grid, int64_t* counts, float* t_next, int nthreads);
void march_fill(int64_t n, const float* origins, const float* dirs, const float* t_start, const float* t_stop, const MarchParams& m,
                const uint8_t* grid, const int64_t* offsets, int64_t* ray_ids, float* t_begin, float* t_end,
                int nthreads);

// The same for several parts at once (march_parts_ray): t_next [P, R]; the samples' parts [S] and points [S, 3]
// (in their part's space). The fill pass writes t_next again, with the same values.
void march_parts_count(int64_t n, const float* origins, const float* dirs, const float* t_start, const float* t_stop,
                       const MarchPartsParams& q, int64_t* counts, float* t_next, int nthreads);
void march_parts_fill(int64_t n, const float* origins, const float* dirs, const float* t_start, const float* t_stop,
                      const MarchPartsParams& q, const int64_t* offsets, float* t_next, int64_t* ray_ids, float* t_begin,
                      float* t_end, int64_t* parts, float* points, int nthreads);

// Samples of ray r are [offsets[r], offsets[r + 1]); color [S, channels]; weights [S] may be null.
void composite_forward(int64_t n, const int64_t* offsets, const float* sigma, const float* delta, const float* color,
                       int channels, float* weights, float* out, float* opacity, int nthreads);
void composite_backward(int64_t n, const int64_t* offsets, const float* sigma, const float* delta,
                        const float* color, int channels, const float* out, const float* opacity, const float* v_out,
                        const float* v_opacity, float* v_sigma, float* v_color, int nthreads);

// The NeRF fields' layers (field_mlp.h): features (FieldInputs) -> density [N], colour [N, 3] (not
// written when p.density_only).
void field_mlp_forward(int64_t n, const FieldInputs& features, const FieldMlpParams& p, float* density, float* colour,
                       int nthreads);

// volume [C, res, res, res] at points [N, 3] -> out [N, C].
void lookup_volume(int64_t n, const float* points, const float* volume, const LookupParams& v, float* out, int nthreads);

}  // namespace cpu
}  // namespace avatar
