#include "host/nbdkit/range_lock.h"

namespace sectorcrypt::nbd {

bool RangeLock::overlaps_held(uint64_t begin, uint64_t end) const {
  for (const Range& r : held_) {
    if (begin < r.end && r.begin < end) return true;
  }
  return false;
}

void RangeLock::lock(uint64_t begin, uint64_t end) {
  std::unique_lock<std::mutex> guard(mutex_);
  released_.wait(guard, [&] { return !overlaps_held(begin, end); });
  held_.push_back({begin, end});
}

void RangeLock::unlock(uint64_t begin, uint64_t end) {
  {
    std::lock_guard<std::mutex> guard(mutex_);
    for (std::size_t i = 0; i < held_.size(); ++i) {
      if (held_[i].begin == begin && held_[i].end == end) {
        held_[i] = held_.back();
        held_.pop_back();
        break;
      }
    }
  }
  released_.notify_all();
}

std::size_t RangeLock::held() const {
  std::lock_guard<std::mutex> guard(mutex_);
  return held_.size();
}

}  // namespace sectorcrypt::nbd
