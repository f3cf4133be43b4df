// The slot pool: N slots of B bytes of pinned host memory, plus each slot's batch
// descriptor and per-sector arrays, all made at create. A slot is free, in the
// pipeline, or lent to a caller (zero-copy). The free list is a lock-free stack
// (free_stack.h): any thread gives a slot back (a worker completing its batch takes no
// lock for it); taking one is for the holder of the engine mutex only, which makes it
// the single popper. A slot's state is atomic because a completing worker sets it to
// free without that mutex.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "engine/batch.h"
#include "engine/free_stack.h"
#include "engine/pinned_memory.h"

namespace sectorcrypt::engine {

enum class SlotState : uint8_t {
  free,
  pipeline,        // taken by the admit stage for a copy batch
  lent,            // acquired by a caller (zero-copy), not submitted / completed
  lent_submitted,  // submit_slot() called, completion not yet delivered
};

class SlotPool {
 public:
  // RETURN VALUE: ok; the errors of PinnedMemory::allocate.
  Status init(std::size_t count, std::size_t slot_bytes, std::size_t max_parts,
              const PinnedMemory::Options& memory);

  std::size_t count() const { return count_; }
  std::size_t slot_bytes() const { return slot_bytes_; }
  const PinnedMemory& memory() const { return memory_; }
  Batch& batch(uint32_t slot) { return batches_[slot]; }

  bool take(uint32_t* slot) { return free_.pop(slot); }  // under the engine mutex
  void put(uint32_t slot) {  // any thread
    state_[slot].store(SlotState::free);
    free_.push(slot);
  }
  bool any_free() const { return !free_.empty(); }
  std::atomic<SlotState>& state(uint32_t slot) { return state_[slot]; }
  // Bumped each time the slot is lent (acquire_slot); handles carry the value they got.
  uint32_t& generation(uint32_t slot) { return generation_[slot]; }

 private:
  std::size_t count_ = 0, slot_bytes_ = 0;
  PinnedMemory memory_;  // [data of every slot][IV numbers][key indices]
  std::unique_ptr<Batch[]> batches_;
  std::unique_ptr<Part[]> parts_;
  std::unique_ptr<const uint8_t*[]> in_ptrs_;
  std::unique_ptr<uint8_t*[]> out_ptrs_;
  std::unique_ptr<uint8_t[]> staged_;
  std::unique_ptr<std::atomic<SlotState>[]> state_;
  std::unique_ptr<uint32_t[]> generation_;
  FreeStack free_;
};

}  // namespace sectorcrypt::engine
