#include "engine/hybrid_backend.h"

#include <chrono>
#include <cstdio>

#include "engine/hybrid_split.h"

namespace sectorcrypt::engine {
namespace {

class HybridBackend final : public Backend {
 public:
  HybridBackend(std::unique_ptr<Backend> gpu, std::unique_ptr<Backend> cpu, int gpu_percent,
                uint64_t min_gpu_bytes)
      : gpu_(std::move(gpu)), cpu_(std::move(cpu)), split_(gpu_percent, min_gpu_bytes) {
    std::snprintf(detail_, sizeof(detail_), "hybrid: %.160s + %.96s, split %s", gpu_->detail(),
                  cpu_->detail(), gpu_percent < 0 ? "adaptive" : "forced");
  }

  BackendKind kind() const override { return BackendKind::hybrid; }
  const char* detail() const override { return detail_; }

  Status publish_key(uint32_t index, const XtsKey& key) override {
    if (Status s = gpu_->publish_key(index, key); !s) return s;
    if (Status s = cpu_->publish_key(index, key); !s) {
      gpu_->clear_key(index);  // never half published
      return s;
    }
    return Status();
  }
  void clear_key(uint32_t index) override {
    gpu_->clear_key(index);
    cpu_->clear_key(index);
  }
  Status register_host(void* ptr, std::size_t len) override {
    return gpu_->register_host(ptr, len);
  }
  void unregister_host(void* ptr) override { gpu_->unregister_host(ptr); }
  Status check_device_buffer(const void* ptr, std::size_t len) const override {
    return gpu_->check_device_buffer(ptr, len);
  }

  void crypt(Batch& b) override {
    bool device = false;
    for (uint32_t k = 0; k < b.part_count; ++k) {
      device = device || b.parts[k].req->memory == MemoryKind::device;
    }
    const Side side = split_.choose(b.used, device);
    const auto t0 = std::chrono::steady_clock::now();
    (side == Side::gpu ? *gpu_ : *cpu_).crypt(b);
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::steady_clock::now() - t0).count();
    split_.done(side, b.used, static_cast<uint64_t>(ns));
  }

  void finish(Batch& b) override { (b.on_gpu ? *gpu_ : *cpu_).finish(b); }

 private:
  std::unique_ptr<Backend> gpu_, cpu_;
  HybridSplit split_;
  char detail_[300] = {};
};

}  // namespace

std::unique_ptr<Backend> make_hybrid_backend(std::unique_ptr<Backend> gpu,
                                             std::unique_ptr<Backend> cpu, int gpu_percent,
                                             uint64_t min_gpu_bytes) {
  return std::make_unique<HybridBackend>(std::move(gpu), std::move(cpu), gpu_percent,
                                         min_gpu_bytes);
}

}  // namespace sectorcrypt::engine
