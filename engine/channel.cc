// Channels: a thread's own way into the engine (engine.h, class Channel), made at create.
//
// Submitting on a channel takes its records from the channel's own free stack, so
// producers never meet on a lock or a shared counter. Each accepted request then goes one
// of two ways:
//   inline   CPU backend, at most inline_max_bytes, a crypt token free and no worker
//            waiting for one: the submitting thread crypts it at once in the channel's
//            own batch (run to completion, as SPDK's software accel module does). A 4 KiB
//            request crypts in about 0.3 us on one Zen 4 core; handing it to a worker
//            costs a queue, a wake-up and a completion crossing back, more than that.
//   workers  everything else (and everything on the GPU, which needs large launches):
//            pushed onto the channel's own submission ring, without a lock
//            (channel_intake.cc), and coalesced by the admit stage with other channels'
//            and submit()'s requests into batches. The
//            worker that completes one pushes its record into the channel's finished
//            ring (lock-free, many producers) and wakes the owner only if it sleeps.
// Either way the record comes back to its owner, which reaps it in poll()/wait(): runs
// its callback or returns its Completion, and puts the record back on the free stack.
// The crypt tokens (engine_impl.h) bound how many threads crypt at once, inline or not.
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

#include "engine/engine_impl.h"
#include "engine/request_validation.h"
#include "engine/spin_wait.h"

namespace sectorcrypt {

using engine::ChannelState;
using engine::Clock;
using engine::RequestRecord;
using engine::ns_since;

namespace engine {

ChannelState::~ChannelState() {
  if (event_fd >= 0) ::close(event_fd);
}

void ChannelCounters::record_latency(uint64_t ns) {
  std::size_t i = static_cast<std::size_t>(std::bit_width(ns));
  if (i >= LatencyHistogram::kBuckets) i = LatencyHistogram::kBuckets - 1;
  bump(latency[i], 1);
}

void ChannelCounters::add_to(EngineStats* s) const {
  auto ld = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  s->channel_requests += ld(accepted);
  s->inline_requests += ld(inline_requests);
  s->would_block += ld(would_block);
  s->requests += ld(requests);
  s->requests_failed += ld(requests_failed);
  s->bytes += ld(bytes);
  for (std::size_t i = 0; i < LatencyHistogram::kBuckets; ++i) {
    s->latency.buckets[i] += ld(latency[i]);
  }
}

}  // namespace engine

namespace {

void signal_fd(int fd) {
  const uint64_t one = 1;
  // EAGAIN only when the counter is at its maximum: it is readable either way.
  (void)!::write(fd, &one, sizeof(one));
}

void drain_fd(int fd) {
  uint64_t v = 0;
  (void)!::read(fd, &v, sizeof(v));
}

// The owner: a finished record becomes reapable (in order, or at once).
void mark_finished(ChannelState& c, uint32_t local) {
  if (c.options.ordered) {
    c.done[local] = 1;
  } else {
    c.ready.push(local);
  }
}

// The owner: everything workers finished becomes reapable.
void collect(ChannelState& c) {
  uint32_t local = 0;
  while (c.finished.pop(&local)) mark_finished(c, local);
}

// The owner: the next reapable record, left in place.
bool peek_reapable(const ChannelState& c, uint32_t* local) {
  if (c.options.ordered) {
    if (c.order.empty() || c.done[c.order.front()] == 0) return false;
    *local = c.order.front();
    return true;
  }
  if (c.ready.empty()) return false;
  *local = c.ready.front();
  return true;
}

std::size_t reapable(const ChannelState& c) {
  if (!c.options.ordered) return c.ready.size();
  std::size_t n = 0;
  while (n < c.order.size() && c.done[c.order.at(n)] != 0) ++n;
  return n;
}

}  // namespace

// ---- create ----

Status Engine::Impl::init_channels() {
  const std::size_t n = cfg.channel_count, d = cfg.channel_depth;
  cpu_inline = backend->kind() == BackendKind::cpu && cfg.inline_max_bytes != 0;
  channels = std::make_unique<ChannelState[]>(n);
  free_channels.init(n);
  pending_channels.init(n);
  const std::size_t sectors = cpu_inline ? cfg.inline_max_bytes / 512 : 0;
  for (std::size_t i = 0; i < n; ++i) {
    ChannelState& c = channels[i];
    c.id = static_cast<uint32_t>(i);
    c.first_record = static_cast<uint32_t>(channel_records + i * d);
    c.depth = static_cast<uint32_t>(d);
    c.free_records.init(d);
    c.order.init(d);
    c.ready.init(d);
    c.done = std::make_unique<uint8_t[]>(d);
    c.finished.init(d);
    c.submitted.init(d);
    for (std::size_t j = 0; j < d; ++j) records[c.first_record + j].channel = &c;
    c.event_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c.event_fd < 0) {
      return Status::error(Errc::resource_exhausted, "cannot make channel %zu's eventfd: %s",
                           i, std::strerror(errno));
    }
    if (cpu_inline) {
      c.in_ptrs = std::make_unique<const uint8_t*[]>(sectors);
      c.out_ptrs = std::make_unique<uint8_t*[]>(sectors);
      c.staged = std::make_unique<uint8_t[]>(sectors);
      c.iv = std::make_unique<uint64_t[]>(sectors);
      c.key_index = std::make_unique<uint32_t[]>(sectors);
      c.staging = std::make_unique<uint8_t[]>(cfg.inline_max_bytes);
      engine::Batch& b = c.inline_batch;
      b.slot = UINT32_MAX;
      b.data = c.staging.get();
      b.capacity = cfg.inline_max_bytes;
      b.parts = &c.inline_part;
      b.in_ptrs = c.in_ptrs.get();
      b.out_ptrs = c.out_ptrs.get();
      b.staged = c.staged.get();
      b.iv = c.iv.get();
      b.key_index = c.key_index.get();
    }
    free_channels.push(static_cast<uint32_t>(n - 1 - i));
  }
  return Status();
}

