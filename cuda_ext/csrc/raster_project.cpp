// CPU loops over project.h: one Gaussian per iteration, forward and backward.
#include <string.h>

#include <vector>

#include "raster_cpu.h"

namespace avatar {
namespace cpu {

void project_forward(int64_t n, const float* means, const float* quats, const float* log_scales,
                     const float* opacity_logits, const Camera& cam, float* means2d, float* conics,
                     float* depths, float* opacities, int32_t* radii, int nthreads) {
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
        project_gaussian_fwd(means + 3 * i, quats + 4 * i, log_scales + 3 * i, opacity_logits[i], cam,
                             means2d + 2 * i, conics + 3 * i, depths + i, opacities + i, radii + 2 * i);
    }
}

void project_backward(int64_t n, const float* means, const float* quats, const float* log_scales,
                      const float* opacity_logits, const Camera& cam, const int32_t* radii,
                      const float* v_means2d, const float* v_conics, const float* v_depths,
                      const float* v_opacities, float* v_means, float* v_quats, float* v_log_scales,
                      float* v_opacity_logits, float* v_viewmat, float* v_K, int nthreads) {
    // The view-matrix gradient is a sum over all Gaussians. Summing fixed blocks in a fixed order
    // keeps it identical from run to run whatever the thread count.
    constexpr int64_t kBlock = 2048;
    const int64_t n_blocks = (n + kBlock - 1) / kBlock;
    std::vector<double> partial((size_t)n_blocks * 16, 0.0);
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int64_t blk = 0; blk < n_blocks; ++blk) {
        double* acc = partial.data() + blk * 16;
        const int64_t end = (blk + 1) * kBlock < n ? (blk + 1) * kBlock : n;
        for (int64_t i = blk * kBlock; i < end; ++i) {
            float* vm = v_means + 3 * i;
            float* vq = v_quats + 4 * i;
            float* vs = v_log_scales + 3 * i;
            if (radii[2 * i] <= 0 && radii[2 * i + 1] <= 0) {
                memset(vm, 0, 3 * sizeof(float));
                memset(vq, 0, 4 * sizeof(float));
                memset(vs, 0, 3 * sizeof(float));
                v_opacity_logits[i] = 0.f;
                continue;
            }
            float vR[9], vt[3], vK[4];
            project_gaussian_bwd(means + 3 * i, quats + 4 * i, log_scales + 3 * i, opacity_logits[i], cam,
                                 v_means2d + 2 * i, v_conics + 3 * i, v_depths[i], v_opacities[i], vm, vq, vs,
                                 v_opacity_logits + i, vR, vt, vK);
            for (int k = 0; k < 9; ++k) acc[k] += vR[k];
            for (int k = 0; k < 3; ++k) acc[9 + k] += vt[k];
            for (int k = 0; k < 4; ++k) acc[12 + k] += vK[k];
        }
    }
    double total[16] = {0};
    for (int64_t blk = 0; blk < n_blocks; ++blk)
        for (int k = 0; k < 16; ++k) total[k] += partial[blk * 16 + k];
    memset(v_viewmat, 0, 16 * sizeof(float));
    for (int r = 0; r < 3; ++r) {
        for (int c = 0; c < 3; ++c) v_viewmat[r * 4 + c] = (float)total[r * 3 + c];
        v_viewmat[r * 4 + 3] = (float)total[9 + r];
    }
    memset(v_K, 0, 9 * sizeof(float));
    v_K[0] = (float)total[12];
    v_K[4] = (float)total[13];
    v_K[2] = (float)total[14];
    v_K[5] = (float)total[15];
}

}  // namespace cpu
}  // namespace avatar
