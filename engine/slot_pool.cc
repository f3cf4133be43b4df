#include "engine/slot_pool.h"

namespace sectorcrypt::engine {

Status SlotPool::init(std::size_t count, std::size_t slot_bytes, std::size_t max_parts,
                      const PinnedMemory::Options& memory) {
  count_ = count;
  slot_bytes_ = slot_bytes;
  const std::size_t sectors = slot_bytes / 512;  // the most a slot can hold
  const std::size_t data = count * slot_bytes;
  const std::size_t ivs = count * sectors * sizeof(uint64_t);
  const std::size_t idx = count * sectors * sizeof(uint32_t);
  // The IV and key-index arrays are pinned too: the CUDA backend copies them with the data.
  if (Status s = PinnedMemory::allocate(data + ivs + idx, memory, &memory_); !s) return s;
  uint8_t* base = memory_.data();
  auto* iv_base = reinterpret_cast<uint64_t*>(base + data);
  auto* idx_base = reinterpret_cast<uint32_t*>(base + data + ivs);

  batches_ = std::make_unique<Batch[]>(count);
  parts_ = std::make_unique<Part[]>(count * max_parts);
  in_ptrs_ = std::make_unique<const uint8_t*[]>(count * sectors);
  out_ptrs_ = std::make_unique<uint8_t*[]>(count * sectors);
  staged_ = std::make_unique<uint8_t[]>(count * sectors);
  state_ = std::make_unique<std::atomic<SlotState>[]>(count);
  generation_ = std::make_unique<uint32_t[]>(count);  // zeroed
  free_.init(count);
  for (std::size_t i = count; i-- > 0;) {
    Batch& b = batches_[i];
    b.slot = static_cast<uint32_t>(i);
    b.data = base + i * slot_bytes;
    b.capacity = slot_bytes;
    b.parts = &parts_[i * max_parts];
    b.in_ptrs = &in_ptrs_[i * sectors];
    b.out_ptrs = &out_ptrs_[i * sectors];
    b.staged = &staged_[i * sectors];
    b.iv = iv_base + i * sectors;
    b.key_index = idx_base + i * sectors;
  }
  for (std::size_t i = count; i-- > 0;) {
    state_[i].store(SlotState::free);
    free_.push(static_cast<uint32_t>(i));  // slot 0 on top
  }
  return Status();
}

}  // namespace sectorcrypt::engine
