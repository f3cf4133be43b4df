#include "engine/engine_stats.h"

#include <bit>

namespace sectorcrypt {

uint64_t LatencyHistogram::count() const {
  uint64_t n = 0;
  for (uint64_t b : buckets) n += b;
  return n;
}

uint64_t LatencyHistogram::quantile_ns(double q) const {
  const uint64_t n = count();
  if (n == 0) return 0;
  if (q < 0) q = 0;
  if (q > 1) q = 1;
  // The rank of the q-quantile, 1-based, rounded up (p99 of 100 samples: the 99th).
  uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(n) + 0.999999);
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    seen += buckets[i];
    if (seen >= rank) return i == 0 ? 0 : (i >= 64 ? UINT64_MAX : (uint64_t{1} << i) - 1);
  }
  return UINT64_MAX;
}

namespace engine {

void EngineCounters::record_latency(uint64_t ns) {
  // Bucket i holds [2^(i-1), 2^i): the bit width of ns; 2^63 and above share the top.
  std::size_t i = static_cast<std::size_t>(std::bit_width(ns));
  if (i >= LatencyHistogram::kBuckets) i = LatencyHistogram::kBuckets - 1;
  latency_[i].fetch_add(1, std::memory_order_relaxed);
}

EngineStats EngineCounters::snapshot() const {
  EngineStats s;
  auto ld = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  s.bytes = ld(bytes);
  s.requests = ld(requests);
  s.requests_failed = ld(requests_failed);
  s.batches = ld(batches);
  s.caller_batches = ld(caller_batches);
  s.parts = ld(parts);
  s.submit_waits = ld(submit_waits);
  s.submit_wait_ns = ld(submit_wait_ns);
  s.would_block = ld(would_block);
  s.admit_ns = ld(admit_ns);
  s.crypt_ns = ld(crypt_ns);
  s.complete_ns = ld(complete_ns);
  s.memory_locked = memory_locked;
  s.backend_failures = ld(backend_failures);
  s.cpu_fallbacks = ld(cpu_fallbacks);
  s.callback_exceptions = ld(callback_exceptions);
  s.registered_requests = ld(registered_requests);
  s.device_requests = ld(device_requests);
  s.gpu_batches = ld(gpu_batches);
  s.gpu_bytes = ld(gpu_bytes);
  s.inline_requests = ld(inline_requests);
  for (std::size_t i = 0; i < LatencyHistogram::kBuckets; ++i) {
    s.latency.buckets[i] = ld(latency_[i]);
  }
  return s;
}

}  // namespace engine
}  // namespace sectorcrypt
