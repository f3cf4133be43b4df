// The engine's pipeline: three stages run by the engine's own worker threads, all
// started at create and running until shutdown.
//
//   admit    serial (under mu): take accepted requests FIFO, coalesce and split them
//            into the next free slot's batch; an idle worker polls for up to
//            idle_spin_us, then sleeps on a condition variable for work, a slot, or
//            the flush deadline
//   crypt    parallel: backend->crypt (gather, cipher, CPU scatter)
//   complete serial, in admission order: backend->finish, statuses, completions, the
//            slot back to the pool (the credit returns)
//
// Each of the `threads` workers runs all three for a batch: admit one, crypt it, then, if
// it is the oldest batch in flight, complete it and every crypted batch behind it. A batch
// therefore never changes threads between stages; the first design (an admit thread,
// crypt workers and a completer, three hand-offs per batch) paid a futex wake per hand-off,
// tens of microseconds on a VM whose other vCPU sleeps, and lost 30% of the kernel's speed
// to it (bench/results/engine_bench.md). The CUDA backend too: its crypt stages the batch
// in, runs H2D, kernel and D2H on the slot's stream, waits, and stages it out, so on a GPU
// the copies run on as many threads as there are batches in flight (a single completer
// thread copying every result out held the GPU to a sixth of the bus). A worker waiting
// on the GPU holds no core (it sleeps in steps); the cuda backend therefore gets a
// worker for every slot (start_threads).
//
// At most slot_count batches exist (a batch is a slot), so the in-order ring, sized
// slot_count at create, never fills up; every batch, part and record is recycled.
//
// Why not oneTBB's parallel_pipeline: it allocates a task object per token from
// per-thread small-object pools. Tasks made on one thread and freed on another migrate
// between pools, and a thread whose pool runs dry calls cache_aligned_allocate (malloc,
// or tbbmalloc). The allocation-counting test saw it in steady state: 2 calls in 8
// rounds after 3 warm-up rounds, from r1::allocate(small_object_pool) on a worker. The
// flow graph and task_arena::enqueue allocate tasks the same way. Fixed threads with
// fixed rings give the same three stages with zero allocations, and forward progress no
// longer depends on the TBB market handing the arena a worker while admit sleeps.
//
// Completion order: admit() puts each batch in `in_order` while it holds mu, so the ring
// is in admission order; only the head completes, one thread at a time (`completing`);
// parts sit in a batch in request order, and a request completes with its last part: so
// completions are delivered in admission order, one callback at a time.
#include <algorithm>
#include <chrono>
#include <exception>
#include <stdexcept>

#include "engine/engine_impl.h"
#include "engine/fault_injection.h"
#include "engine/spin_wait.h"

namespace sectorcrypt {
namespace engine {
namespace {

thread_local const Engine::Impl* tls_callback_engine = nullptr;

uint64_t ns_since(Clock::time_point t) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t).count());
}

}  // namespace

bool in_callback_of(const Engine::Impl* impl) { return tls_callback_engine == impl; }

// Runs backend.crypt; an exception fails every part of the batch instead of ending the
// worker thread (which would leave the batch, and with it the pipeline, hung).
void crypt_guarded(Backend& backend, Batch& b) {
  const char* what = nullptr;
  try {
    if (SECTORCRYPT_FAULT(fault::Point::crypt_throw)) {
      throw std::runtime_error("injected fault at crypt_throw");
    }
    backend.crypt(b);
    return;
  } catch (const std::exception& e) {
    what = e.what();
    for (uint32_t k = 0; k < b.part_count; ++k) {
      b.parts[k].status = Status::error(Errc::backend_failure, "crypt worker threw: %s", what);
    }
  } catch (...) {
    for (uint32_t k = 0; k < b.part_count; ++k) {
      b.parts[k].status = Status::error(Errc::backend_failure, "crypt worker threw");
    }
  }
}

// Every part failed in the backend: the whole batch is lost, none of it written.
bool whole_batch_failed(const Batch& b) {
  for (uint32_t k = 0; k < b.part_count; ++k) {
    if (b.parts[k].status.code() != Errc::backend_failure) return false;
  }
  return b.part_count > 0;
}


}  // namespace engine

using engine::Batch;
using engine::Clock;
using engine::Part;
using engine::RequestRecord;
using engine::SlotState;

