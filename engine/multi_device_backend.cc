#include "engine/multi_device_backend.h"

#include <cstdio>
#include <cstring>
#include <utility>

namespace sectorcrypt::engine {
namespace {

class MultiDeviceBackend final : public Backend {
 public:
  explicit MultiDeviceBackend(std::vector<std::unique_ptr<Backend>> devices)
      : devices_(std::move(devices)), n_(static_cast<uint32_t>(devices_.size())) {
    int at = std::snprintf(detail_, sizeof(detail_), "%u devices:", n_);
    for (uint32_t d = 0; d < n_ && at > 0 && static_cast<std::size_t>(at) < sizeof(detail_); ++d) {
      at += std::snprintf(detail_ + at, sizeof(detail_) - static_cast<std::size_t>(at),
                          "%s [%u] %s", d == 0 ? "" : ";", d, devices_[d]->detail());
    }
  }

  BackendKind kind() const override { return devices_[0]->kind(); }
  const char* detail() const override { return detail_; }
  bool registers_process_wide() const override { return devices_[0]->registers_process_wide(); }

  Status publish_key(uint32_t index, const XtsKey& key) override {
    for (uint32_t d = 0; d < n_; ++d) {
      if (Status s = devices_[d]->publish_key(index, key); !s) {
        for (uint32_t j = 0; j < d; ++j) devices_[j]->clear_key(index);
        return Status::error(s.code(), "device %u of %u: %s", d, n_, s.message());
      }
    }
    return Status();
  }
  void clear_key(uint32_t index) override {
    for (const auto& dev : devices_) dev->clear_key(index);
  }

  Status register_host(void* ptr, std::size_t len) override {
    if (registers_process_wide()) return devices_[0]->register_host(ptr, len);
    for (uint32_t d = 0; d < n_; ++d) {
      if (Status s = devices_[d]->register_host(ptr, len); !s) {
        for (uint32_t j = 0; j < d; ++j) devices_[j]->unregister_host(ptr);
        return Status::error(s.code(), "device %u of %u: %s", d, n_, s.message());
      }
    }
    return Status();
  }
  void unregister_host(void* ptr) override {
    if (registers_process_wide()) return devices_[0]->unregister_host(ptr);
    for (const auto& dev : devices_) dev->unregister_host(ptr);
  }

  Status check_device_buffer(const void* ptr, std::size_t len) const override {
    for (uint32_t d = 0; d < n_; ++d) {
      if (Status s = devices_[d]->check_device_buffer(ptr, len); !s) {
        if (n_ == 1) return s;
        return Status::error(s.code(),
                             "device-resident request on %u devices: a request's batches run "
                             "on every device (slot i on device i %% %u), so its memory must be "
                             "reachable from all of them; device %u: %s",
                             n_, n_, d, s.message());
      }
    }
    return Status();
  }

  // The device sees its own slot numbers (0 .. its slot count - 1); the engine's is put
  // back before the batch goes on. A batch with no slot (UINT32_MAX: crypted inline by
  // its caller, a CPU-only path) goes to device 0 as it is.
  void crypt(Batch& b) override { on_slot_device(b, &Backend::crypt); }
  void finish(Batch& b) override { on_slot_device(b, &Backend::finish); }

 private:
  // Calls (device.*step)(b) on the device that owns b's slot, with b.slot that device's
  // own number during the call.
  void on_slot_device(Batch& b, void (Backend::*step)(Batch&)) {
    if (b.slot == UINT32_MAX) return (devices_[0].get()->*step)(b);
    const uint32_t slot = b.slot;
    b.slot = slot / n_;
    (devices_[slot % n_].get()->*step)(b);
    b.slot = slot;
  }

  std::vector<std::unique_ptr<Backend>> devices_;
  uint32_t n_;
  char detail_[1024] = {};
};

}  // namespace

std::unique_ptr<Backend> make_multi_device_backend(std::vector<std::unique_ptr<Backend>> devices) {
  return std::make_unique<MultiDeviceBackend>(std::move(devices));
}

}  // namespace sectorcrypt::engine
