#include "engine/key_table.h"

namespace sectorcrypt::engine {
namespace {

KeyHandle make_handle(uint32_t index, uint32_t gen) {
  return KeyHandle{(static_cast<uint64_t>(gen) << 32) | index};
}

}  // namespace

void KeyTable::init(std::size_t capacity) {
  entries_ = std::make_unique<Entry[]>(capacity);
  capacity_ = capacity;
}

Status KeyTable::add(const uint8_t* key, std::size_t len, KeyOptions options,
                     PublishHook hook, void* ctx, KeyHandle* out) {
  if (key == nullptr) return Status::error(Errc::invalid_key, "key pointer is null");
  // Validate first: a bad key is invalid_key even when the table is full.
  XtsKey parsed;
  if (Status s = XtsKey::create(key, len, &parsed, options); !s) return s;
  std::lock_guard lock(mu_);
  for (std::size_t i = 0; i < capacity_; ++i) {
    Entry& e = entries_[i];
    const uint32_t gen = e.gen.load(std::memory_order_acquire);
    // refs can be briefly non-zero on a free entry: a racing acquire() backing out.
    if ((gen & 1) != 0 || e.refs.load(std::memory_order_acquire) != 0) continue;
    e.key = parsed;  // XtsKey zeroes `parsed` when it goes out of scope
    const auto index = static_cast<uint32_t>(i);
    if (hook != nullptr) {
      if (Status s = hook(ctx, index, e.key); !s) {
        e.key.clear();
        return s;
      }
    }
    e.gen.store(gen + 1, std::memory_order_release);
    *out = make_handle(index, gen + 1);
    return Status();
  }
  return Status::error(Errc::resource_exhausted,
                       "key table is full (%zu keys; EngineConfig::key_capacity)", capacity_);
}

Status KeyTable::acquire(KeyHandle handle, uint32_t* index) {
  const auto i = static_cast<uint32_t>(handle.value & 0xffffffffu);
  const auto gen = static_cast<uint32_t>(handle.value >> 32);
  if (!handle.valid() || (gen & 1) == 0 || i >= capacity_) {
    return Status::error(Errc::invalid_key, "key handle %#llx is not a handle of this engine",
                         static_cast<unsigned long long>(handle.value));
  }
  Entry& e = entries_[i];
  // Reference first, then check: remove() publishes "dead" first, then checks refs, so
  // one of the two always sees the other (both seq_cst).
  e.refs.fetch_add(1);
  if (e.gen.load() != gen) {
    e.refs.fetch_sub(1);
    return Status::error(Errc::invalid_key, "key handle %#llx was removed",
                         static_cast<unsigned long long>(handle.value));
  }
  *index = i;
  return Status();
}

Status KeyTable::remove(KeyHandle handle, ClearHook hook, void* ctx) {
  const auto i = static_cast<uint32_t>(handle.value & 0xffffffffu);
  const auto gen = static_cast<uint32_t>(handle.value >> 32);
  std::lock_guard lock(mu_);
  if (!handle.valid() || (gen & 1) == 0 || i >= capacity_ || entries_[i].gen.load() != gen) {
    return Status::error(Errc::invalid_key, "key handle %#llx is unknown or already removed",
                         static_cast<unsigned long long>(handle.value));
  }
  Entry& e = entries_[i];
  e.gen.store(gen + 1);  // dead: new acquires fail from here on
  if (const uint32_t refs = e.refs.load(); refs != 0) {
    e.gen.store(gen);  // still in use: keep it
    return Status::error(Errc::would_block,
                         "key is in use by %u accepted requests; drain() first or retry", refs);
  }
  if (hook != nullptr) hook(ctx, i);
  e.key.clear();
  return Status();
}

}  // namespace sectorcrypt::engine
