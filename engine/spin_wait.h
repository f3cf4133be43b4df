// Bounded polling before a blocking wait. On a VM, a thread asleep in a futex on an idle
// vCPU starts tens of microseconds after it is woken, and the waker pays the wake-up
// syscall; a thread that is still polling when the event comes starts at once and costs
// the other side nothing. Every poller here gives up after idle_spin_us and then blocks
// as before, so an idle engine still sleeps.
#pragma once

#include <chrono>
#include <cstdint>
#include <thread>

namespace sectorcrypt::engine {

// Polls ready() for up to `us` microseconds; true as soon as it returns true. Each poll
// yields the vCPU: with more runnable threads than vCPUs (a submitter and two workers
// on two vCPUs) the thread that would make ready() true runs instead of the poller.
// Yielding every poll measured best on the 2-vCPU VM against a pause loop that yields
// every 8 or 64 polls, or never (bench/results/engine_bench.md).
template <class Ready>
bool spin_until(Ready&& ready, uint32_t us) {
  if (us == 0) return ready();
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
  for (;;) {
    if (ready()) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::yield();
  }
}

}  // namespace sectorcrypt::engine
