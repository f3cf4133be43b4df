// The engine's key table: a fixed number of expanded XTS keys, addressed by handles
// that carry a generation so a stale handle is refused after its entry is reused.
//
// add/remove are off the data path (one mutex). The data path only acquire()s an entry
// (a reference count, lock-free) at submit and release()s it at completion; remove is
// refused while references are held, so a key never changes under a running batch.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

#include "engine/engine.h"
#include "kernels/xts_key.h"

namespace sectorcrypt::engine {

class KeyTable {
 public:
  // Called with the new entry before it is published (e.g. to upload it to the GPU);
  // an error aborts the add.
  using PublishHook = Status (*)(void* ctx, uint32_t index, const XtsKey& key);
  // Called with an entry being zeroed (e.g. to zero the GPU copy).
  using ClearHook = void (*)(void* ctx, uint32_t index);

  void init(std::size_t capacity);
  std::size_t capacity() const { return capacity_; }

  Status add(const uint8_t* key, std::size_t len, KeyOptions options, PublishHook hook,
             void* ctx, KeyHandle* out);
  Status remove(KeyHandle handle, ClearHook hook, void* ctx);

  // Data path: takes a reference on a live entry. RETURN VALUE: ok and *index, or
  // invalid_key for an unknown, stale or removed handle.
  Status acquire(KeyHandle handle, uint32_t* index);
  void release(uint32_t index) { entries_[index].refs.fetch_sub(1, std::memory_order_acq_rel); }
  const XtsKey& key(uint32_t index) const { return entries_[index].key; }

 private:
  struct Entry {
    XtsKey key;
    std::atomic<uint32_t> gen{0};   // odd: live; even: free
    std::atomic<uint32_t> refs{0};  // accepted, unfinished requests using the entry
  };
  std::unique_ptr<Entry[]> entries_;
  std::size_t capacity_ = 0;
  std::mutex mu_;  // add/remove only
};

}  // namespace sectorcrypt::engine