Status Engine::Impl::start_threads() {
  in_order.init(slots.count());
  crypted = std::make_unique<bool[]>(slots.count());
  // A GPU worker spends most of a batch asleep waiting on its stream: enough of them to
  // keep every slot in flight, whatever the core count.
  worker_count = cfg.threads;
  if (backend->kind() != BackendKind::cpu) {
    worker_count = std::max<unsigned>(worker_count, static_cast<unsigned>(
                                                        std::min<std::size_t>(slots.count(), 64)));
  }
  free_tokens = worker_count;
  // Idle workers that may poll at once. On a 16-core host, 16 threads, `sectorcrypt
  // compare` (4 in flight) against every idle worker polling: 4 KiB 244 -> 748 MiB/s,
  // 64 KiB 3,928 -> 8,381, 256 KiB 12,291 -> 15,633, 4 MiB 41,468 -> 38,033; a cap of 2
  // or 8 did worse at most sizes (bench/results/gpu_h200.md). Two vCPUs: both poll.
  max_spinners = std::max(2u, worker_count / 4);
  workers = std::make_unique<std::thread[]>(worker_count);
  unsigned made = 1;  // worker 0 is the engine thread, started last
  try {
    for (; made < worker_count; ++made) workers[made] = std::thread([this] { run_worker(); });
    engine_thread = std::thread([this] { run_engine_thread(); });
  } catch (const std::system_error& e) {
    // Stop what did start (nothing was submitted yet), then report.
    {
      std::lock_guard lock(mu);
      stopping = true;
    }
    wake_workers_to_stop();
    for (unsigned i = 1; i < made; ++i) workers[i].join();
    return Status::error(Errc::resource_exhausted, "cannot start the engine's threads: %s",
                         e.what());
  }
  started.wait(false);  // a worker is admitting: create returns with everything in place
  return Status();
}

void Engine::Impl::run_engine_thread() {
  run_worker();
  // Stopping: the other workers finish what they hold, complete it, and leave.
  for (unsigned i = 1; i < worker_count; ++i) workers[i].join();
  {
    // A synchronous caller may still be running a batch it admitted itself.
    std::unique_lock lock(mu);
    in_flight_cv.wait(lock, [&] { return batches_in_flight == 0; });
  }
  cancel_leftovers();
}

void Engine::Impl::run_worker() {
  bool token = false;
  while (Batch* b = admit(token)) {
    // The request cannot complete before this batch does, so its record is still live.
    if (RequestRecord* r = b->last_part_of) r->last_part_admitted(r->user_context);
    crypt_and_complete(b);
  }
}

// Marks the batch crypted, then completes the head of `in_order` for as long as it is
// crypted, unless another thread is already doing that (it will reach this batch: it
// checks the head again under pipe_mu before it stops).
void Engine::Impl::crypted_in_order(Batch* b) {
  std::unique_lock lock(pipe_mu);
  crypted[b->slot] = true;
  if (completing) return;
  completing = true;
  Batch* head = nullptr;
  while (head_crypted()) {
    in_order.pop(&head);
    lock.unlock();
    complete(head);
    lock.lock();
  }
  completing = false;
}

