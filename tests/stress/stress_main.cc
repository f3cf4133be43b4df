// sectorcrypt_stress (issue 7): many producers, random request shapes, small slot pools,
// blocking and non-blocking submit, zero-copy, crypt_sync (whose caller crypts its own
// batches beside the workers), faults injected at random (links
// sectorcrypt_fi). With --channel-producers (issue 11) more producers each own a channel:
// batch submits that may be accepted only in part, completions reaped by the owner as
// callbacks or Completions, and on ordered channels a check of the submission order. Every request that completes ok is checked against the CPU kernels
// (tested byte for byte against the reference elsewhere); every failed one must have
// left its output untouched. Exits non-zero on any mismatch, lost or duplicated
// completion, unexpected error, or a stall (watchdog).
#include <sys/uio.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine.h"
#include "engine/fault_injection.h"
#include "kernels/cpu/xts_cpu.h"

namespace sc = sectorcrypt;
using sc::engine::fault::Point;

namespace {

struct Options {
  double seconds = 5;
  uint64_t requests = 0;  // 0: until --seconds
  unsigned producers = 8;
  std::size_t slots = 2;
  std::size_t slot_bytes = 64 * 1024;
  unsigned max_sectors = 8;
  unsigned window = 4;
  unsigned threads = 2;
  double fault_rate = 0.0;
  bool fallback = false;
  unsigned channel_producers = 0;  // producers on channels of their own (issue 11)
  std::size_t channel_depth = 16;
  std::size_t inline_max = sc::EngineConfig{}.inline_max_bytes;
  // 0: no thread polls, so every hand-off is a sleep and a notify, and a lost wake-up
  // hangs the run instead of being covered by a poller.
  uint32_t idle_spin_us = sc::EngineConfig{}.idle_spin_us;
  uint64_t seed = 1;
  std::string json;
};

struct Counters {
  std::atomic<uint64_t> submitted{0}, completed{0}, ok{0}, errors{0}, bytes{0};
  std::atomic<uint64_t> mismatches{0}, failed_garbage{0}, failed_partly_written{0}, dup{0};
  std::atomic<uint64_t> unexpected{0};
  std::atomic<uint64_t> slot_twice{0}, slot_twice_accepted{0};
  std::atomic<uint64_t> zero_copy{0}, try_submits{0}, would_block{0}, sync_calls{0};
  std::atomic<uint64_t> channel_submitted{0}, channel_batches{0}, channel_partial{0};
  std::atomic<uint64_t> channel_would_block{0}, channel_callbacks{0}, channel_polled{0};
  std::atomic<uint64_t> order_violations{0}, off_owner{0};
  std::atomic<uint64_t> fired[static_cast<unsigned>(Point::count)] = {};
};
Counters g;
double g_fault_rate = 0;

thread_local uint64_t tl_rng = 0x9e3779b97f4a7c15ull;
uint64_t next_rand() {  // xorshift64*: per thread, no locks, no allocation
  tl_rng ^= tl_rng >> 12;
  tl_rng ^= tl_rng << 25;
  tl_rng ^= tl_rng >> 27;
  return tl_rng * 0x2545f4914f6cdd1dull;
}
bool chance(double p) { return p > 0 && static_cast<double>(next_rand() >> 11) * 0x1p-53 < p; }

bool fault_hook(Point p, void*) {
  if (!chance(g_fault_rate)) return false;
  g.fired[static_cast<unsigned>(p)].fetch_add(1, std::memory_order_relaxed);
  return true;
}

struct Key {
  sc::KeyHandle handle;
  sc::XtsKey ref;
};

struct Job;

// A channel producer's view of its channel, which every one of its jobs points at: the
// order it expects completions in (ordered channels), and where the jobs reaped by one
// poll()/wait() wait to be verified and reused.
struct ChannelTrack {
  bool ordered = false;
  std::thread::id owner;
  bool reaping = false;     // inside poll()/wait(): the only place a callback may run
  uint64_t next_done = 0;   // ordered: the sequence number the next completion must have
  std::vector<Job*> reaped;
};

// One request in flight: its buffers, what it was, and how it ended.
struct Job {
  std::vector<uint8_t> input, src, dst;  // src: the submitted buffer (== result in place)
  bool in_place = false, zero_copy = false, throw_in_callback = false;
  const Key* key = nullptr;
  sc::Direction dir = sc::Direction::encrypt;
  sc::SectorFormat format;
  uint64_t start = 0;
  std::size_t bytes = 0;
  iovec sv[sc::kMaxSegments] = {}, dv[sc::kMaxSegments] = {};
  std::size_t sc_ = 0, dc_ = 0;
  std::atomic<int> done{0};
  sc::Errc code = sc::Errc::ok;
  std::mutex mu;
  std::condition_variable cv;
  ChannelTrack* track = nullptr;  // submitted on a channel: its owner's view of it
  uint64_t seq = 0;               // on a channel: its place in the submission order

