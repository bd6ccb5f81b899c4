// The NeRF fields' layers after the encoding, wherever no gradient is taken (rendering, training's density-only
// rounds, occupancy updates): the element math shared by the CPU loops and the CUDA kernel.
//
// One point's features x [inputs] go through
//   first  = W_in x + b_in                                  [width + groups]
//   first[:width] += sum_g sigmoid(first[width + g]) vectors[g]   (the head's gated region vectors; groups may be 0)
//   hidden = relu(W_hidden relu(first[:width]) + b_hidden)   [width]
//   raw    = W_out hidden + b_out                            [4]
//   density = softplus(raw[0] + density_shift), colour = sigmoid(raw[1:4])
// with every matrix row-major [out, in] (torch's Linear layout). Feature k of point i is at
// features[i * point_stride + k * feature_stride] (FieldInputs): the CPU encoding writes them feature-major.
//
// Written once over a lane type, like hash_triplane.h: float (one point: the CUDA threads and the CPU's scalar
// tail) or sixteen points in one vector (the CPU's loop, AVX-512 or AVX2 pairs; its MlpLanes lives in
// field_mlp_cpu.cpp).
#pragma once

#include "common.h"

namespace avatar {

constexpr int kFieldMaxInputs = 256;
constexpr int kFieldMaxWidth = 128;
constexpr int kFieldMaxGroups = 8;
constexpr int kFieldBlock = 8;  // outputs accumulated together: independent chains keep the multipliers busy

struct FieldMlpParams {
    int inputs, width, groups;
    float density_shift;
    bool density_only;   // only raw[0] is computed and only density written
    const float* w_in;   // [width + groups, inputs]
    const float* b_in;   // [width + groups]
    const float* vectors;  // [groups, width] (unused when groups is 0)
    const float* w_hidden;  // [width, width]
    const float* b_hidden;  // [width]
    const float* w_out;  // [4, width]
    const float* b_out;  // [4]
};

struct FieldInputs {
    const float* data;
    int64_t point_stride, feature_stride;
};

template <class Real>
struct MlpLanes;

template <>
struct MlpLanes<float> {
    static AVATAR_HD float splat(float x) { return x; }
    static AVATAR_HD float fma(float a, float b, float c) { return fmaf(a, b, c); }
    static AVATAR_HD float relu(float x) { return max_f(x, 0.f); }
    static AVATAR_HD float sigmoid(float x) { return 1.f / (1.f + expf(-x)); }
    // log(1 + e^x) without overflow: max(x, 0) + log(1 + e^-|x|)
    static AVATAR_HD float softplus(float x) { return max_f(x, 0.f) + log1pf(expf(-fabsf(x))); }
};

// out[o] = b[o] + sum_k w[o * inputs + k] x[k] for o in [0, rows), kFieldBlock rows at a time.
template <class Real>
AVATAR_HD void field_dense(const float* w, const float* b, int rows, int inputs, const Real* x, Real* out) {
    typedef MlpLanes<Real> Ln;
    int o = 0;
    for (; o + kFieldBlock <= rows; o += kFieldBlock) {
        Real acc[kFieldBlock];
        for (int j = 0; j < kFieldBlock; ++j) acc[j] = Ln::splat(b[o + j]);
        for (int k = 0; k < inputs; ++k) {
            const Real xk = x[k];
            for (int j = 0; j < kFieldBlock; ++j) acc[j] = Ln::fma(Ln::splat(w[(o + j) * inputs + k]), xk, acc[j]);
        }
        for (int j = 0; j < kFieldBlock; ++j) out[o + j] = acc[j];
    }
    for (; o < rows; ++o) {
        Real acc = Ln::splat(b[o]);
        for (int k = 0; k < inputs; ++k) acc = Ln::fma(Ln::splat(w[o * inputs + k]), x[k], acc);
        out[o] = acc;
    }
}

// One point's (or one vector of points') layers: x [inputs] -> density, colour[3] (colour untouched when
// p.density_only).
template <class Real>
AVATAR_HD void field_mlp_point(const FieldMlpParams& p, const Real* x, Real* density, Real* colour) {
    typedef MlpLanes<Real> Ln;
    Real first[kFieldMaxWidth + kFieldMaxGroups];
    Real hidden[kFieldMaxWidth];
    field_dense(p.w_in, p.b_in, p.width + p.groups, p.inputs, x, first);
    for (int g = 0; g < p.groups; ++g) {
        const Real gate = Ln::sigmoid(first[p.width + g]);
        const float* v = p.vectors + g * p.width;
        for (int o = 0; o < p.width; ++o) first[o] = Ln::fma(gate, Ln::splat(v[o]), first[o]);
    }
    for (int o = 0; o < p.width; ++o) first[o] = Ln::relu(first[o]);
    field_dense(p.w_hidden, p.b_hidden, p.width, p.width, first, hidden);
    for (int o = 0; o < p.width; ++o) hidden[o] = Ln::relu(hidden[o]);
    Real raw[4];
    field_dense(p.w_out, p.b_out, p.density_only ? 1 : 4, p.width, hidden, raw);
    *density = Ln::softplus(raw[0] + Ln::splat(p.density_shift));
    if (!p.density_only)
        for (int c = 0; c < 3; ++c) colour[c] = Ln::sigmoid(raw[1 + c]);
}

}  // namespace avatar