Batch* Engine::Impl::admit(bool& token) {
  std::unique_lock lk(mu);
  if (!started.load()) {
    started.store(true);
    started.notify_all();
  }
  const auto deadline_span = std::chrono::microseconds(cfg.flush_deadline_us);
  Clock::time_point busy_since = Clock::now();
  uint64_t busy_ns = 0;
  bool spun = false;  // polled for work since last sleeping
  // Sleeps without counting the sleep as admit time.
  auto sleep = [&](auto&& how) {
    busy_ns += engine::ns_since(busy_since);
    ++admit_waiters;
    how();
    --admit_waiters;
    busy_since = Clock::now();
  };
  auto give_back_token = [&] {
    if (token) release_token();
    token = false;
  };
  for (;;) {
    if (open == nullptr) {
      // Work to admit: crypt it only with a token (engine_impl.h).
      if (!token && admit_has_work() && !(stopping && ready_slots.empty())) {
        if (!try_take_token()) {
          // Counted in admit_waiters too (sleep), so admit_cv is also signalled for it at
          // times, needlessly; not counting it measured no better on the 2-vCPU VM.
          // Counted in token_waiters before looking at free_tokens again: a channel
          // returning a token without mu then sees the waiter (engine_impl.h).
          sleep([&] {
            token_waiters.fetch_add(1);
            if (free_tokens.load() == 0) token_cv.wait(lk);
            token_waiters.fetch_sub(1);
          });
          continue;
        }
        token = true;
      }
      // A submitted zero-copy slot needs no slot from the pool: it goes first.
      uint32_t zc;
      if (ready_slots.pop(&zc)) {
        RequestRecord* r = &records[copy_records + zc];
        Batch& b = slots.batch(zc);
        b.reset();
        b.zero_copy = true;
        append_part(b, r, 0, r->bytes);
        emit_batch(b);
        lk.unlock();
        b.admit_ns = busy_ns + engine::ns_since(busy_since);
        return &b;
      }
      if (stopping) {  // leftovers are cancelled once in-flight work is done
        give_back_token();
        return nullptr;
      }
      if ((cursor == nullptr && queued.empty()) || !slots.any_free()) {
        give_back_token();
        // Out of work (or slots): poll briefly, then sleep. The poll ends by looking
        // again under mu, so a wake-up that came while it polled is not lost. A few
        // pollers catch the next requests; with every idle worker polling, each request
        // set off a herd on the engine mutex (max_spinners: start_threads()).
        if (!spun && cfg.idle_spin_us != 0 && spinners < max_spinners) {
          spun = true;
          busy_ns += engine::ns_since(busy_since);  // polling is idle time, not admission
          if (spin_for_work(lk)) spun = false;
          busy_since = Clock::now();
          continue;
        }
        sleep([&] { admit_cv.wait(lk); });
        spun = false;
        continue;
      }
      uint32_t s = 0;
      slots.take(&s);
      slots.state(s) = SlotState::pipeline;
      open = &slots.batch(s);
      open->reset();
    }

    Batch& b = *open;
    bool emit = stopping || drain_waiters > 0;
    while (!stopping) {
      if (!ready_slots.empty() && b.part_count > 0) {
        emit = true;  // let the zero-copy slot through next
        break;
      }
      if (cursor == nullptr) {
        uint32_t ri = 0;
        if (!queued.pop(&ri)) break;
        cursor = &records[ri];
        cursor_offset = 0;
      }
      const uint32_t ss = cursor->format.sector_size;
      const std::size_t room = b.capacity - b.used;
      if (room < ss || b.part_count == cfg.max_parts_per_batch) {
        emit = true;
        break;
      }
      RequestRecord* ended = append_cursor_part(b, room);
      if (ended == nullptr) {
        emit = true;  // this one is full; the request continues next batch
        break;
      }
      if (ended->flush) emit = true;
      if (ended->last_part_admitted != nullptr) b.last_part_of = ended;
    }

    if (b.part_count == 0) {
      if (stopping) {
        slots.put(b.slot);
        open = nullptr;
        if (slot_waiters != 0) slot_cv.notify_all();
        give_back_token();
        return nullptr;
      }
      sleep([&] { admit_cv.wait(lk); });
      continue;
    }
    // Idle pipeline and nothing else queued: waiting could only add latency.
    if (!emit && cfg.idle_flush && batches_in_flight == 0 && cursor == nullptr &&
        queued.empty()) {
      emit = true;
    }
    if (!emit) {
      // Coalescing: wait for more small requests, but never past the deadline.
      const Clock::time_point deadline = b.oldest + deadline_span;
      if (Clock::now() < deadline) {
        sleep([&] { admit_cv.wait_until(lk, deadline); });
        continue;
      }
    }
    open = nullptr;
    emit_batch(b);
    lk.unlock();
    b.admit_ns = busy_ns + engine::ns_since(busy_since);
    return &b;
  }
}

// Polls work_epoch, without mu, for up to idle_spin_us (engine/spin_wait.h): a worker
// still polling when the next request arrives starts at once, and the submitter skips
// the wake-up syscall (no sleeper to notify).
bool Engine::Impl::spin_for_work(std::unique_lock<std::mutex>& lk) {
  const uint64_t seen = work_epoch.load(std::memory_order_relaxed);
  ++spinners;
  lk.unlock();
  const bool moved = engine::spin_until(
      [&] { return work_epoch.load(std::memory_order_relaxed) != seen; }, cfg.idle_spin_us);
  lk.lock();
  --spinners;
  return moved;
}

// How much of request r's bytes from `offset` go into this batch: all that fits, except
// at the tail of a request split over several slots and crypting threads, with nothing
// queued behind it. There the last `threads` slot-fulls are cut into shrinking pieces
// (half of each thread's share of what is left, down to a quarter slot), so the threads
// run out of work together instead of one crypting a whole last slot while the others
// wait (guided self-scheduling). On the 2-vCPU VM this took 2 threads on a 4 MiB call from
// 1.71x to 1.80x the 1-thread kernel, a quarter slot against half a slot 1.77x
// (bench/results/engine_bench.md).
uint64_t Engine::Impl::part_length(const RequestRecord& r, uint64_t offset,
                                   std::size_t room) const {
  const uint32_t ss = r.format.sector_size;
  const uint64_t remaining = r.bytes - offset;
  const uint64_t fits = room / ss * ss;
  const std::size_t cap = slots.slot_bytes();
  if (cfg.threads < 2 || r.bytes <= cap || !queued.empty() || room != cap ||
      remaining > cfg.threads * uint64_t{cap}) {
    return std::min<uint64_t>(remaining, fits);
  }
  const uint64_t floor = std::max<uint64_t>(cap / 4 / ss * ss, ss);
  const uint64_t share = (remaining / (2 * cfg.threads) + ss - 1) / ss * ss;
  return std::min<uint64_t>({remaining, fits, std::max(share, floor)});
}