  // How every request ends, by callback or by a reaped Completion.
  static void finish(Job* j, sc::Errc code) {
    g.completed.fetch_add(1, std::memory_order_relaxed);
    // Notified under the lock: once it is released the waiter may destroy the job.
    std::lock_guard lock(j->mu);
    j->code = code;
    if (j->done.fetch_add(1) != 0) g.dup.fetch_add(1);
    if (ChannelTrack* t = j->track) {
      // A channel's completions reach only its owner, inside poll()/wait() (the order
      // is checked per call: check_order).
      if (!t->reaping || std::this_thread::get_id() != t->owner) {
        g.off_owner.fetch_add(1);
        std::fprintf(stderr, "a channel request completed %s\n",
                     t->reaping ? "on another thread" : "outside its owner's poll()/wait()");
      }
      t->reaped.push_back(j);
    }
    j->cv.notify_all();
  }
  static void on_done(const sc::Status& s, void* p) {
    Job* j = static_cast<Job*>(p);
    const bool throw_now = j->throw_in_callback;
    finish(j, s.code());
    if (throw_now) throw std::runtime_error("stress: injected callback fault");
  }
  void wait() {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return done.load() != 0; });
  }
};

// Cuts [0, n) into 1..4 segments at sector-independent byte offsets.
std::size_t split(uint8_t* base, std::size_t n, iovec* out) {
  std::size_t count = 1 + next_rand() % 4;
  if (n < 64) count = 1;
  std::size_t cuts[4] = {0};
  for (std::size_t i = 1; i < count; ++i) cuts[i] = 1 + next_rand() % (n - 1);
  std::sort(cuts, cuts + count);
  std::size_t k = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t end = i + 1 < count ? cuts[i + 1] : n;
    if (end > cuts[i]) out[k++] = {base + cuts[i], end - cuts[i]};
  }
  return k;
}

void verify(Job& j, const uint8_t* result) {
  if (j.done.load() != 1) return;  // counted as lost or dup elsewhere
  if (j.code == sc::Errc::ok) {
    g.ok.fetch_add(1, std::memory_order_relaxed);
    g.bytes.fetch_add(j.bytes, std::memory_order_relaxed);
    std::vector<uint8_t> want(j.bytes);
    const sc::Status s = sc::cpu::xts_crypt_sectors(j.key->ref, j.dir, j.format, j.start,
                                                    j.input.data(), want.data(), j.bytes);
    if (!s || std::memcmp(want.data(), result, j.bytes) != 0) {
      g.mismatches.fetch_add(1);
      std::fprintf(stderr, "MISMATCH: %zu bytes, sector size %u, iv %s%s, start %llu, %s, "
                   "in_place %d, zero_copy %d, segments %zu/%zu\n",
                   j.bytes, j.format.sector_size, sc::iv_mode_name(j.format.iv_mode),
                   j.format.iv_large_sectors ? " (large)" : "",
                   static_cast<unsigned long long>(j.start),
                   j.dir == sc::Direction::encrypt ? "encrypt" : "decrypt", j.in_place,
                   j.zero_copy, j.sc_, j.dc_);
    }
    return;
  }
  g.errors.fetch_add(1, std::memory_order_relaxed);
  if (j.code != sc::Errc::backend_failure) g.unexpected.fetch_add(1);
  // A failed request was cut over batches that failed or not: each sector of its output
  // is either untouched (in place: still the input; else the fill) or the right result,
  // never anything else.
  std::vector<uint8_t> want(j.bytes);
  (void)sc::cpu::xts_crypt_sectors(j.key->ref, j.dir, j.format, j.start, j.input.data(),
                                   want.data(), j.bytes);
  const uint32_t ss = j.format.sector_size;
  for (std::size_t off = 0; off < j.bytes; off += ss) {
    const uint8_t* got = result + off;
    bool untouched = true;
    if (j.zero_copy || j.in_place) {
      untouched = std::memcmp(got, j.input.data() + off, ss) == 0;
    } else {
      for (uint32_t i = 0; i < ss && untouched; ++i) untouched = got[i] == 0xa5;
    }
    if (!untouched && std::memcmp(got, want.data() + off, ss) == 0) {
      g.failed_partly_written.fetch_add(1, std::memory_order_relaxed);
    } else if (!untouched) {
      g.failed_garbage.fetch_add(1);
    }
  }
}

