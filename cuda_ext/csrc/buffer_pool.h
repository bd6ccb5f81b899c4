// Recycled memory for the kernels' large CPU outputs (images, per-pixel state, tile lists).
//
// A fresh multi-megabyte tensor each frame costs thousands of page faults: glibc hands big
// allocations back to the OS on free, so the next frame faults every page in again (measured
// ~3,400 faults and ~10 ms of system time per 512x512 forward pass). Tensors made here keep
// their memory in a small pool when they die instead, and the next frame takes it back. Only
// buffers of at least kMinBytes are pooled, and at most kMaxHeldBytes are kept idle.
//
// Included by bindings.cpp only (it needs torch).
#pragma once

#include <torch/extension.h>

#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace avatar {

class BufferPool {
  public:
    static constexpr size_t kMinBytes = 256 * 1024;
    static constexpr size_t kMaxHeldBytes = 256u * 1024 * 1024;

    void* acquire(size_t bytes) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            auto it = idle_.find(bytes);
            if (it != idle_.end() && !it->second.empty()) {
                void* p = it->second.back();
                it->second.pop_back();
                held_ -= bytes;
                return p;
            }
        }
        void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
        TORCH_CHECK(p != nullptr, "out of memory allocating ", bytes, " bytes");
        return p;
    }

    void release(void* p, size_t bytes) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (held_ + bytes <= kMaxHeldBytes) {
                idle_[bytes].push_back(p);
                held_ += bytes;
                return;
            }
        }
        std::free(p);
    }

    // Lives for the whole process: tensors may die during interpreter shutdown.
    static BufferPool& instance() {
        static BufferPool* pool = new BufferPool();
        return *pool;
    }

  private:
    std::mutex mutex_;
    std::unordered_map<size_t, std::vector<void*>> idle_;
    size_t held_ = 0;
};

// torch::empty on the CPU, with the memory recycled through the pool for large tensors.
inline torch::Tensor pooled_empty(at::IntArrayRef sizes, const torch::TensorOptions& options) {
    int64_t numel = 1;
    for (int64_t s : sizes) numel *= s;
    const size_t bytes = (size_t)numel * c10::elementSize(c10::typeMetaToScalarType(options.dtype()));
    if (bytes < BufferPool::kMinBytes || !options.device().is_cpu()) return torch::empty(sizes, options);
    void* p = BufferPool::instance().acquire(bytes);
    return torch::from_blob(p, sizes, [bytes](void* q) { BufferPool::instance().release(q, bytes); }, options);
}

inline torch::Tensor pooled_zeros(at::IntArrayRef sizes, const torch::TensorOptions& options) {
    torch::Tensor t = pooled_empty(sizes, options);
    t.zero_();
    return t;
}

}  // namespace avatar
