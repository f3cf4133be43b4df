// The admit stage (serial, under mu): accepted requests taken FIFO, small ones
// coalesced and large ones cut into batches of at most one slot; the tail of a large
// request cut finer (part_length); the batches a crypt_sync caller makes for itself.
// engine/pipeline.cc says how the stages fit together.
#include <algorithm>
#include <chrono>

#include "engine/engine_impl.h"
#include "engine/spin_wait.h"

namespace sectorcrypt {

using engine::Batch;
using engine::Clock;
using engine::Part;
using engine::RequestRecord;
using engine::SlotState;

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
  // Sleeps for work or a slot, unless, after it counted itself in admit_waiters, it
  // finds what it could take now: a channel's owner publishes work and a completing
  // worker returns a slot without mu, and each notifies only when it sees a sleeper
  // (channel_intake.cc, completion.cc's end_batch). Without a free slot it must sleep
  // even with channel work waiting: looping here under mu kept a completing worker that
  // needed mu from ever returning one (a livelock found by
  // ManyThreadsEachOnItsOwnChannel with idle_spin_us = 0).
  auto sleep_for_work = [&] {
    sleep([&] {
      std::atomic_thread_fence(std::memory_order_seq_cst);
      // An open batch takes records; without one, a slot is needed too (admit_has_work).
      const bool can_take =
          open != nullptr ? cursor != nullptr || more_queued() : admit_has_work();
      if (!can_take) admit_cv.wait(lk);
    });
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
      if ((cursor == nullptr && !more_queued()) || !slots.any_free()) {
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
        sleep_for_work();
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
        if (!pop_next_record(&ri)) break;
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
        if (slot_waiters.load() != 0) slot_cv.notify_all();
        give_back_token();
        return nullptr;
      }
      sleep_for_work();
      continue;
    }
    // Idle pipeline and nothing else queued: waiting could only add latency.
    auto idle = [&] {
      return cfg.idle_flush && batches_in_flight.load() == 0 && cursor == nullptr &&
             !more_queued();
    };
    if (!emit && idle()) emit = true;
    if (!emit) {
      // Coalescing: wait for more small requests, but never past the deadline. The last
      // batch in flight ends without mu (end_batch): look again once counted as asleep.
      const Clock::time_point deadline = b.oldest + deadline_span;
      if (Clock::now() < deadline) {
        sleep([&] {
          std::atomic_thread_fence(std::memory_order_seq_cst);
          if (!idle()) admit_cv.wait_until(lk, deadline);
        });
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
  if (cfg.threads < 2 || r.bytes <= cap || more_queued() || room != cap ||
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
  // submit() requests keep admission order; so does any request cut into parts, whose
  // status the parts' batches merge one at a time.
  if (r->channel == nullptr || len != r->bytes) b.ordered = true;
  b.used += p.bytes;
  b.sector_count += p.sectors;
}

void Engine::Impl::emit_batch(Batch& b) {
  ++batches_in_flight;
  if (b.ordered) {
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
                    cursor == nullptr && !more_queued() && ready_slots.empty() &&
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

}  // namespace sectorcrypt