struct Shared {
  Options opt;
  sc::Engine* e = nullptr;
  std::vector<Key> keys;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> budget{0};  // requests left to hand out (when --requests)
};

bool take_ticket(Shared& sh) {
  if (sh.stop.load(std::memory_order_relaxed)) return false;
  if (sh.opt.requests == 0) return true;
  uint64_t b = sh.budget.load();
  while (b > 0) {
    if (sh.budget.compare_exchange_weak(b, b - 1)) return true;
  }
  return false;
}

void shape(Shared& sh, Job& j) {
  static constexpr uint32_t kSizes[] = {512, 1024, 2048, 4096};
  j.key = &sh.keys[next_rand() % sh.keys.size()];
  j.dir = next_rand() % 2 ? sc::Direction::encrypt : sc::Direction::decrypt;
  j.format.sector_size = kSizes[next_rand() % 4];
  j.format.iv_mode = static_cast<sc::IvMode>(next_rand() % 3);
  j.format.iv_large_sectors = next_rand() % 4 == 0;
  const std::size_t max_by_slot = sh.opt.slot_bytes / j.format.sector_size;
  std::size_t sectors = 1 + next_rand() % sh.opt.max_sectors;
  // Mostly within a slot; sometimes larger, so the request splits over batches.
  if (next_rand() % 8 != 0) sectors = std::min(sectors, max_by_slot);
  j.bytes = sectors * j.format.sector_size;
  const uint64_t step = j.format.sector_size / 512;
  j.start = (next_rand() % (1u << 20)) * step;
  j.throw_in_callback = chance(sh.opt.fault_rate);
}

// A copy request for the shaped job `j`: random input, in place or to a filled output,
// both sides cut into random segments; completes through Job::on_done. The engine's
// submit() and a channel's submit() take the same requests.
sc::Request build_copy_request(Job& j) {
  j.zero_copy = false;
  j.in_place = next_rand() % 3 == 0;
  j.input.resize(j.bytes);
  for (auto& b : j.input) b = static_cast<uint8_t>(next_rand());
  j.src = j.input;
  j.dst.assign(j.in_place ? 0 : j.bytes, 0xa5);
  j.sc_ = split(j.src.data(), j.bytes, j.sv);
  j.dc_ = j.in_place ? 0 : split(j.dst.data(), j.bytes, j.dv);
  sc::Request r;
  r.key = j.key->handle;
  r.dir = j.dir;
  r.format = j.format;
  r.start_sector = j.start;
  r.src = j.sv;
  r.src_count = j.sc_;
  r.dst = j.in_place ? nullptr : j.dv;
  r.dst_count = j.dc_;
  r.callback = &Job::on_done;
  r.user_context = &j;
  r.flush = next_rand() % 16 == 0;
  j.done.store(0);
  return r;
}

void copy_request(Shared& sh, Job& j) {
  const sc::Request r = build_copy_request(j);
  sc::Status s;
  if (next_rand() % 2 == 0) {
    g.try_submits.fetch_add(1, std::memory_order_relaxed);
    while ((s = sh.e->try_submit(r)).code() == sc::Errc::would_block) {
      g.would_block.fetch_add(1, std::memory_order_relaxed);
      std::this_thread::yield();
    }
  } else {
    s = sh.e->submit(r);
  }
  if (!s) {
    std::fprintf(stderr, "submit refused a valid request: %s\n", s.message());
    g.unexpected.fetch_add(1);
    j.done.store(1);
    j.code = sc::Errc::ok;
    return;
  }
  g.submitted.fetch_add(1, std::memory_order_relaxed);
}

