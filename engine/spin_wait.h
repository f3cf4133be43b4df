// Bounded polling before a blocking wait. On a VM, a thread asleep in a futex on an idle
// vCPU starts tens of microseconds after it is woken, and the waker pays the wake-up
// syscall; a thread that is still polling when the event comes starts at once and costs
// the other side nothing. Every poller here gives up after a few tens of microseconds
// and then blocks as before, so an idle engine still sleeps.
#pragma once

#include <chrono>
#include <cstdint>
#include <thread>

namespace sectorcrypt::engine {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Polls ready() for up to `us` microseconds; true as soon as it returns true. Yields
// the vCPU now and then, so a runnable thread that would make ready() true (a submitter,
// a worker) is not held off by the poller.
template <class Ready>
bool spin_until(Ready&& ready, uint32_t us) {
  if (us == 0) return ready();
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
  for (unsigned i = 1;; ++i) {
    if (ready()) return true;
    if (i % 64 == 0) {
      if (std::chrono::steady_clock::now() >= until) return false;
      std::this_thread::yield();
    }
    cpu_relax();
  }
}

}  // namespace sectorcrypt::engine
