// The engine's counters: fixed-size atomics, updated with relaxed adds on the data path
// (no locks, no allocation) and copied into an EngineStats snapshot on demand.
#pragma once

#include <atomic>
#include <cstdint>

#include "engine/engine.h"

namespace sectorcrypt::engine {

class EngineCounters {
 public:
  void add(std::atomic<uint64_t>& c, uint64_t v) { c.fetch_add(v, std::memory_order_relaxed); }
  void record_latency(uint64_t ns);
  // A request delivered: counted, its bytes if ok, its latency from acceptance.
  void completed(bool ok, uint64_t bytes, uint64_t latency_ns) {
    add(requests, 1);
    add(ok ? this->bytes : requests_failed, ok ? bytes : 1);
    record_latency(latency_ns);
  }
  EngineStats snapshot() const;

  std::atomic<uint64_t> bytes{0}, requests{0}, requests_failed{0}, batches{0}, parts{0};
  std::atomic<uint64_t> caller_batches{0};
  std::atomic<uint64_t> submit_waits{0}, submit_wait_ns{0}, would_block{0};
  std::atomic<uint64_t> admit_ns{0}, crypt_ns{0}, complete_ns{0};
  std::atomic<uint64_t> backend_failures{0}, cpu_fallbacks{0}, callback_exceptions{0};
  std::atomic<uint64_t> registered_requests{0}, device_requests{0};
  std::atomic<uint64_t> gpu_batches{0}, gpu_bytes{0};
  std::atomic<uint64_t> inline_requests{0};  // crypt_sync calls crypted on the caller
  bool memory_locked = false;  // set once at create

 private:
  std::atomic<uint64_t> latency_[LatencyHistogram::kBuckets] = {};
};

}  // namespace sectorcrypt::engine