// Zero-copy: the only request this producer has in flight while it holds the slot (a
// producer that held a lent slot while waiting for its copy requests could starve them
// of the only slot: a caller's deadlock, not the engine's).
void zero_copy_request(Shared& sh, Job& j) {
  j.zero_copy = true;
  j.in_place = true;
  if (j.bytes > sh.opt.slot_bytes) j.bytes = sh.opt.slot_bytes / j.format.sector_size * j.format.sector_size;
  sc::SlotHandle h;
  sc::Status s = sh.e->try_acquire_slot(&h);
  if (s.code() == sc::Errc::would_block) s = sh.e->acquire_slot(&h);
  if (!s) {
    g.unexpected.fetch_add(1);
    return;
  }
  j.input.resize(j.bytes);
  for (auto& b : j.input) b = static_cast<uint8_t>(next_rand());
  std::memcpy(h.data, j.input.data(), j.bytes);
  sc::SlotRequest r;
  r.key = j.key->handle;
  r.dir = j.dir;
  r.format = j.format;
  r.start_sector = j.start;
  r.bytes = j.bytes;
  r.callback = &Job::on_done;
  r.user_context = &j;
  j.done.store(0);
  s = sh.e->submit_slot(h, r);
  if (!s) {
    std::fprintf(stderr, "submit_slot refused: %s\n", s.message());
    g.unexpected.fetch_add(1);
    (void)sh.e->release_slot(h);
    return;
  }
  g.submitted.fetch_add(1, std::memory_order_relaxed);
  g.zero_copy.fetch_add(1, std::memory_order_relaxed);
  j.wait();
  verify(j, h.data);
  if (!sh.e->release_slot(h).ok()) g.unexpected.fetch_add(1);
  // Returned twice: always refused, also when another producer holds the slot again by
  // now (the handle's generation is stale then), and that owner keeps it.
  if (chance(sh.opt.fault_rate)) {
    g.slot_twice.fetch_add(1);
    if (sh.e->release_slot(h).ok()) g.slot_twice_accepted.fetch_add(1);
  }
}

// crypt_sync, often over several slots: when its request is next in line the caller
// takes a crypt token and crypts the request's batches beside the workers. Like a
// zero-copy slot it is the only request this producer has in flight.
void sync_request(Shared& sh, Job& j) {
  j.zero_copy = false;
  j.throw_in_callback = false;  // the callback is crypt_sync's own
  j.in_place = next_rand() % 3 == 0;
  const std::size_t max_by_slot = sh.opt.slot_bytes / j.format.sector_size;
  j.bytes = (1 + next_rand() % (4 * max_by_slot)) * j.format.sector_size;
  j.input.resize(j.bytes);
  for (auto& b : j.input) b = static_cast<uint8_t>(next_rand());
  j.src = j.input;
  j.dst.assign(j.in_place ? 0 : j.bytes, 0xa5);
  uint8_t* out = j.in_place ? j.src.data() : j.dst.data();
  j.done.store(0);
  g.submitted.fetch_add(1, std::memory_order_relaxed);
  g.sync_calls.fetch_add(1, std::memory_order_relaxed);
  const sc::Status s =
      sh.e->crypt_sync(j.key->handle, j.dir, j.format, j.start, j.src.data(), out, j.bytes);
  g.completed.fetch_add(1, std::memory_order_relaxed);
  j.code = s.code();
  j.done.store(1);
  if (!s && s.code() != sc::Errc::backend_failure) {
    std::fprintf(stderr, "crypt_sync: %s\n", s.message());
  }
  verify(j, out);
}

void producer(Shared& sh, unsigned id) {
  tl_rng = (sh.opt.seed + 1) * 0x9e3779b97f4a7c15ull ^ (id + 1) * 0xbf58476d1ce4e5b9ull;
  std::vector<std::unique_ptr<Job>> ring(sh.opt.window);
  for (auto& j : ring) {
    j = std::make_unique<Job>();
    j->done.store(1);  // empty
    j->code = sc::Errc::ok;
    j->bytes = 0;
  }
  auto retire = [&](Job& j) {
    if (j.bytes == 0) return;
    j.wait();
    verify(j, j.in_place ? j.src.data() : j.dst.data());
    j.bytes = 0;
  };
  std::size_t next = 0;
  while (take_ticket(sh)) {
    if (const uint64_t pick = next_rand() % 16; pick < 3) {
      for (auto& j : ring) retire(*j);
      Job z;
      shape(sh, z);
      if (pick < 2) {
        zero_copy_request(sh, z);
      } else {
        sync_request(sh, z);
      }
      continue;
    }
    Job& j = *ring[next];
    next = (next + 1) % ring.size();
    retire(j);
    shape(sh, j);
    copy_request(sh, j);
  }
  for (auto& j : ring) retire(*j);
}

