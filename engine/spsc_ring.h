// A bounded lock-free ring of uint32_t with one producer and one consumer at a time: a
// channel's submission ring, filled by the channel's owner and emptied by the admit
// stage (whichever worker holds the engine mutex, so consumers follow one another and
// never overlap). The producer writes the cell, then publishes it by moving the tail;
// the consumer's head is its own. Sized once (init) to hold every record that can be
// queued at once, so push never finds it full and never needs to read the head.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace sectorcrypt::engine {

class SpscRing {
 public:
  void init(std::size_t capacity) {
    cap_ = std::bit_ceil(capacity < 2 ? std::size_t{2} : capacity);
    cells_ = std::make_unique<uint32_t[]>(cap_);
  }

  // The producer only. Never more than `capacity` values between push and pop. The
  // tail's store is seq_cst: a consumer that then clears a "scheduled" flag and looks
  // again (channel_intake.cc) must not miss it.
  void push(uint32_t v) {
    const std::size_t t = tail_.load(std::memory_order_relaxed);
    cells_[t & (cap_ - 1)] = v;
    tail_.store(t + 1, std::memory_order_seq_cst);
  }

  // The consumer only.
  bool pop(uint32_t* out) {
    if (tail_.load(std::memory_order_acquire) == head_) return false;
    *out = cells_[head_ & (cap_ - 1)];
    ++head_;
    return true;
  }
  bool ready() const { return tail_.load(std::memory_order_seq_cst) != head_; }

 private:
  std::unique_ptr<uint32_t[]> cells_;
  std::size_t cap_ = 0;
  alignas(64) std::atomic<std::size_t> tail_{0};  // the producer
  alignas(64) std::size_t head_ = 0;              // the consumer
};

}  // namespace sectorcrypt::engine
