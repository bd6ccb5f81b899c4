// CUDA kernel of the NeRF fields' layers: one thread per point, over the element math of field_mlp.h.
#include <cuda_runtime.h>

#include "cuda_launch.h"

namespace avatar {
namespace cuda {

namespace {

constexpr int kThreads = 128;

__global__ void field_mlp_kernel(int64_t n, FieldInputs features, FieldMlpParams p, float* __restrict__ density,
                                 float* __restrict__ colour) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float x[kFieldMaxInputs], c[3];
    for (int k = 0; k < p.inputs; ++k) x[k] = features.data[i * features.point_stride + k * features.feature_stride];
    field_mlp_point(p, x, density + i, c);
    if (!p.density_only)
        for (int ch = 0; ch < 3; ++ch) colour[3 * i + ch] = c[ch];
}

}  // namespace

void field_mlp_forward(int64_t n, const FieldInputs& features, const FieldMlpParams& p, float* density, float* colour,
                       void* stream) {
    if (n == 0) return;
    const unsigned int blocks = (unsigned int)((n + kThreads - 1) / kThreads);
    field_mlp_kernel<<<blocks, kThreads, 0, (cudaStream_t)stream>>>(n, features, p, density, colour);
}

}  // namespace cuda
}  // namespace avatar