// Ordered channel: one poll()/wait() reaps a prefix of what is still in flight, in
// submission order. What the owner can see of that: the callbacks (run inside the call,
// in t.reaped first) in increasing order, the Completions (out[], appended after) in
// increasing order, and together exactly the next `reaped.size()` sequence numbers.
void check_order(ChannelTrack& t, uint64_t first, std::size_t completions) {
  const std::size_t n = t.reaped.size(), callbacks = n - completions;
  bool ok = true;
  for (std::size_t i = 1; i < n; ++i) {
    if (i != callbacks && t.reaped[i]->seq <= t.reaped[i - 1]->seq) ok = false;
  }
  uint64_t lo = UINT64_MAX, hi = 0;
  for (const Job* j : t.reaped) {
    lo = std::min(lo, j->seq);
    hi = std::max(hi, j->seq);
  }
  if (n != 0 && (lo != first || hi != first + n - 1)) ok = false;
  if (!ok) {
    g.order_violations.fetch_add(1);
    std::fprintf(stderr, "ORDER: ordered channel reaped %zu callbacks + %zu completions not "
                 "as the prefix #%llu.. in submission order\n", callbacks, completions,
                 static_cast<unsigned long long>(first));
  }
  t.next_done = first + n;
}

// A producer on a channel of its own (issue 11). It keeps up to --window jobs between
// shaping and verification: shaped like the copy path's, submitted in batches of 1..8
// with Channel::submit (would_block takes a prefix only: the rest stays pending and is
// submitted again later, in the same order), about half with a callback (run by
// poll()/wait() on this thread) and the rest reaped as Completions. Even ids ask for an
// ordered channel and check its order; every other pair asks for the completion fd.
void channel_producer(Shared& sh, unsigned id) {
  tl_rng = (sh.opt.seed + 1) * 0x9e3779b97f4a7c15ull ^
           (sh.opt.producers + id + 1) * 0xbf58476d1ce4e5b9ull;
  ChannelTrack track;
  track.ordered = id % 2 == 0;
  track.owner = std::this_thread::get_id();
  sc::ChannelOptions co;
  co.ordered = track.ordered;
  co.completion_fd = (id / 2) % 2 == 1;
  sc::Channel* ch = nullptr;
  if (const sc::Status s = sh.e->open_channel(co, &ch); !s) {
    std::fprintf(stderr, "open_channel (channel producer %u): %s\n", id, s.message());
    g.unexpected.fetch_add(1);
    return;
  }
  const std::size_t window = sh.opt.window;
  std::vector<std::unique_ptr<Job>> jobs(window);
  std::vector<Job*> idle;               // free to shape
  std::vector<Job*> pending;            // shaped, not accepted yet, in submission order
  std::vector<sc::Request> reqs;        // pending[i]'s request
  std::vector<sc::Completion> out(window);
  for (auto& j : jobs) {
    j = std::make_unique<Job>();
    j->track = &track;
    idle.push_back(j.get());
  }
  track.reaped.reserve(window);
  uint64_t next_seq = 0;
  std::size_t in_flight = 0;  // accepted, not reaped

  // Submits what is pending; true when the channel answered would_block.
  auto submit_pending = [&]() -> bool {
    while (!pending.empty()) {
      const std::size_t n = std::min<std::size_t>(pending.size(), 1 + next_rand() % 8);
      std::size_t accepted = SIZE_MAX;
      const sc::Status s = ch->submit(reqs.data(), n, &accepted);
      g.channel_batches.fetch_add(1, std::memory_order_relaxed);
      if (accepted > n || (s.ok() && accepted != n) || (!s.ok() && accepted == n)) {
        std::fprintf(stderr, "Channel::submit: %zu of %zu accepted, status %s\n", accepted, n,
                     s.ok() ? "ok" : s.message());
        g.unexpected.fetch_add(1);
        accepted = std::min(accepted, n);
      }
      // Numbered at acceptance: callbacks and Completions come only from poll()/wait().
      for (std::size_t i = 0; i < accepted; ++i) pending[i]->seq = next_seq++;
      in_flight += accepted;
      g.submitted.fetch_add(accepted, std::memory_order_relaxed);
      g.channel_submitted.fetch_add(accepted, std::memory_order_relaxed);
      pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(accepted));
      reqs.erase(reqs.begin(), reqs.begin() + static_cast<std::ptrdiff_t>(accepted));
      if (s.ok()) continue;
      if (accepted != 0) g.channel_partial.fetch_add(1, std::memory_order_relaxed);
      if (s.code() == sc::Errc::would_block) {
        g.channel_would_block.fetch_add(1, std::memory_order_relaxed);
        // "Full" means every record holds a request not reaped yet, nothing else.
        if (ch->in_flight() != ch->depth() || in_flight != ch->depth()) {
          std::fprintf(stderr, "would_block with %zu of %zu records taken (%zu here)\n",
                       ch->in_flight(), ch->depth(), in_flight);
          g.unexpected.fetch_add(1);
        }
        return true;
      }
      std::fprintf(stderr, "Channel::submit refused a valid request: %s\n", s.message());
      g.unexpected.fetch_add(1);
      idle.push_back(pending.front());  // dropped: never accepted, never completes
      pending.erase(pending.begin());
      reqs.erase(reqs.begin());
    }
    return false;
  };

  // Reaps what is finished (waiting for some when `block`), then verifies it.
  auto reap = [&](bool block) {
    track.reaping = true;
    const uint64_t first = track.next_done;
    std::size_t n = 0;
    if (block && in_flight != 0) {
      const std::size_t min_count = 1 + next_rand() % in_flight;
      n = ch->wait(out.data(), out.size(), min_count, 2000);
    } else {
      n = ch->poll(out.data(), out.size());
    }
    g.channel_callbacks.fetch_add(track.reaped.size(), std::memory_order_relaxed);
    g.channel_polled.fetch_add(n, std::memory_order_relaxed);
    for (std::size_t i = 0; i < n; ++i) {
      Job* j = static_cast<Job*>(out[i].user_context);
      if (out[i].bytes != j->bytes || out[i].slot != UINT32_MAX) {
        std::fprintf(stderr, "Completion: %llu bytes, slot %u, for a %zu-byte request\n",
                     static_cast<unsigned long long>(out[i].bytes), out[i].slot, j->bytes);
        g.unexpected.fetch_add(1);
      }
      Job::finish(j, out[i].status.code());
    }
    track.reaping = false;
    if (track.ordered) check_order(track, first, n);
    in_flight -= std::min(in_flight, track.reaped.size());
    if (ch->in_flight() != in_flight) {
      std::fprintf(stderr, "channel says %zu in flight, its producer %zu\n", ch->in_flight(),
                   in_flight);
      g.unexpected.fetch_add(1);
      in_flight = ch->in_flight();
    }
    for (Job* j : track.reaped) {
      verify(*j, j->in_place ? j->src.data() : j->dst.data());
      idle.push_back(j);
    }
    track.reaped.clear();
  };

  bool more = true;
  for (;;) {
    while (more && !idle.empty()) {
      if (!take_ticket(sh)) {
        more = false;
        break;
      }
      Job* j = idle.back();
      idle.pop_back();
      shape(sh, *j);
      sc::Request r = build_copy_request(*j);
      if (next_rand() % 2 == 0) r.callback = nullptr;  // reaped as a Completion
      r.post_completion = next_rand() % 4 == 0;         // ignored on a channel
      pending.push_back(j);
      reqs.push_back(r);
    }
    const bool full = submit_pending();
    if (!more && pending.empty() && in_flight == 0) break;
    // Wait when nothing else can be done; else reap now and then without waiting.
    const bool stuck = full || idle.empty() || !more;
    if (stuck || next_rand() % 2 == 0) reap(stuck);
  }
  if (const sc::Status s = sh.e->close_channel(ch); !s) {
    std::fprintf(stderr, "close_channel (channel producer %u): %s\n", id, s.message());
    g.unexpected.fetch_add(1);
  }
}

