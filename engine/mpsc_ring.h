// A bounded lock-free ring of uint32_t with many producers and one consumer: a channel's
// completions, posted by whichever thread finished a request and reaped by the channel's
// owner. Each cell carries a sequence number (Vyukov's bounded queue): a producer claims
// a position with one CAS on the tail and publishes the cell by storing its sequence; the
// consumer reads cells in order and hands each back to the producers one lap later.
// Sized once (init); never grows. Sized to hold every record that can be posted at once,
// so push never finds it full.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace sectorcrypt::engine {

class MpscRing {
 public:
  void init(std::size_t capacity) {
    cap_ = std::bit_ceil(capacity < 2 ? std::size_t{2} : capacity);
    cells_ = std::make_unique<Cell[]>(cap_);
    reset();
  }
  // Only while nobody pushes or pops (a channel being opened).
  void reset() {
    for (std::size_t i = 0; i < cap_; ++i) cells_[i].seq.store(i, std::memory_order_relaxed);
    tail_.store(0, std::memory_order_relaxed);
    head_ = 0;
  }

  // Any thread. false only when full (the owner sizes the ring so that it cannot be).
  bool push(uint32_t v) {
    std::size_t pos = tail_.load(std::memory_order_relaxed);
    for (;;) {
      Cell& c = cells_[pos & (cap_ - 1)];
      const std::size_t seq = c.seq.load(std::memory_order_acquire);
      const auto dif = static_cast<std::ptrdiff_t>(seq - pos);
      if (dif == 0) {
        if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          c.value = v;
          c.seq.store(pos + 1, std::memory_order_release);
          return true;
        }
      } else if (dif < 0) {
        return false;
      } else {
        pos = tail_.load(std::memory_order_relaxed);
      }
    }
  }

  // The consumer only.
  bool pop(uint32_t* out) {
    Cell& c = cells_[head_ & (cap_ - 1)];
    if (c.seq.load(std::memory_order_acquire) != head_ + 1) return false;
    *out = c.value;
    c.seq.store(head_ + cap_, std::memory_order_release);
    ++head_;
    return true;
  }
  // The consumer only: a pop would succeed now.
  bool ready() const {
    return cells_[head_ & (cap_ - 1)].seq.load(std::memory_order_acquire) == head_ + 1;
  }

 private:
  struct alignas(16) Cell {
    std::atomic<std::size_t> seq{0};
    uint32_t value = 0;
  };
  std::unique_ptr<Cell[]> cells_;
  std::size_t cap_ = 0;
  alignas(64) std::atomic<std::size_t> tail_{0};  // producers
  alignas(64) std::size_t head_ = 0;              // the consumer
};

}  // namespace sectorcrypt::engine
