// The engine's internal descriptors: a request record (one per accepted request), the
// parts a request is cut into, and a batch (one slot's worth of parts). All of them live
// in arrays sized at create and are recycled; nothing here is allocated per request.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "engine/engine.h"
#include "kernels/xts_key.h"

namespace sectorcrypt::engine {

struct ChannelState;

using Clock = std::chrono::steady_clock;

inline uint64_t ns_since(Clock::time_point t) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t).count());
}

struct RequestRecord {
  // Set at submit, read-only until the completion.
  uint32_t index = 0;            // position in the record array
  uint32_t key_index = 0;
  const XtsKey* key = nullptr;
  Direction dir = Direction::encrypt;
  SectorFormat format;
  uint64_t start_sector = 0;
  uint64_t bytes = 0;
  iovec src[kMaxSegments] = {};
  uint32_t src_count = 0;
  iovec dst[kMaxSegments] = {};  // == src when in place
  uint32_t dst_count = 0;
  bool in_place = false;
  MemoryKind memory = MemoryKind::host;
  // Host memory wholly inside registered ranges: the registry entry of each segment,
  // whose references are dropped at completion (engine/memory_registry.h).
  bool registered = false;
  uint8_t src_entry[kMaxSegments] = {};
  uint8_t dst_entry[kMaxSegments] = {};
  CompletionCallback callback = nullptr;
  ForwardedCallback forward;
  void* user_context = nullptr;
  bool post_completion = false;
  bool flush = false;
  // crypt_sync only: called (with user_context, on a worker, before the crypt) once the
  // request's last part is in a batch, so a sleeping caller can wake and poll for the
  // end while that batch runs instead of being woken after it (engine/sync_calls.cc).
  void (*last_part_admitted)(void* ctx) = nullptr;
  uint32_t zero_copy_slot = UINT32_MAX;  // the lent slot for submit_slot requests
  ChannelState* channel = nullptr;       // the channel that owns the record, if any
  bool awaiting_poll = false;            // posted, not yet taken by poll() (guarded by mu)
  Clock::time_point accepted;

  // Parts not yet completed, plus one while admission is still cutting the request.
  std::atomic<uint32_t> pending{0};
  // The worst status of the parts; written only by the complete stage (a request cut
  // into several parts is only in ordered batches, completed one at a time), or by the
  // engine thread after the pipeline has stopped.
  Status status;
};

// A run of one request's sectors inside a batch.
struct Part {
  enum class Mode : uint8_t {
    direct,    // one contiguous run in the caller's memory: crypt in -> out directly
    gathered,  // per-sector pointers (caller memory; sectors split over segments staged)
    staged,    // the whole part is in the slot at slot_offset (copied in, or zero-copy)
    dma,       // GPU: registered host memory, copied by DMA to and from the device slot
    device,    // GPU: device-resident, the kernel reads and writes the caller's memory
  };
  RequestRecord* req = nullptr;
  uint64_t req_offset = 0;   // bytes into the request
  uint32_t bytes = 0;
  uint32_t slot_offset = 0;  // where its bytes sit in the slot when staged
  uint32_t first_sector = 0; // index into the batch's per-sector arrays
  uint32_t sectors = 0;
  Mode mode = Mode::staged;
  const uint8_t* in = nullptr;  // direct
  uint8_t* out = nullptr;
  Status status;
};

struct Batch {
  uint32_t slot = 0;
  uint8_t* data = nullptr;         // the slot's pinned bytes
  std::size_t capacity = 0;        // slot_bytes
  bool zero_copy = false;          // a lent slot submitted with submit_slot
  Part* parts = nullptr;           // max_parts entries
  uint32_t part_count = 0;
  uint32_t used = 0;               // bytes of the slot the parts take
  uint32_t sector_count = 0;       // entries used in the per-sector arrays
  // The batch's input is still as submitted (nothing written over it yet), so a failed
  // batch may be re-run (cpu_fallback). Backends clear it before they write.
  bool rerunnable = true;
  bool on_gpu = false;             // crypted by the GPU (cuda, or hybrid's GPU side)
  // Completes in admission order (the in_order ring, one thread at a time). Clear for a
  // batch of whole channel requests only: nothing orders channel requests across the
  // engine and no other batch holds a part of them, so the worker that crypted it
  // completes it at once, beside other completers (engine/pipeline.cc).
  bool ordered = false;

  // Per-sector arrays, capacity slot_bytes / 512 (iv and key_index are pinned: the CUDA
  // backend copies them to the device).
  const uint8_t** in_ptrs = nullptr;
  uint8_t** out_ptrs = nullptr;
  uint8_t* staged = nullptr;       // gathered mode: 1 where the sector went through the slot
  uint64_t* iv = nullptr;
  uint32_t* key_index = nullptr;

  Clock::time_point oldest;        // acceptance time of the first part's request
  uint64_t admit_ns = 0;
  RequestRecord* last_part_of = nullptr;  // a request to tell last_part_admitted, or null

  void reset() {
    last_part_of = nullptr;
    part_count = 0;
    used = 0;
    sector_count = 0;
    zero_copy = false;
    rerunnable = true;
    on_gpu = false;
    ordered = false;
    admit_ns = 0;
  }
};

// Severity for "the worst part's status": ok < shut_down < anything else.
inline int status_rank(const Status& s) {
  if (s.ok()) return 0;
  if (s.code() == Errc::shut_down) return 1;
  return 2;
}
inline void merge_status(Status* into, const Status& part) {
  if (status_rank(part) > status_rank(*into)) *into = part;
}

}  // namespace sectorcrypt::engine