// ---- open / close ----

Status Engine::open_channel(const ChannelOptions& options, Channel** out) {
  Impl& m = *impl_;
  if (out == nullptr) return Status::error(Errc::invalid_buffer, "open_channel: out is null");
  if (engine::in_callback_of(&m)) {
    return Status::error(Errc::unavailable, "open_channel() called from a completion callback");
  }
  std::lock_guard lk(m.mu);
  if (m.stopping) return engine::shut_down_status();
  uint32_t id = 0;
  if (!m.free_channels.pop(&id)) {
    return Status::error(Errc::resource_exhausted,
                         "all %zu channels are open (EngineConfig::channel_count = %zu); "
                         "close one, or create the engine with more",
                         m.cfg.channel_count, m.cfg.channel_count);
  }
  ChannelState& c = m.channels[id];
  // Closed with nothing in flight, so every record is free and every ring empty; the
  // finished ring is rewound to its start.
  while (!c.free_records.empty()) {
    uint32_t x;
    c.free_records.pop(&x);
  }
  for (uint32_t j = 0; j < c.depth; ++j) c.free_records.push(c.depth - 1 - j);
  std::fill_n(c.done.get(), c.depth, uint8_t{0});
  c.finished.reset();
  c.sleeping.store(false);
  drain_fd(c.event_fd);
  c.options = options;
  c.open = true;
  *out = &m.channel_handles[id];
  return Status();
}

Status Engine::close_channel(Channel* channel) {
  Impl& m = *impl_;
  const std::size_t n = m.cfg.channel_count;
  if (channel == nullptr || n == 0 || channel < &m.channel_handles[0] ||
      channel >= &m.channel_handles[0] + n) {
    return Status::error(Errc::invalid_buffer, "close_channel: not a channel of this engine");
  }
  ChannelState& c = m.channels[channel->id_];
  std::lock_guard lk(m.mu);
  if (!c.open) return Status::error(Errc::invalid_buffer, "close_channel: channel %u is not open", c.id);
  if (c.reaping) {
    return Status::error(Errc::unavailable,
                         "close_channel: called from a callback inside channel %u's own poll",
                         c.id);
  }
  if (c.in_flight != 0) {
    return Status::error(Errc::would_block,
                         "close_channel: %zu request(s) accepted on channel %u are not reaped "
                         "yet; poll() or wait() for them, then close",
                         c.in_flight, c.id);
  }
  c.open = false;
  m.free_channels.push(c.id);
  return Status();
}

// ---- submit ----

// The calling thread crypts the request in `b` (one part), holding a crypt token: a
// channel's submitter (its channel's batch) or a small crypt_sync (a batch on its stack).
// The request's key and registered ranges are let go here; the caller counts it.
void Engine::Impl::crypt_inline(engine::Batch& b, RequestRecord& r) {
  b.reset();
  append_part(b, &r, 0, r.bytes);
  engine::crypt_guarded(*backend, b);
  Status st = b.parts[0].status;
  if (st.code() == Errc::backend_failure) {
    counters.add(counters.backend_failures, 1);
    if (fallback != nullptr && b.rerunnable && engine::whole_batch_failed(b)) {
      rerun_on_cpu(&b);
      st = b.parts[0].status;
    }
  }
  r.status = st;
  keys.release(r.key_index);
  if (r.registered) {
    registry.release(r.src_entry, r.src_count);
    registry.release(r.dst_entry, r.dst_count);
  }
}

