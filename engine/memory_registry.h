// The ranges of host memory the caller registered for DMA (Engine::register_memory), a
// fixed table sized at create. A request whose every segment lies inside active ranges
// takes a reference on each range it touches when it is accepted and drops it when it
// completes; a range with references cannot be unregistered, so the GPU never DMAs
// from memory its owner has taken back.
//
// Not synchronised: the engine calls everything but release() under its mutex (Impl::mu),
// so a range's state cannot change while a request is being matched against it.
// release() only decrements an atomic count: an unregister that reads zero under the
// mutex knows that no request can take a new reference before it is done.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "kernels/status.h"

namespace sectorcrypt::engine {

class MemoryRegistry {
 public:
  static constexpr uint8_t kNone = 0xff;  // a segment outside every range

  void init(std::size_t capacity);  // capacity <= 255
  std::size_t capacity() const { return capacity_; }

  // register_memory, step 1 (under mu): claims an entry for [ptr, ptr + len), not yet
  // matched by requests. RETURN VALUE: ok and *entry; invalid_buffer (overlaps a
  // range); resource_exhausted (table full).
  Status reserve(const void* ptr, std::size_t len, uint32_t* entry);
  // Step 2 (under mu), after the backend pinned it: requests may match it now. Or,
  // when the backend failed, the entry is freed again.
  void activate(uint32_t entry);
  void abandon(uint32_t entry);

  // unregister_memory, step 1 (under mu): the entry starting at ptr stops matching.
  // RETURN VALUE: ok, *entry, *len; invalid_buffer (no range starts there);
  // would_block (requests hold references: it stays active).
  Status begin_unregister(const void* ptr, uint32_t* entry, std::size_t* len);
  // Step 2 (under mu), after the backend unpinned it.
  void finish_unregister(uint32_t entry) { abandon(entry); }

  // Data path (under mu): true when every segment of both lists lies inside one
  // active range; then a reference is taken per segment and its entry written to
  // src_entry[i] / dst_entry[i]. False: nothing taken.
  bool acquire(const iovec* src, uint32_t src_count, const iovec* dst, uint32_t dst_count,
               uint8_t* src_entry, uint8_t* dst_entry);
  // Any thread, without mu: some range is registered (or was a moment ago). A request
  // accepted while this reads false predates every registration, so it needs no lookup.
  bool any_active() const { return active_.load(std::memory_order_acquire) != 0; }
  // Drops the references acquire() took (any thread).
  void release(const uint8_t* entries, uint32_t count);

  // At destruction, after shutdown: calls fn(ptr) for every range still registered
  // and forgets it, so no page stays pinned for memory its owner will free.
  template <class Fn>
  void unregister_all(Fn&& fn) {
    for (uint32_t i = 0; i < capacity_; ++i) {
      if (entries_[i].state != State::active) continue;
      fn(reinterpret_cast<void*>(entries_[i].base));
      --active_;
      abandon(i);
    }
  }

 private:
  enum class State : uint8_t { free, pinning, active, unpinning };
  struct Entry {
    std::uintptr_t base = 0;
    std::size_t len = 0;
    State state = State::free;
    std::atomic<uint32_t> refs{0};
  };
  uint8_t find(const iovec& seg) const;  // active entry holding seg, or kNone

  std::unique_ptr<Entry[]> entries_;
  std::size_t capacity_ = 0;
  // Changed under mu; read without it by any_active() (a channel's submit skips the
  // lock while nothing is registered).
  std::atomic<std::size_t> active_{0};
};

}  // namespace sectorcrypt::engine
