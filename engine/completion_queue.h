// The polled completion queue: a fixed-capacity ring of Completion, filled by the
// complete stage and emptied by poll()/wait_completions(). Its capacity equals the number
// of request records, and a posted request's record is freed only when its completion
// is polled, so the ring can never overflow (and never needs to grow).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "engine/engine.h"
#include "engine/fixed_ring.h"

namespace sectorcrypt::engine {

class CompletionQueue {
 public:
  struct Entry {
    Completion completion;
    uint32_t record = 0;  // freed by the engine once polled
  };

  void init(std::size_t capacity) { ring_.init(capacity); }

  // false only if the invariant above is broken.
  bool push(const Completion& c, uint32_t record);

  // Moves up to max entries out; waits up to timeout (if > 0) for the first one, polling
  // for the first min(timeout, spin_us) of it before sleeping. Returns how many.
  std::size_t pop(Entry* out, std::size_t max, std::chrono::microseconds timeout,
                  uint32_t spin_us = 0);

  // Wakes waiters for good: nothing more will be pushed.
  void close();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  FixedRing<Entry> ring_;
  bool closed_ = false;
  std::size_t waiters_ = 0;
  std::atomic<std::size_t> size_{0};  // ring_.size(), readable without mu_ (polling)
};

}  // namespace sectorcrypt::engine