// A worker (or the engine thread cancelling at shutdown) finished a channel request.
void Engine::Impl::post_to_channel(RequestRecord* r) {
  keys.release(r->key_index);
  counters.completed(r->status.ok(), r->bytes, ns_since(r->accepted));
  if (r->registered) {
    registry.release(r->src_entry, r->src_count);
    registry.release(r->dst_entry, r->dst_count);
  }
  ChannelState& c = *r->channel;
  // Read before the push: after it the owner may reap the record, close the channel and
  // open it again with other options.
  const bool notify_always = c.options.completion_fd;
  (void)c.finished.push(r->index - c.first_record);  // sized for every record: never full
  // Pairs with wait(): it sets `sleeping`, then looks at the ring; this pushes, then
  // looks at `sleeping`. One of the two sees the other.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (notify_always || c.sleeping.load(std::memory_order_relaxed)) signal_fd(c.event_fd);
  delivered.fetch_add(1);
  if (drain_waiters.load() != 0) {
    std::lock_guard lock(mu);
    drain_cv.notify_all();
  }
}

Status Channel::submit(const Request* reqs, std::size_t count, std::size_t* accepted) {
  if (accepted == nullptr) {
    return Status::error(Errc::invalid_buffer, "Channel::submit: accepted is null");
  }
  *accepted = 0;
  if (reqs == nullptr && count != 0) {
    return Status::error(Errc::invalid_buffer, "Channel::submit: reqs is null");
  }
  Engine::Impl& m = *engine_->impl_;
  ChannelState& c = m.channels[id_];
  if (!c.open) return Status::error(Errc::invalid_buffer, "channel %u is closed", c.id);

  // Records for the workers go onto the channel's submission ring as they are accepted
  // (channel_intake.cc); one wake-up look per run of them.
  constexpr std::size_t kWakeEvery = 32;
  std::size_t published = 0;
  bool crypted_inline = false;
  // A token taken for one inline request is kept for the next ones of this call: two
  // contended atomics per request fewer. Given back at the end, or as soon as a worker
  // waits for one.
  bool token = false;
  Status result;
  for (std::size_t i = 0; i < count; ++i) {
    const Request& req = reqs[i];
    if (m.stopping_now.load(std::memory_order_acquire)) {
      result = engine::shut_down_status();
      break;
    }
    if (Status s = engine::validate_request(req); !s) {
      result = s;
      break;
    }
    if (Status s = engine::validate_device_segments(*m.backend, req); !s) {
      result = s;
      break;
    }
    if (c.free_records.empty()) {
      c.counters.bump(c.counters.would_block, 1);
      result = Status::error(Errc::would_block,
                             "channel %u full: all %u records hold requests not reaped yet; "
                             "poll() and retry", c.id, c.depth);
      break;
    }
    uint32_t key_index = 0;
    if (Status s = m.keys.acquire(req.key, &key_index); !s) {
      result = s;
      break;
    }
    uint32_t local = 0;
    c.free_records.pop(&local);
    RequestRecord& r = m.records[c.first_record + local];
    m.fill_record(r, req, key_index);
    if (m.registry.any_active()) {
      std::lock_guard lk(m.mu);
      m.match_registered(r);
    }
    c.counters.bump(c.counters.accepted, 1);
    ++c.in_flight;
    if (c.options.ordered) {
      c.done[local] = 0;
      c.order.push(local);
    }
    ++*accepted;
    // Inline only while no worker waits for a token, so queued work is never starved.
    if (token && m.token_waiters.load(std::memory_order_relaxed) != 0) {
      m.release_token_unlocked();
      token = false;
    }
    if (m.cpu_inline && r.memory == MemoryKind::host && r.bytes <= m.cfg.inline_max_bytes &&
        (token || (m.token_waiters.load(std::memory_order_relaxed) == 0 && m.try_take_token()))) {
      token = true;
      m.crypt_inline(c.inline_batch, r);
      c.counters.bump(c.counters.inline_requests, 1);
      c.counters.completed(r.status.ok(), r.bytes, ns_since(r.accepted));
      mark_finished(c, local);
      crypted_inline = true;
      continue;
    }
    if (!c.submitting.load(std::memory_order_relaxed)) {
      c.submitting.store(true);  // then the look at stopping_now (channel_intake.cc)
      if (m.stopping_now.load()) {
        // Accepted already: it completes, with shut_down, rather than vanish.
        c.submitting.store(false, std::memory_order_release);
        engine::ChannelCounters::bump(c.to_workers, 1);
        r.status = engine::shut_down_status();
        m.post_to_channel(&r);
        continue;  // the next request, if any, is refused with shut_down
      }
    }
    m.publish_channel_record(c, r.index);
    if (++published % kWakeEvery == 0) m.wake_for_channel_work();
  }
  if (token) m.release_token_unlocked();
  if (published % kWakeEvery != 0) m.wake_for_channel_work();
  if (c.submitting.load(std::memory_order_relaxed)) {
    c.submitting.store(false, std::memory_order_release);
  }
  if (crypted_inline && c.options.completion_fd) signal_fd(c.event_fd);
  return result;
}

