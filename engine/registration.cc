// Keys and registered memory: off the data path (they may take locks and, for CUDA,
// talk to the driver), but concurrent with requests.
#include "engine/engine_impl.h"

namespace sectorcrypt {

// ---- keys ----

Status Engine::add_key(const uint8_t* key, std::size_t len, KeyOptions options,
                       KeyHandle* out) {
  if (out == nullptr) return Status::error(Errc::invalid_buffer, "add_key: out is null");
  auto publish = [](void* ctx, uint32_t index, const XtsKey& k) {
    return static_cast<engine::Backend*>(ctx)->publish_key(index, k);
  };
  return impl_->keys.add(key, len, options, publish, impl_->backend.get(), out);
}

Status Engine::remove_key(KeyHandle key) {
  auto clear = [](void* ctx, uint32_t index) {
    static_cast<engine::Backend*>(ctx)->clear_key(index);
  };
  return impl_->keys.remove(key, clear, impl_->backend.get());
}

// ---- registered memory ----

// The backend pins outside mu (cudaHostRegister takes milliseconds per GB), between a
// reservation that keeps other registrations off the range and the activation that lets
// requests match it.
Status Engine::register_memory(void* ptr, std::size_t len) {
  Impl& m = *impl_;
  if (engine::in_callback_of(&m)) {
    return Status::error(Errc::unavailable, "register_memory() called from a completion callback");
  }
  if (ptr == nullptr) return Status::error(Errc::invalid_buffer, "register_memory: ptr is null");
  if (len == 0) return Status::error(Errc::invalid_length, "register_memory: len is 0");
  uint32_t entry = 0;
  {
    std::lock_guard lk(m.mu);
    if (Status s = m.registry.reserve(ptr, len, &entry); !s) return s;
  }
  const Status pinned = m.backend->register_host(ptr, len);
  std::lock_guard lk(m.mu);
  if (!pinned) {
    m.registry.abandon(entry);
    return pinned;
  }
  m.registry.activate(entry);
  return Status();
}

Status Engine::unregister_memory(void* ptr) {
  Impl& m = *impl_;
  if (engine::in_callback_of(&m)) {
    return Status::error(Errc::unavailable,
                         "unregister_memory() called from a completion callback");
  }
  uint32_t entry = 0;
  std::size_t len = 0;
  {
    std::lock_guard lk(m.mu);
    if (Status s = m.registry.begin_unregister(ptr, &entry, &len); !s) return s;
  }
  m.backend->unregister_host(ptr);
  std::lock_guard lk(m.mu);
  m.registry.finish_unregister(entry);
  return Status();
}

}  // namespace sectorcrypt
