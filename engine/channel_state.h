// A channel's state (the public face is class Channel in engine.h): everything made at
// create for one of EngineConfig::channel_count channels, and who may touch what.
//
//   the owner thread only   free_records, order, done, ready, in_flight, the inline
//                           batch: the thread that submits and polls (one at a time)
//   owner -> admit stage    submitted (lock-free SPSC ring: the owner pushes the
//                           records it hands to the workers; the worker admitting, under
//                           Engine::Impl::mu, pops them), scheduled (the channel is in
//                           the engine's list of channels with submitted work, or is the
//                           one being taken from), submitting, to_workers
//   any thread              finished (lock-free MPSC ring: a worker that completes one
//                           of the channel's requests pushes its record there),
//                           sleeping, event_fd, counters (read by stats())
//   under Engine::Impl::mu  open, options (set by open_channel while nothing is in
//                           flight; a worker reads options only for a request it holds,
//                           which was published to it after the open)
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "engine/batch.h"
#include "engine/engine.h"
#include "engine/fixed_ring.h"
#include "engine/mpsc_ring.h"
#include "engine/spsc_ring.h"

namespace sectorcrypt::engine {

// What the owner counts for the requests it crypts inline, plus what it accepted. One
// writer per counter (the owner), so a relaxed load and store, never a read-modify-write
// on a line the other producers write; stats() adds every channel's up.
struct ChannelCounters {
  static void bump(std::atomic<uint64_t>& c, uint64_t v) {
    c.store(c.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
  }
  void record_latency(uint64_t ns);
  // As EngineCounters::completed, for a request the owner crypted inline.
  void completed(bool ok, uint64_t bytes, uint64_t latency_ns) {
    bump(requests, 1);
    bump(ok ? this->bytes : requests_failed, ok ? bytes : 1);
    record_latency(latency_ns);
  }
  void add_to(EngineStats* s) const;

  std::atomic<uint64_t> accepted{0}, inline_requests{0}, would_block{0};
  std::atomic<uint64_t> requests{0}, requests_failed{0}, bytes{0};
  std::atomic<uint64_t> latency[LatencyHistogram::kBuckets] = {};
};

struct ChannelState {
  ChannelState() = default;
  ChannelState(const ChannelState&) = delete;
  ChannelState& operator=(const ChannelState&) = delete;
  ~ChannelState();

  uint32_t id = 0;
  uint32_t first_record = 0;  // Impl::records index of the channel's record 0
  uint32_t depth = 0;
  bool open = false;
  ChannelOptions options;

  // ---- the owner's ----
  FixedStack<uint32_t> free_records;  // the channel's records (0..depth-1) not in use
  FixedRing<uint32_t> order;          // ordered: accepted records in submission order
  std::unique_ptr<uint8_t[]> done;    // ordered: finished, waiting for those before it
  FixedRing<uint32_t> ready;          // unordered: finished, not yet reaped
  std::size_t in_flight = 0;          // accepted, not yet reaped
  bool reaping = false;               // inside poll(): close_channel() is refused

  // The batch an inline request is crypted in: one part, per-sector arrays and staging
  // for sectors split across segments, for up to inline_max_bytes.
  Batch inline_batch;
  Part inline_part;
  std::unique_ptr<const uint8_t*[]> in_ptrs;
  std::unique_ptr<uint8_t*[]> out_ptrs;
  std::unique_ptr<uint8_t[]> staged;
  std::unique_ptr<uint64_t[]> iv;
  std::unique_ptr<uint32_t[]> key_index;
  std::unique_ptr<uint8_t[]> staging;

  // ---- the owner's, read by the admit stage and by shutdown (channel_intake.cc) ----
  SpscRing submitted;                 // records for the workers (engine record indices)
  std::atomic<bool> scheduled{false};  // in Impl::pending_channels, or Impl::intake
  std::atomic<bool> submitting{false};  // the owner may be pushing onto `submitted`
  std::atomic<uint64_t> to_workers{0};  // records ever pushed onto `submitted` (drain)

  // ---- shared ----
  MpscRing finished;                  // records a worker finished (local indices)
  std::atomic<bool> sleeping{false};  // the owner is asleep on event_fd in wait()
  int event_fd = -1;
  ChannelCounters counters;
};

}  // namespace sectorcrypt::engine
