// Which side of a hybrid engine crypts a batch: the CPU (the worker itself, on the CPU
// kernels) or the GPU (the cuda backend's slot, stream and copy engines).
//
//   - a batch with a device-resident part: the GPU (the CPU cannot reach it);
//   - a batch under min_gpu_bytes: the CPU, where a GPU round trip (tens of
//     microseconds) would only add latency;
//   - gpu_percent 0..100: that share of the bytes of the other batches goes to the GPU,
//     exactly, whatever the sides deliver (tests force every split with it);
//   - else adaptive: the side that would finish the batch sooner, judged by the bytes it
//     has in flight and what it delivered so far in this run. A side's delivery rate is
//     an average, over its recent batches, of batch bytes / batch time x the batches it
//     had in flight (by Little's law, its throughput while busy); both start from a
//     guess (kInitialRate) and converge within a few batches.
// Thread-safe: workers choose and report concurrently (one short lock per batch, not per
// request).
#pragma once

#include <cstdint>
#include <mutex>

namespace sectorcrypt::engine {

enum class Side : uint8_t { cpu, gpu };

class HybridSplit {
 public:
  static constexpr double kInitialRate = 1.0;  // bytes per ns (1 GB/s), either side

  // gpu_percent: -1 adaptive, else 0..100.
  HybridSplit(int gpu_percent, uint64_t min_gpu_bytes)
      : gpu_percent_(gpu_percent), min_gpu_bytes_(min_gpu_bytes) {}

  // Picks the side for a batch of `bytes` and counts it as in flight there.
  Side choose(uint64_t bytes, bool has_device_part);
  // The batch chosen for `side` took `ns`; it is no longer in flight.
  void done(Side side, uint64_t bytes, uint64_t ns);
  // A batch of the side failed and moves to the other one (it was counted in flight).
  void moved(Side from, uint64_t bytes);

  double rate(Side side) const;  // bytes per ns, as measured so far

 private:
  struct SideState {
    double rate = kInitialRate;
    uint64_t in_flight_bytes = 0;
    uint32_t in_flight_batches = 0;
    uint64_t forced_bytes = 0;  // bytes sent here under gpu_percent
  };
  SideState& of(Side s) { return s == Side::gpu ? gpu_ : cpu_; }
  const SideState& of(Side s) const { return s == Side::gpu ? gpu_ : cpu_; }

  const int gpu_percent_;
  const uint64_t min_gpu_bytes_;
  mutable std::mutex mu_;
  SideState cpu_, gpu_;
};

}  // namespace sectorcrypt::engine
