#include "engine/memory_registry.h"

namespace sectorcrypt::engine {

void MemoryRegistry::init(std::size_t capacity) {
  entries_ = std::make_unique<Entry[]>(capacity);
  capacity_ = capacity;
  active_ = 0;
}

Status MemoryRegistry::reserve(const void* ptr, std::size_t len, uint32_t* entry) {
  const auto base = reinterpret_cast<std::uintptr_t>(ptr);
  uint32_t free_entry = kNone;
  for (uint32_t i = 0; i < capacity_; ++i) {
    const Entry& e = entries_[i];
    if (e.state == State::free) {
      if (free_entry == kNone) free_entry = i;
      continue;
    }
    if (base < e.base + e.len && e.base < base + len) {
      return Status::error(Errc::invalid_buffer,
                           "register_memory: [%p, +%zu) overlaps the registered range "
                           "[%p, +%zu)", ptr, len, reinterpret_cast<void*>(e.base), e.len);
    }
  }
  if (free_entry == kNone) {
    return Status::error(Errc::resource_exhausted,
                         "register_memory: all %zu ranges are registered "
                         "(EngineConfig::registration_capacity)", capacity_);
  }
  Entry& e = entries_[free_entry];
  e.base = base;
  e.len = len;
  e.state = State::pinning;
  *entry = free_entry;
  return Status();
}

void MemoryRegistry::activate(uint32_t entry) {
  entries_[entry].state = State::active;
  ++active_;
}

void MemoryRegistry::abandon(uint32_t entry) {
  Entry& e = entries_[entry];
  e.base = 0;
  e.len = 0;
  e.state = State::free;
}

Status MemoryRegistry::begin_unregister(const void* ptr, uint32_t* entry, std::size_t* len) {
  const auto base = reinterpret_cast<std::uintptr_t>(ptr);
  for (uint32_t i = 0; i < capacity_; ++i) {
    Entry& e = entries_[i];
    if (e.state != State::active || e.base != base) continue;
    const uint32_t refs = e.refs.load(std::memory_order_acquire);
    if (refs != 0) {
      return Status::error(Errc::would_block,
                           "unregister_memory: %u unfinished request segment(s) still use "
                           "the range at %p; wait for their completions and retry", refs, ptr);
    }
    e.state = State::unpinning;
    --active_;
    *entry = i;
    *len = e.len;
    return Status();
  }
  return Status::error(Errc::invalid_buffer,
                       "unregister_memory: no registered range starts at %p", ptr);
}

uint8_t MemoryRegistry::find(const iovec& seg) const {
  const auto p = reinterpret_cast<std::uintptr_t>(seg.iov_base);
  for (uint32_t i = 0; i < capacity_; ++i) {
    const Entry& e = entries_[i];
    if (e.state == State::active && p >= e.base && p - e.base <= e.len &&
        seg.iov_len <= e.len - (p - e.base)) {
      return static_cast<uint8_t>(i);
    }
  }
  return kNone;
}

bool MemoryRegistry::acquire(const iovec* src, uint32_t src_count, const iovec* dst,
                             uint32_t dst_count, uint8_t* src_entry, uint8_t* dst_entry) {
  if (active_ == 0) return false;
  for (uint32_t i = 0; i < src_count; ++i) {
    if ((src_entry[i] = find(src[i])) == kNone) return false;
  }
  for (uint32_t i = 0; i < dst_count; ++i) {
    if ((dst_entry[i] = find(dst[i])) == kNone) return false;
  }
  for (uint32_t i = 0; i < src_count; ++i) entries_[src_entry[i]].refs.fetch_add(1);
  for (uint32_t i = 0; i < dst_count; ++i) entries_[dst_entry[i]].refs.fetch_add(1);
  return true;
}

void MemoryRegistry::release(const uint8_t* entries, uint32_t count) {
  for (uint32_t i = 0; i < count; ++i) {
    entries_[entries[i]].refs.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace sectorcrypt::engine
