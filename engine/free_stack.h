// A lock-free stack of the indices 0..capacity-1 with many pushers and one popper at a
// time: the slot pool's free list (slot_pool.h). Any thread gives a slot back; only the
// holder of the engine mutex takes one. Last in, first out, so the slot whose batch
// descriptor and per-sector arrays were touched last, still in cache, is used next.
//
// A Treiber stack, without its ABA hazard: a pop reads the top and its `next`, then
// swings the top with a CAS; the top could only return to the same index with another
// `next` if that index had been popped and pushed again in between, and popping is the
// single popper's alone. Pushers only add above the top, which makes the CAS fail and
// the pop read again.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace sectorcrypt::engine {

class FreeStack {
 public:
  static constexpr uint32_t kEmpty = UINT32_MAX;

  void init(std::size_t capacity) {
    next_ = std::make_unique<std::atomic<uint32_t>[]>(capacity);
    top_.store(kEmpty);
  }

  // Any thread; `v` is not in the stack.
  void push(uint32_t v) {
    uint32_t t = top_.load(std::memory_order_relaxed);
    do {
      next_[v].store(t, std::memory_order_relaxed);
    } while (!top_.compare_exchange_weak(t, v, std::memory_order_release,
                                         std::memory_order_relaxed));
  }

  // The one popper at a time (serialised by the caller's lock).
  bool pop(uint32_t* out) {
    uint32_t t = top_.load(std::memory_order_acquire);
    while (t != kEmpty) {
      const uint32_t n = next_[t].load(std::memory_order_relaxed);
      if (top_.compare_exchange_weak(t, n, std::memory_order_acquire,
                                     std::memory_order_acquire)) {
        *out = t;
        return true;
      }
    }
    return false;
  }

  bool empty() const { return top_.load(std::memory_order_acquire) == kEmpty; }

 private:
  std::unique_ptr<std::atomic<uint32_t>[]> next_;
  alignas(64) std::atomic<uint32_t> top_{kEmpty};
};

}  // namespace sectorcrypt::engine