RequestRecord* Engine::Impl::append_cursor_part(Batch& b, std::size_t room) {
  RequestRecord* r = cursor;
  const uint64_t len = part_length(*r, cursor_offset, room);
  append_part(b, r, cursor_offset, len);
  cursor_offset += len;
  if (cursor_offset < r->bytes) {
    r->pending.fetch_add(1);  // one more part; the request continues next batch
    return nullptr;
  }
  cursor = nullptr;  // its admission reference now rides on this last part
  return r;
}

void Engine::Impl::append_part(Batch& b, RequestRecord* r, uint64_t offset, uint64_t len) {
  Part& p = b.parts[b.part_count++];
  p.req = r;
  p.req_offset = offset;
  p.bytes = static_cast<uint32_t>(len);
  p.slot_offset = b.used;
  p.first_sector = b.sector_count;
  p.sectors = static_cast<uint32_t>(len / r->format.sector_size);
  p.status = Status();
  if (b.part_count == 1) b.oldest = r->accepted;
  b.used += p.bytes;
  b.sector_count += p.sectors;
}

void Engine::Impl::emit_batch(Batch& b) {
  ++batches_in_flight;
  {
    std::lock_guard pipe(pipe_mu);
    crypted[b.slot] = false;
    in_order.push(&b);
  }
  if (admit_has_work() && !stopping) {
    if (admit_waiters != 0) admit_cv.notify_one();
    wake_token_waiter();
  }
}

Batch* Engine::Impl::admit_on_caller(RequestRecord* r, bool* helping) {
  if (helping != nullptr) *helping = false;
  const bool next = !stopping && open == nullptr &&
                    cursor == nullptr && queued.empty() && ready_slots.empty() &&
                    slots.any_free();
  if (!next) return nullptr;
  if (r->bytes > slots.slot_bytes()) {
    if (helping == nullptr || !try_take_token()) return nullptr;  // no caller to help
    *helping = true;
  } else if (batches_in_flight != 0) {
    return nullptr;  // one slot, but not idle: it would wait behind others anyway
  }
  cursor = r;
  cursor_offset = 0;
  return admit_part_of_cursor();
}

Batch* Engine::Impl::admit_next_part_on_caller(RequestRecord* r, const std::atomic<bool>& done) {
  std::lock_guard lk(mu);
  if (done.load(std::memory_order_acquire) || cursor != r || stopping || open != nullptr ||
      !ready_slots.empty() || !slots.any_free()) {
    return nullptr;
  }
  return admit_part_of_cursor();
}

void Engine::Impl::stop_helping() {
  std::lock_guard lk(mu);
  release_token();
}

// Under mu: a batch of the next part of `cursor` alone (a slot-full, or what is left).
// The caller is the one waiting for the request, so its last part wakes nobody.
Batch* Engine::Impl::admit_part_of_cursor() {
  uint32_t s = 0;
  slots.take(&s);
  slots.state(s) = SlotState::pipeline;
  Batch& b = slots.batch(s);
  b.reset();
  (void)append_cursor_part(b, b.capacity);
  emit_batch(b);
  counters.add(counters.caller_batches, 1);
  return &b;
}

void Engine::Impl::crypt(Batch* b) {
  const Clock::time_point t0 = Clock::now();
  engine::crypt_guarded(*backend, *b);
  counters.add(counters.crypt_ns, engine::ns_since(t0));
}

// cpu_fallback: the batch failed as a whole with its input intact; run it again with the
// CPU kernels, here in the serial stage (a rare path; it keeps completion order). The
// CPU backend uses only the batch's preallocated arrays: no allocation.
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
  {
    std::lock_guard lock(mu);
    if (--batches_in_flight == 0 && stopping) in_flight_cv.notify_all();
    if (!zero_copy) {
      slots.put(slot);
      if (slot_waiters != 0) slot_cv.notify_one();
    }
    // Wakes admit for a freed slot, or to send a batch it was holding for company.
    wake_admit();
  }
  counters.add(counters.complete_ns, engine::ns_since(t0));
}

void Engine::Impl::deliver(RequestRecord* r) {
  if (r->channel != nullptr) {
    post_to_channel(r);
    return;
  }
  keys.release(r->key_index);
  const bool ok = r->status.ok();
  counters.add(counters.requests, 1);
  if (ok) {
    counters.add(counters.bytes, r->bytes);
  } else {
    counters.add(counters.requests_failed, 1);
  }
  counters.record_latency(engine::ns_since(r->accepted));
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
