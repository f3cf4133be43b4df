#include "engine/completion_queue.h"

#include <algorithm>

#include "engine/spin_wait.h"

namespace sectorcrypt::engine {

bool CompletionQueue::push(const Completion& c, uint32_t record) {
  std::lock_guard lock(mu_);
  if (!ring_.push(Entry{c, record})) return false;
  size_.store(ring_.size(), std::memory_order_release);
  if (waiters_ != 0) cv_.notify_one();
  return true;
}

std::size_t CompletionQueue::pop(Entry* out, std::size_t max,
                                 std::chrono::microseconds timeout, uint32_t spin_us) {
  if (timeout.count() > 0 && spin_us != 0) {
    const auto spin = static_cast<uint32_t>(
        std::min<int64_t>(spin_us, static_cast<int64_t>(timeout.count())));
    (void)spin_until([&] { return size_.load(std::memory_order_acquire) != 0; }, spin);
  }
  std::unique_lock lock(mu_);
  if (ring_.empty() && timeout.count() > 0 && !closed_) {
    ++waiters_;
    cv_.wait_for(lock, timeout, [&] { return !ring_.empty() || closed_; });
    --waiters_;
  }
  std::size_t n = 0;
  while (n < max && ring_.pop(&out[n])) ++n;
  size_.store(ring_.size(), std::memory_order_release);
  return n;
}

void CompletionQueue::close() {
  std::lock_guard lock(mu_);
  closed_ = true;
  cv_.notify_all();
}

}  // namespace sectorcrypt::engine
