// CPU loops over deform.h.
#include <string.h>

#include <vector>

#include "cpu_ops.h"

namespace avatar {
namespace cpu {

void deform_forward(int64_t n, const float* means, const float* quats, const float* log_scales,
                    const float* d_means, const float* d_quats, const float* d_log_scales, const RigidPose& pose,
                    float* out_means, float* out_quats, float* out_log_scales, int nthreads) {
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 2048)
    for (int64_t i = 0; i < n; ++i)
        deform_gaussian_fwd(means + 3 * i, quats + 4 * i, log_scales + 3 * i, d_means + 3 * i, d_quats + 4 * i,
                            d_log_scales + 3 * i, pose, out_means + 3 * i, out_quats + 4 * i,
                            out_log_scales + 3 * i);
}

void deform_backward(int64_t n, const float* means, const float* quats, const float* d_means,
                     const float* d_quats, const RigidPose& pose, const float* v_out_means,
                     const float* v_out_quats, const float* v_out_log_scales, float* v_means, float* v_quats,
                     float* v_log_scales, float* v_d_means, float* v_d_quats, float* v_d_log_scales,
                     float* v_pose, int nthreads) {
    // The pose gradient sums over every Gaussian: fixed blocks summed in order (in double) give
    // the same result whatever the thread count.
    constexpr int64_t kBlock = 4096;
    const int64_t n_blocks = (n + kBlock - 1) / kBlock;
    std::vector<double> partial((size_t)n_blocks * 16, 0.0);
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1)
    for (int64_t blk = 0; blk < n_blocks; ++blk) {
        double* acc = partial.data() + blk * 16;
        const int64_t end = (blk + 1) * kBlock < n ? (blk + 1) * kBlock : n;
        for (int64_t i = blk * kBlock; i < end; ++i) {
            float share[16];
            deform_gaussian_bwd(means + 3 * i, quats + 4 * i, d_means + 3 * i, d_quats + 4 * i, pose,
                                v_out_means + 3 * i, v_out_quats + 4 * i, v_out_log_scales + 3 * i,
                                v_means + 3 * i, v_quats + 4 * i, v_log_scales + 3 * i, v_d_means + 3 * i,
                                v_d_quats + 4 * i, v_d_log_scales + 3 * i, share);
            for (int k = 0; k < 16; ++k) acc[k] += share[k];
        }
    }
    double total[16] = {0};
    for (int64_t blk = 0; blk < n_blocks; ++blk)
        for (int k = 0; k < 16; ++k) total[k] += partial[blk * 16 + k];
    for (int k = 0; k < 16; ++k) v_pose[k] = (float)total[k];
}

}  // namespace cpu
}  // namespace avatar
