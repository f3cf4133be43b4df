// Copy requests from any thread (submit, try_submit): validation, a request record
// with backpressure, the admission FIFO; and poll() of their posted completions.
#include <algorithm>

#include "engine/engine_impl.h"
#include "engine/request_validation.h"

namespace sectorcrypt {

using engine::Clock;
using engine::RequestRecord;
using engine::SlotState;
using engine::ns_since;
using engine::shut_down_status;
using engine::validate_device_segments;
using engine::validate_request;

// ---- copy requests ----

void Engine::Impl::fill_record(RequestRecord& r, const Request& req, uint32_t key_index) {
  r.key_index = key_index;
  r.key = &keys.key(key_index);
  r.dir = req.dir;
  r.format = req.format;
  r.start_sector = req.start_sector;
  r.src_count = static_cast<uint32_t>(req.src_count);
  uint64_t total = 0;
  for (std::size_t i = 0; i < req.src_count; ++i) {
    r.src[i] = req.src[i];
    total += req.src[i].iov_len;
  }
  r.in_place = req.dst_count == 0;
  if (!r.in_place) {
    r.dst_count = static_cast<uint32_t>(req.dst_count);
    for (std::size_t i = 0; i < req.dst_count; ++i) r.dst[i] = req.dst[i];
  } else {
    r.dst_count = r.src_count;
    for (std::size_t i = 0; i < req.src_count; ++i) r.dst[i] = req.src[i];
  }
  r.memory = req.memory;
  r.registered = false;
  if (r.memory == MemoryKind::device) counters.add(counters.device_requests, 1);
  r.bytes = total;
  r.callback = req.callback;
  r.forward = req.forward;
  r.user_context = req.user_context;
  r.post_completion = req.post_completion;
  r.flush = req.flush;
  r.last_part_admitted = nullptr;
  r.accepted = Clock::now();
  r.pending.store(1, std::memory_order_relaxed);
  r.status = Status();
}

void Engine::Impl::match_registered(RequestRecord& r) {
  r.registered = r.memory == MemoryKind::host &&
                 registry.acquire(r.src, r.src_count, r.dst, r.dst_count, r.src_entry,
                                  r.dst_entry);
  if (r.registered) counters.add(counters.registered_requests, 1);
}

Status Engine::Impl::validate_and_accept(const Request& req, bool blocking,
                                         engine::Batch** run_here,
                                         void (*last_part_admitted)(void*), bool* helping,
                                         engine::RequestRecord** record) {
  if (Status s = validate_request(req); !s) return s;
  if (Status s = validate_device_segments(*backend, req); !s) return s;
  uint32_t key_index = 0;
  if (Status s = keys.acquire(req.key, &key_index); !s) return s;

  std::unique_lock lk(mu);
  if (stopping) {
    keys.release(key_index);
    return shut_down_status();
  }
  if (free_records.empty()) {
    if (!blocking) {
      keys.release(key_index);
      counters.add(counters.would_block, 1);
      return Status::error(Errc::would_block,
                           "engine full: all %zu request records are in use; retry later",
                           copy_records);
    }
    const Clock::time_point t0 = Clock::now();
    ++record_waiters;
    record_cv.wait(lk, [&] { return stopping || !free_records.empty(); });
    --record_waiters;
    counters.add(counters.submit_waits, 1);
    counters.add(counters.submit_wait_ns, ns_since(t0));
    if (stopping) {
      keys.release(key_index);
      return shut_down_status();
    }
  }
  uint32_t ri = 0;
  free_records.pop(&ri);
  RequestRecord& r = records[ri];
  fill_record(r, req, key_index);
  match_registered(r);
  r.last_part_admitted = last_part_admitted;
  ++accepted;
  if (record != nullptr) *record = &r;
  if (run_here != nullptr && (*run_here = admit_on_caller(&r, helping)) != nullptr) {
    if (!queued.empty() || cursor != nullptr) wake_admit();  // the workers take the rest
    return Status();
  }
  queued.push(ri);
  wake_admit();
  return Status();
}

Status Engine::submit(const Request& req) { return impl_->validate_and_accept(req, true); }
Status Engine::try_submit(const Request& req) { return impl_->validate_and_accept(req, false); }

// ---- polled completions ----

static std::size_t poll_impl(Engine::Impl& m, Completion* out, std::size_t max,
                             std::chrono::microseconds first_wait) {
  if (out == nullptr) return 0;
  std::size_t n = 0;
  engine::CompletionQueue::Entry chunk[16];
  while (n < max) {
    const std::size_t got =
        m.cq.pop(chunk, std::min<std::size_t>(16, max - n),
                 n == 0 ? first_wait : std::chrono::microseconds(0), m.cfg.idle_spin_us);
    if (got == 0) break;
    for (std::size_t i = 0; i < got; ++i) out[n++] = chunk[i].completion;
    m.free_polled_records(chunk, got);
  }
  return n;
}

std::size_t Engine::poll(Completion* out, std::size_t max) {
  return poll_impl(*impl_, out, max, std::chrono::microseconds(0));
}

std::size_t Engine::wait_completions(Completion* out, std::size_t max, uint64_t timeout_us) {
  return poll_impl(*impl_, out, max, std::chrono::microseconds(timeout_us));
}

}  // namespace sectorcrypt