// ---- reaping ----

std::size_t Channel::poll(Completion* out, std::size_t max) {
  Engine::Impl& m = *engine_->impl_;
  ChannelState& c = m.channels[id_];
  collect(c);
  std::size_t n = 0;
  uint32_t local = 0;
  // At most what was reapable on entry: a callback that submits again, crypted inline,
  // makes its new request reapable at once, and a callback that always does would
  // otherwise keep this loop from returning.
  std::size_t budget = reapable(c);
  c.reaping = true;
  while (budget != 0 && peek_reapable(c, &local)) {
    RequestRecord& r = m.records[c.first_record + local];
    const bool has_callback = r.callback != nullptr || r.forward.call != nullptr;
    if (!has_callback && (out == nullptr || n == max)) break;
    --budget;
    if (c.options.ordered) {
      c.order.pop(&local);
      c.done[local] = 0;
    } else {
      c.ready.pop(&local);
    }
    // Copied out and the record freed first, so a callback may submit again.
    const Status status = r.status;
    const CompletionCallback callback = r.callback;
    const ForwardedCallback forward = r.forward;
    void* const context = r.user_context;
    const uint64_t bytes = r.bytes;
    c.free_records.push(local);
    --c.in_flight;
    if (!has_callback) {
      Completion& o = out[n++];
      o.status = status;
      o.user_context = context;
      o.bytes = bytes;
      o.slot = UINT32_MAX;
      continue;
    }
    try {
      if (forward.call != nullptr) {
        forward.call(status, forward.target, context);
      } else {
        callback(status, context);
      }
    } catch (...) {
      m.counters.add(m.counters.callback_exceptions, 1);
    }
  }
  c.reaping = false;
  return n;
}

std::size_t Channel::wait(Completion* out, std::size_t max, std::size_t min_count,
                          uint64_t timeout_us) {
  Engine::Impl& m = *engine_->impl_;
  ChannelState& c = m.channels[id_];
  const std::size_t want = std::min(min_count, c.in_flight);
  const uint64_t capped = std::min<uint64_t>(timeout_us, uint64_t{3600} * 1000000);
  const Clock::time_point deadline = Clock::now() + std::chrono::microseconds(capped);
  bool spun = false;
  for (;;) {
    collect(c);
    if (reapable(c) >= want) break;
    const Clock::time_point now = Clock::now();
    if (now >= deadline) break;
    if (!spun) {  // a worker about to finish: catch it without a sleep and a wake-up
      spun = true;
      if (engine::spin_until([&] { return c.finished.ready(); }, m.cfg.idle_spin_us)) continue;
    }
    c.sleeping.store(true, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!c.finished.ready()) {
      const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - now);
      timespec ts{static_cast<time_t>(left.count() / 1000000000),
                  static_cast<long>(left.count() % 1000000000)};
      pollfd p{c.event_fd, POLLIN, 0};
      (void)::ppoll(&p, 1, &ts, nullptr);
      drain_fd(c.event_fd);
    }
    c.sleeping.store(false, std::memory_order_relaxed);
    spun = false;
  }
  return poll(out, max);
}

int Channel::completion_fd() const { return engine_->impl_->channels[id_].event_fd; }
std::size_t Channel::in_flight() const { return engine_->impl_->channels[id_].in_flight; }
std::size_t Channel::depth() const { return engine_->impl_->channels[id_].depth; }

}  // namespace sectorcrypt
