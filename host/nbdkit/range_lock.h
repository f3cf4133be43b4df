// Serialises requests over overlapping byte ranges only: a read-modify-write of an edge
// sector must not interleave with another write of that sector, but writes to other
// sectors go on in parallel (no global lock on the data path).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace sectorcrypt::nbd {

class RangeLock {
 public:
  // Waits until [begin, end) overlaps no held range, then holds it.
  void lock(uint64_t begin, uint64_t end);
  // Releases a range held by lock() with the same bounds.
  void unlock(uint64_t begin, uint64_t end);
  // Ranges held right now (for tests).
  std::size_t held() const;

 private:
  struct Range {
    uint64_t begin, end;
  };
  bool overlaps_held(uint64_t begin, uint64_t end) const;

  mutable std::mutex mutex_;
  std::condition_variable released_;
  std::vector<Range> held_;
};

// Holds a range for its lifetime.
class RangeGuard {
 public:
  RangeGuard(RangeLock& lock, uint64_t begin, uint64_t end)
      : lock_(lock), begin_(begin), end_(end) {
    lock_.lock(begin_, end_);
  }
  ~RangeGuard() { lock_.unlock(begin_, end_); }
  RangeGuard(const RangeGuard&) = delete;
  RangeGuard& operator=(const RangeGuard&) = delete;

 private:
  RangeLock& lock_;
  uint64_t begin_, end_;
};

}  // namespace sectorcrypt::nbd
