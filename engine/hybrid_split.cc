#include "engine/hybrid_split.h"

namespace sectorcrypt::engine {

Side HybridSplit::choose(uint64_t bytes, bool has_device_part) {
  std::lock_guard lock(mu_);
  Side side = Side::cpu;
  if (has_device_part) {
    side = Side::gpu;
  } else if (bytes < min_gpu_bytes_) {
    side = Side::cpu;
  } else if (gpu_percent_ >= 0) {
    // To the GPU while its share of the bytes, this batch included, stays within
    // gpu_percent: 0 never, 100 always, 50 every other batch of equal size.
    const uint64_t total = gpu_.forced_bytes + cpu_.forced_bytes + bytes;
    side = (gpu_.forced_bytes + bytes) * 100 <= total * static_cast<uint64_t>(gpu_percent_)
               ? Side::gpu
               : Side::cpu;
    of(side).forced_bytes += bytes;
  } else {
    const double gpu_done = static_cast<double>(gpu_.in_flight_bytes + bytes) / gpu_.rate;
    const double cpu_done = static_cast<double>(cpu_.in_flight_bytes + bytes) / cpu_.rate;
    side = gpu_done <= cpu_done ? Side::gpu : Side::cpu;
  }
  SideState& s = of(side);
  s.in_flight_bytes += bytes;
  ++s.in_flight_batches;
  return side;
}

void HybridSplit::done(Side side, uint64_t bytes, uint64_t ns) {
  std::lock_guard lock(mu_);
  SideState& s = of(side);
  const double concurrency = s.in_flight_batches;  // this batch included
  s.in_flight_bytes -= bytes;
  --s.in_flight_batches;
  if (ns == 0 || bytes == 0) return;
  const double sample = static_cast<double>(bytes) / static_cast<double>(ns) * concurrency;
  s.rate += (sample - s.rate) / 8;
}

void HybridSplit::moved(Side from, uint64_t bytes) {
  std::lock_guard lock(mu_);
  SideState& s = of(from);
  s.in_flight_bytes -= bytes;
  --s.in_flight_batches;
  SideState& t = of(from == Side::gpu ? Side::cpu : Side::gpu);
  t.in_flight_bytes += bytes;
  ++t.in_flight_batches;
}

double HybridSplit::rate(Side side) const {
  std::lock_guard lock(mu_);
  return of(side).rate;
}

}  // namespace sectorcrypt::engine