int parse(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto val = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--seconds") o->seconds = std::atof(val());
    else if (a == "--requests") o->requests = std::strtoull(val(), nullptr, 10);
    else if (a == "--producers") o->producers = static_cast<unsigned>(std::atoi(val()));
    else if (a == "--slots") o->slots = std::strtoull(val(), nullptr, 10);
    else if (a == "--slot-bytes") o->slot_bytes = std::strtoull(val(), nullptr, 10);
    else if (a == "--max-sectors") o->max_sectors = static_cast<unsigned>(std::atoi(val()));
    else if (a == "--window") o->window = static_cast<unsigned>(std::atoi(val()));
    else if (a == "--threads") o->threads = static_cast<unsigned>(std::atoi(val()));
    else if (a == "--fault-rate") o->fault_rate = std::atof(val());
    else if (a == "--fallback") o->fallback = true;
    else if (a == "--channel-producers") o->channel_producers = static_cast<unsigned>(std::atoi(val()));
    else if (a == "--channel-depth") o->channel_depth = std::strtoull(val(), nullptr, 10);
    else if (a == "--inline-max") o->inline_max = std::strtoull(val(), nullptr, 10);
    else if (a == "--idle-spin-us") o->idle_spin_us = static_cast<uint32_t>(std::strtoul(val(), nullptr, 10));
    else if (a == "--seed") o->seed = std::strtoull(val(), nullptr, 10);
    else if (a == "--json") o->json = val();
    else {
      std::fprintf(stderr,
                   "usage: sectorcrypt_stress [--seconds S] [--requests N] [--producers P] "
                   "[--slots K] [--slot-bytes B] [--max-sectors M] [--window W] [--threads T] "
                   "[--fault-rate F] [--fallback] [--channel-producers N] [--channel-depth D] "
                   "[--inline-max B] [--idle-spin-us U] [--seed X] [--json FILE]\n");
      return 2;
    }
  }
  if (o->producers + o->channel_producers == 0 || o->window == 0 || o->max_sectors == 0) {
    return 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Shared sh;
  if (int rc = parse(argc, argv, &sh.opt); rc != 0) return rc;
  const Options& o = sh.opt;
  g_fault_rate = o.fault_rate;
  sc::EngineConfig c;
  c.backend = sc::BackendKind::cpu;
  c.threads = o.threads;
  c.slot_count = o.slots;
  c.slot_bytes = o.slot_bytes;
  c.cpu_fallback = o.fallback;
  if (o.channel_producers != 0) {  // one channel each; else the defaults, unused
    c.channel_count = o.channel_producers;
    c.channel_depth = o.channel_depth;
  }
  c.inline_max_bytes = o.inline_max;
  c.idle_spin_us = o.idle_spin_us;
  std::unique_ptr<sc::Engine> e;
  if (sc::Status s = sc::Engine::create(c, &e); !s) {
    std::fprintf(stderr, "create: %s\n", s.message());
    return 2;
  }
  sh.e = e.get();
  std::mt19937_64 kg(o.seed);
  for (int i = 0; i < 6; ++i) {
    std::vector<uint8_t> raw(i % 2 ? 64 : 32);
    for (auto& b : raw) b = static_cast<uint8_t>(kg());
    raw[0] ^= 0x5a;
    Key k;
    if (!e->add_key(raw.data(), raw.size(), {}, &k.handle) ||
        !sc::XtsKey::create(raw.data(), raw.size(), &k.ref)) {
      std::fprintf(stderr, "add_key failed\n");
      return 2;
    }
    sh.keys.push_back(k);
  }
  sh.budget.store(o.requests);
  if (o.fault_rate > 0) sc::engine::fault::set_hook(&fault_hook, nullptr);

  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < o.producers; ++i) threads.emplace_back(producer, std::ref(sh), i);
  for (unsigned i = 0; i < o.channel_producers; ++i) {
    threads.emplace_back(channel_producer, std::ref(sh), i);
  }

  // Watchdog and time limit: no completion for 30 s while requests are outstanding is a
  // hang; report and abort rather than wait forever.
  std::atomic<bool> producers_done{false};
  std::thread watch([&] {
    uint64_t last = g.completed.load();
    auto last_change = std::chrono::steady_clock::now();
    while (!producers_done.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      const auto now = std::chrono::steady_clock::now();
      if (o.requests == 0 && now - t0 > std::chrono::duration<double>(o.seconds)) sh.stop.store(true);
      // A run by count still ends by time, at 20x --seconds, so CI cannot hang on it.
      if (o.requests != 0 && now - t0 > std::chrono::duration<double>(o.seconds * 20)) sh.stop.store(true);
      const uint64_t c2 = g.completed.load();
      if (c2 != last) {
        last = c2;
        last_change = now;
      } else if (g.submitted.load() > c2 && now - last_change > std::chrono::seconds(30)) {
        std::fprintf(stderr, "WATCHDOG: no completion for 30 s with %llu outstanding: hang\n",
                     static_cast<unsigned long long>(g.submitted.load() - c2));
        std::abort();
      }
    }
  });
  for (auto& t : threads) t.join();
  producers_done.store(true);
  watch.join();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const sc::EngineStats st = e->stats();
  e.reset();
  sc::engine::fault::set_hook(nullptr, nullptr);

  const uint64_t submitted = g.submitted.load(), completed = g.completed.load();
  const uint64_t lost = submitted > completed ? submitted - completed : 0;
  uint64_t faults = g.slot_twice.load();
  for (auto& f : g.fired) faults += f.load();
  const uint64_t callback_faults = st.callback_exceptions;
  faults += callback_faults;
  // EngineStats::requests counts channel requests too (inline or through the workers).
  const bool pass = g.mismatches == 0 && lost == 0 && g.dup == 0 && g.unexpected == 0 &&
                    g.failed_garbage == 0 && g.slot_twice_accepted == 0 &&
                    g.order_violations == 0 && g.off_owner == 0 &&
                    st.requests == submitted && st.channel_requests == g.channel_submitted;
  char buf[4096];
  std::snprintf(
      buf, sizeof(buf),
      "{\n  \"pass\": %s,\n  \"wall_s\": %.2f,\n  \"producers\": %u,\n  \"slots\": %zu,\n"
      "  \"slot_bytes\": %zu,\n  \"crypt_threads\": %u,\n  \"fault_rate\": %g,\n"
      "  \"cpu_fallback\": %s,\n  \"requests\": %llu,\n  \"completed\": %llu,\n"
      "  \"ok\": %llu,\n  \"bytes_ok\": %llu,\n  \"zero_copy\": %llu,\n  \"crypt_sync\": %llu,\n"
      "  \"try_submit\": %llu,\n"
      "  \"would_block\": %llu,\n  \"faults_injected\": %llu,\n  \"faults\": {\"kernel_error\": %llu, "
      "\"crypt_throw\": %llu, \"fallback_error\": %llu, \"callback_throw\": %llu, "
      "\"slot_released_twice\": %llu},\n  \"errors_reported\": %llu,\n  \"cpu_reruns\": %llu,\n"
      "  \"mismatches\": %llu,\n  \"failed_sectors_garbage\": %llu,\n"
      "  \"failed_sectors_written_right\": %llu,\n  \"lost\": %llu,\n"
      "  \"completed_twice\": %llu,\n  \"unexpected\": %llu,\n  \"slot_twice_accepted\": %llu,\n"
      "  \"engine_requests\": %llu,\n  \"channel_producers\": %u,\n"
      "  \"channel_depth\": %zu,\n  \"inline_max_bytes\": %zu,\n  \"channel_requests\": %llu,\n"
      "  \"engine_channel_requests\": %llu,\n  \"inline_requests\": %llu,\n"
      "  \"channel_batches\": %llu,\n  \"channel_partial_accepts\": %llu,\n"
      "  \"channel_would_block\": %llu,\n  \"channel_callbacks\": %llu,\n"
      "  \"channel_polled\": %llu,\n  \"order_violations\": %llu,\n"
      "  \"completed_off_owner\": %llu\n}\n",
      pass ? "true" : "false", wall, o.producers, o.slots, o.slot_bytes, o.threads,
      o.fault_rate, o.fallback ? "true" : "false", (unsigned long long)submitted,
      (unsigned long long)completed, (unsigned long long)g.ok.load(),
      (unsigned long long)g.bytes.load(), (unsigned long long)g.zero_copy.load(),
      (unsigned long long)g.sync_calls.load(), (unsigned long long)g.try_submits.load(), (unsigned long long)g.would_block.load(),
      (unsigned long long)faults,
      (unsigned long long)g.fired[static_cast<unsigned>(Point::kernel_error)].load(),
      (unsigned long long)g.fired[static_cast<unsigned>(Point::crypt_throw)].load(),
      (unsigned long long)g.fired[static_cast<unsigned>(Point::fallback_error)].load(),
      (unsigned long long)callback_faults, (unsigned long long)g.slot_twice.load(),
      (unsigned long long)g.errors.load(), (unsigned long long)st.cpu_fallbacks,
      (unsigned long long)g.mismatches.load(), (unsigned long long)g.failed_garbage.load(),
      (unsigned long long)g.failed_partly_written.load(),
      (unsigned long long)lost, (unsigned long long)g.dup.load(),
      (unsigned long long)g.unexpected.load(), (unsigned long long)g.slot_twice_accepted.load(),
      (unsigned long long)st.requests, o.channel_producers, o.channel_depth, o.inline_max,
      (unsigned long long)g.channel_submitted.load(), (unsigned long long)st.channel_requests,
      (unsigned long long)st.inline_requests, (unsigned long long)g.channel_batches.load(),
      (unsigned long long)g.channel_partial.load(),
      (unsigned long long)g.channel_would_block.load(),
      (unsigned long long)g.channel_callbacks.load(), (unsigned long long)g.channel_polled.load(),
      (unsigned long long)g.order_violations.load(), (unsigned long long)g.off_owner.load());
  std::fputs(buf, stdout);
  if (!o.json.empty()) {
    if (FILE* f = std::fopen(o.json.c_str(), "w")) {
      std::fputs(buf, f);
      std::fclose(f);
    }
  }
  return pass ? 0 : 1;
}
