// The complete stage (ordered batches one at a time, in admission order; batches of
// whole channel requests on their crypting worker: engine/pipeline.cc): statuses
// merged, a failed batch re-run on the CPU, completions delivered (callbacks, the
// polled queue, or a channel's ring), the slot returned; and the cancellation of what
// was never admitted at shutdown.
#include "engine/engine_impl.h"

namespace sectorcrypt {
namespace engine {
namespace {

thread_local const Engine::Impl* tls_callback_engine = nullptr;

}  // namespace

bool in_callback_of(const Engine::Impl* impl) { return tls_callback_engine == impl; }

}  // namespace engine

using engine::Batch;
using engine::Clock;
using engine::Part;
using engine::RequestRecord;
using engine::SlotState;

// cpu_fallback: the batch failed as a whole with its input intact; run it again with the
// CPU kernels, here in the complete stage (a rare path; the batch keeps its place in the
// completion order). The CPU backend uses only the batch's preallocated arrays.
void Engine::Impl::rerun_on_cpu(Batch* b) {
  counters.add(counters.cpu_fallbacks, 1);
  for (uint32_t k = 0; k < b->part_count; ++k) b->parts[k].status = Status();
  engine::crypt_guarded(*fallback, *b);
  fallback->finish(*b);
}

void Engine::Impl::complete(Batch* b) {
  const Clock::time_point t0 = Clock::now();
  backend->finish(*b);
  bool failed = false;
  for (uint32_t k = 0; k < b->part_count && !failed; ++k) {
    failed = b->parts[k].status.code() == Errc::backend_failure;
  }
  if (failed) {
    counters.add(counters.backend_failures, 1);
    if (fallback != nullptr && b->rerunnable && engine::whole_batch_failed(*b)) {
      rerun_on_cpu(b);
    }
  }
  // Counted before any completion is delivered, so a caller who saw its completion
  // also sees its batch in stats().
  counters.add(counters.batches, 1);
  counters.add(counters.parts, b->part_count);
  counters.add(counters.admit_ns, b->admit_ns);
  if (b->on_gpu) {
    counters.add(counters.gpu_batches, 1);
    counters.add(counters.gpu_bytes, b->used);
  }
  // Read before delivering: a zero-copy slot is lent again when its request is
  // delivered, and its owner may release it and admit reuse the batch (reset() clears
  // zero_copy) before this function ends; reading it after put a reused slot back in
  // the pool a second time (found by sectorcrypt_stress).
  const bool zero_copy = b->zero_copy;
  const uint32_t slot = b->slot;
  const uint32_t part_count = b->part_count;
  for (uint32_t k = 0; k < part_count; ++k) {
    const Part& p = b->parts[k];
    RequestRecord* r = p.req;
    engine::merge_status(&r->status, p.status);
    if (r->pending.fetch_sub(1) == 1) deliver(r);
  }
  end_batch(slot, zero_copy);
  counters.add(counters.complete_ns, engine::ns_since(t0));
}

// Without mu on the common path: the slot goes back to the lock-free pool, the in-flight
// count falls, and mu is taken only to wake a sleeper. Each sleeper on these counts
// itself (admit_waiters, slot_waiters, token_waiters; under mu) and then looks again
// for a slot, the in-flight count or shutdown before it waits; this side changes them,
// then looks at the sleepers and at stopping_now. Both sides use seq_cst, so one of the
// two sees the other, and a sleeper seen here is notified under mu, where it cannot be
// between its look and its wait. Pollers see work_epoch move.
void Engine::Impl::end_batch(uint32_t slot, bool zero_copy) {
  if (!zero_copy) slots.put(slot);
  const bool last = batches_in_flight.fetch_sub(1) == 1;
  work_epoch.fetch_add(1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  const bool wake = (admit_waiters.load() != 0 && spinners.load() == 0) ||
                    slot_waiters.load() != 0 || token_waiters.load() != 0 ||
                    (last && stopping_now.load());
  if (!wake) return;
  std::lock_guard lock(mu);
  if (last && stopping) in_flight_cv.notify_all();
  if (!zero_copy && slot_waiters != 0) slot_cv.notify_one();
  // Wakes admit for a freed slot, or to send a batch it was holding for company.
  wake_admit();
}

void Engine::Impl::deliver(RequestRecord* r) {
  if (r->channel != nullptr) {
    post_to_channel(r);
    return;
  }
  keys.release(r->key_index);
  const bool ok = r->status.ok();
  counters.completed(ok, r->bytes, engine::ns_since(r->accepted));
  const bool zero_copy = r->zero_copy_slot != UINT32_MAX;
  // Read once: after the completion is pushed, poll() may free the record and a new
  // request may reuse it before this function returns (a zero-copy slot's record as
  // soon as the slot is lent again, below, before the callback).
  const bool posted = r->post_completion;
  const bool registered = r->registered;
  if (zero_copy) {
    // Lent again before the callback runs, so the callback may release it.
    std::lock_guard lock(mu);
    slots.state(r->zero_copy_slot) = SlotState::lent;
    r->awaiting_poll = posted;
  }
  if (r->callback != nullptr || r->forward.call != nullptr) {
    const Engine::Impl* prev = engine::tls_callback_engine;
    engine::tls_callback_engine = this;
    // A throwing callback must not end the worker (every later request would hang).
    try {
      if (r->forward.call != nullptr) {
        r->forward.call(r->status, r->forward.target, r->user_context);
      } else {
        r->callback(r->status, r->user_context);
      }
    } catch (...) {
      counters.add(counters.callback_exceptions, 1);
    }
    engine::tls_callback_engine = prev;
  }
  // After the callback, so a range unregistered successfully has no request left that
  // is still being told about its bytes; before the post, after which the record may
  // be reused.
  if (registered) {  // a copy request: its record is not reused before the post
    registry.release(r->src_entry, r->src_count);
    registry.release(r->dst_entry, r->dst_count);
  }
  if (posted) {
    Completion c;
    c.status = r->status;
    c.user_context = r->user_context;
    c.bytes = r->bytes;
    c.slot = r->zero_copy_slot;
    // The record is freed by poll(), so the ring (one entry per record) cannot overflow.
    (void)cq.push(c, r->index);
  }
  if (!posted && !zero_copy) {
    std::lock_guard lock(mu);
    free_records.push(r->index);
    if (record_waiters != 0) record_cv.notify_one();
  }
  // drain() raises drain_waiters before it reads `delivered` (both seq_cst), so either it
  // sees this completion or this sees it waiting: no lost wake-up, and no lock taken
  // when nobody drains.
  delivered.fetch_add(1);
  if (drain_waiters.load() != 0) {
    std::lock_guard lock(mu);
    drain_cv.notify_all();
  }
}

void Engine::Impl::free_polled_records(const engine::CompletionQueue::Entry* e, std::size_t n) {
  std::lock_guard lock(mu);
  for (std::size_t i = 0; i < n; ++i) {
    RequestRecord& r = records[e[i].record];
    r.awaiting_poll = false;
    if (r.zero_copy_slot == UINT32_MAX) free_records.push(r.index);
  }
  if (record_waiters != 0) record_cv.notify_all();
}

void Engine::Impl::cancel_leftovers() {
  const Status cancelled =
      Status::error(Errc::shut_down, "engine shut down before the request was processed");
  wait_for_channel_submitters();  // then every channel ring holds all it will ever hold
  for (;;) {
    RequestRecord* r = nullptr;
    {
      std::lock_guard lock(mu);
      uint32_t i = 0;
      if (cursor != nullptr) {
        r = cursor;  // partly admitted: its earlier parts have completed by now
        cursor = nullptr;
      } else if (queued.pop(&i)) {
        r = &records[i];
      } else if (ready_slots.pop(&i)) {
        r = &records[copy_records + i];
      } else if (pop_channel_record(&i)) {
        r = &records[i];
      }
    }
    if (r == nullptr) break;
    engine::merge_status(&r->status, cancelled);
    if (r->pending.fetch_sub(1) == 1) deliver(r);
  }
  {
    std::lock_guard lock(mu);
    finished.store(true);
    drain_cv.notify_all();
    record_cv.notify_all();
    slot_cv.notify_all();
  }
  cq.close();
}

}  // namespace sectorcrypt
