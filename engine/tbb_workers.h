// Makes sure oneTBB has enough worker threads for every live engine.
//
// Each engine's admit stage may sleep inside the pipeline (waiting for work or a slot)
// on one arena thread, so its other stages need at least one more thread to make
// progress. oneTBB's default worker pool is (hardware threads - 1), shared by all arenas
// in the process: on a small machine, or with two engines, an arena could get no worker
// and deadlock. We raise tbb::global_control::max_allowed_parallelism to cover the sum
// of the live engines' threads (never lower than the default). oneTBB takes the minimum
// over active global_control objects, so a host program that sets a lower limit itself
// overrides this (documented in engine.h's create).
#pragma once

namespace sectorcrypt::engine {

class TbbWorkerReservation {
 public:
  TbbWorkerReservation() = default;
  explicit TbbWorkerReservation(unsigned workers);
  TbbWorkerReservation(const TbbWorkerReservation&) = delete;
  TbbWorkerReservation& operator=(const TbbWorkerReservation&) = delete;
  ~TbbWorkerReservation();

 private:
  unsigned workers_ = 0;
};

}  // namespace sectorcrypt::engine
