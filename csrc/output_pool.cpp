// The pool behind empty_output (output_pool.h): huge-page mappings for large CPU outputs, kept
// for the next output of the same size.
#include "output_pool.h"

#include <ATen/EmptyTensor.h>
#include <ATen/ops/empty.h>
#include <c10/core/CPUAllocator.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <utility>
#include <vector>

namespace neurodeploy {
namespace {

// A fresh [T, B, N] output is mapped page by page on first touch: with 4 KiB pages the faults
// cost several times the writing itself (13 MB here: 4.8 ms vs 0.5 ms), and glibc hands freed
// blocks of this size back to the kernel, so every call paid again, plus the kernel's zeroing of
// each new page. Large outputs therefore get their own 2 MiB-aligned mapping, advised as huge
// pages (THP mode "madvise", as c10 does under THP_MEM_ALLOC_ENABLE=1), and a freed mapping is
// kept for the next output of the same size (a training loop repeats its shapes) while the pool
// holds less than $NEURODEPLOY_KERNEL_POOL_MB (default 1024; 0 disables keeping).
class MappingPool {
 public:
  static MappingPool& get() {
    static MappingPool* pool = new MappingPool();  // never destroyed: tensors may outlive exit
    return *pool;
  }
  void* take(size_t len) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i = 0; i < free_.size(); ++i) {
      if (free_[i].second != len) continue;
      void* p = free_[i].first;
      free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(i));
      held_ -= len;
      return p;
    }
    return nullptr;
  }
  void give(void* p, size_t len) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (held_ + len <= limit_) {
        free_.emplace_back(p, len);
        held_ += len;
        return;
      }
    }
    munmap(p, len);
  }

 private:
  MappingPool() {
    const char* mb = std::getenv("NEURODEPLOY_KERNEL_POOL_MB");
    limit_ = (mb ? std::strtoull(mb, nullptr, 10) : 1024ull) << 20;
  }
  std::mutex mutex_;
  std::vector<std::pair<void*, size_t>> free_;
  size_t held_ = 0, limit_ = 0;
};

#if defined(__linux__) && defined(MADV_HUGEPAGE)
// A c10::Allocator (not at::from_blob), so that the tensors' storage stays an ordinary resizable
// one: a failed resize_ of a from_blob tensor leaves it with sizes beyond its memory.
struct PooledCpuAllocator final : c10::Allocator {
  static constexpr size_t kHuge = size_t(2) << 20;
  struct Block {
    void* data;
    size_t len;
  };
  static void release(void* ctx) {
    const Block* block = static_cast<Block*>(ctx);
    MappingPool::get().give(block->data, block->len);
    delete block;
  }
  c10::DataPtr allocate(size_t bytes) override {
    if (bytes < 2 * kHuge) return c10::GetCPUAllocator()->allocate(bytes);
    const size_t len = (bytes + kHuge - 1) & ~(kHuge - 1);
    void* p = MappingPool::get().take(len);
    if (p == nullptr) {
      void* raw = mmap(nullptr, len + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
      if (raw == MAP_FAILED) return c10::GetCPUAllocator()->allocate(bytes);
      const uintptr_t base = reinterpret_cast<uintptr_t>(raw);  // keep the aligned [p, p + len)
      const uintptr_t aligned = (base + kHuge - 1) & ~uintptr_t(kHuge - 1);
      if (aligned > base) munmap(raw, aligned - base);
      if (base + kHuge > aligned)
        munmap(reinterpret_cast<void*>(aligned + len), base + kHuge - aligned);
      p = reinterpret_cast<void*>(aligned);
      madvise(p, len, MADV_HUGEPAGE);  // advice: fine if refused
    }
    return {p, new Block{p, len}, &release, c10::Device(c10::DeviceType::CPU)};
  }
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }
};
#endif

}  // namespace

at::Tensor empty_output(at::IntArrayRef sizes, const at::TensorOptions& opts) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (opts.device().is_cpu()) {
    static PooledCpuAllocator allocator;
    return at::detail::empty_generic(sizes, &allocator, c10::DispatchKeySet(c10::DispatchKey::CPU),
                                     opts.dtype().toScalarType(), c10::nullopt);
  }
#endif
  return at::empty(sizes, opts);
}

}  // namespace neurodeploy
