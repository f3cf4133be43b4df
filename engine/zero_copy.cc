// The zero-copy path: slots lent to the caller, filled in place, submitted, released.
#include "engine/engine_impl.h"
#include "engine/request_validation.h"

namespace sectorcrypt {

using engine::Clock;
using engine::RequestRecord;
using engine::SlotState;
using engine::ns_since;
using engine::shut_down_status;
using engine::validate_callback;

// ---- zero-copy ----

// Under mu: the handle is for an earlier lending of its slot (released, then lent again).
static Status stale_slot_handle(Engine::Impl& m, const SlotHandle& slot) {
  const uint32_t now = m.slots.generation(slot.index);
  if (slot.generation == now) return Status();
  return Status::error(Errc::invalid_buffer,
                       "stale slot handle: slot %u was released and lent again since "
                       "(handle generation %u, slot now at %u)",
                       slot.index, slot.generation, now);
}

static Status acquire_slot_impl(Engine::Impl& m, SlotHandle* slot, bool blocking) {
  if (slot == nullptr) return Status::error(Errc::invalid_buffer, "acquire_slot: slot is null");
  std::unique_lock lk(m.mu);
  if (m.stopping) return shut_down_status();
  if (!m.slots.any_free()) {
    if (!blocking) {
      m.counters.add(m.counters.would_block, 1);
      return Status::error(Errc::would_block, "no free slot (all %zu in use); retry later",
                           m.slots.count());
    }
    const Clock::time_point t0 = Clock::now();
    ++m.slot_waiters;
    // Then the look for a slot: a completing worker returns one without mu, then looks
    // at slot_waiters (completion.cc, end_batch).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    m.slot_cv.wait(lk, [&] { return m.stopping || m.slots.any_free(); });
    --m.slot_waiters;
    m.counters.add(m.counters.submit_waits, 1);
    m.counters.add(m.counters.submit_wait_ns, ns_since(t0));
    if (m.stopping) return shut_down_status();
  }
  uint32_t s = 0;
  m.slots.take(&s);
  m.slots.state(s) = SlotState::lent;
  slot->generation = ++m.slots.generation(s);
  slot->index = s;
  slot->data = m.slots.batch(s).data;
  slot->capacity = m.slots.slot_bytes();
  return Status();
}

Status Engine::acquire_slot(SlotHandle* slot) { return acquire_slot_impl(*impl_, slot, true); }
Status Engine::try_acquire_slot(SlotHandle* slot) {
  return acquire_slot_impl(*impl_, slot, false);
}

Status Engine::submit_slot(const SlotHandle& slot, const SlotRequest& req) {
  Impl& m = *impl_;
  if (slot.index >= m.slots.count() || slot.data != m.slots.batch(slot.index).data) {
    return Status::error(Errc::invalid_buffer, "not a slot of this engine");
  }
  if (Status s = validate_callback(req.callback, req.forward); !s) return s;
  if (Status s = validate_format(req.format); !s) return s;
  if (req.bytes == 0 || req.bytes % req.format.sector_size != 0 ||
      req.bytes > m.slots.slot_bytes()) {
    return Status::error(Errc::invalid_length,
                         "slot request of %zu bytes: use whole %u-byte sectors, at most %zu",
                         req.bytes, req.format.sector_size, m.slots.slot_bytes());
  }
  IvSequence seq{};
  if (Status s = iv_sequence_for(req.format, req.start_sector, &seq); !s) return s;
  uint32_t key_index = 0;
  if (Status s = m.keys.acquire(req.key, &key_index); !s) return s;

  std::lock_guard lk(m.mu);
  Status err;
  RequestRecord& r = m.records[m.copy_records + slot.index];
  if (m.stopping) {
    err = shut_down_status();
  } else if (Status stale = stale_slot_handle(m, slot); !stale) {
    err = stale;
  } else if (m.slots.state(slot.index) != SlotState::lent) {
    err = Status::error(Errc::invalid_buffer, "slot %u is not lent to the caller %s",
                        slot.index,
                        m.slots.state(slot.index) == SlotState::lent_submitted
                            ? "(already submitted)" : "(acquire it first)");
  } else if (r.awaiting_poll) {
    err = Status::error(Errc::would_block,
                        "slot %u's previous completion has not been polled yet", slot.index);
  }
  if (!err.ok()) {
    m.keys.release(key_index);
    return err;
  }
  r.key_index = key_index;
  r.key = &m.keys.key(key_index);
  r.dir = req.dir;
  r.format = req.format;
  r.start_sector = req.start_sector;
  r.src[0] = iovec{slot.data, req.bytes};
  r.dst[0] = r.src[0];
  r.src_count = r.dst_count = 1;
  r.in_place = true;
  r.memory = MemoryKind::host;
  r.registered = false;
  r.bytes = req.bytes;
  r.callback = req.callback;
  r.forward = req.forward;
  r.user_context = req.user_context;
  r.post_completion = req.post_completion;
  r.flush = true;
  r.last_part_admitted = nullptr;
  r.accepted = Clock::now();
  r.pending.store(1);
  r.status = Status();
  m.slots.state(slot.index) = SlotState::lent_submitted;
  m.ready_slots.push(slot.index);
  ++m.accepted;
  m.wake_admit();
  return Status();
}

Status Engine::release_slot(const SlotHandle& slot) {
  Impl& m = *impl_;
  if (slot.index >= m.slots.count() || slot.data != m.slots.batch(slot.index).data) {
    return Status::error(Errc::invalid_buffer, "not a slot of this engine");
  }
  std::lock_guard lk(m.mu);
  if (Status stale = stale_slot_handle(m, slot); !stale) return stale;
  if (m.slots.state(slot.index) != SlotState::lent) {
    return Status::error(Errc::invalid_buffer, "slot %u is not lent to the caller %s",
                         slot.index,
                         m.slots.state(slot.index) == SlotState::lent_submitted
                             ? "(its request is still running)" : "");
  }
  m.slots.put(slot.index);
  m.wake_admit();
  if (m.slot_waiters != 0) m.slot_cv.notify_one();
  return Status();
}

}  // namespace sectorcrypt
