// No heap allocation after create: this binary interposes every allocation entry point
// (malloc, calloc, realloc, free, posix_memalign, aligned_alloc, memalign, valloc,
// pvalloc, and every form of operator new/delete), counting calls on every thread while
// an "armed" flag is set. After a warm-up it runs a steady mixed stream (sizes, keys,
// directions, formats, in place and not, copy/zero-copy/sync/polled) and requires the
// count to be exactly zero.

#include <execinfo.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "engine/fault_injection.h"
#ifdef SECTORCRYPT_HAVE_CUDA
#include <cuda_runtime.h>
#endif
#include "tests/engine/engine_test_support.h"

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void __libc_free(void*);
void* __libc_memalign(std::size_t, std::size_t);
}

namespace {

std::atomic<bool> g_armed{false};
std::atomic<uint64_t> g_calls{0};

// SECTORCRYPT_ALLOC_TRAP=1: abort at the first counted call, so a debugger shows who.
const bool g_trap = std::getenv("SECTORCRYPT_ALLOC_TRAP") != nullptr;

// SECTORCRYPT_ALLOC_TRACE=N (N <= 16): keep the call stacks of the first N counted calls
// and print them when a phase fails, for machines without a debugger (the GPU hosts).
// The buffers are static and backtrace() is warmed up before arming, so tracing itself
// allocates nothing.
constexpr int kMaxTraces = 16;
constexpr int kTraceDepth = 32;
struct Trace {
  char kind;  // 'a' allocation, 'f' free
  int depth;
  void* frames[kTraceDepth];
};
Trace g_traces[kMaxTraces];
std::atomic<int> g_traced{0};
const int g_trace_limit = [] {
  const char* v = std::getenv("SECTORCRYPT_ALLOC_TRACE");
  const int n = v == nullptr ? 0 : std::atoi(v);
  if (n > 0) {
    void* warm[2];
    backtrace(warm, 2);  // loads libgcc_s now, not inside a counted call
  }
  return n < 0 ? 0 : n > kMaxTraces ? kMaxTraces : n;
}();
thread_local bool t_tracing = false;

void trace(char kind) {
  if (g_trace_limit == 0 || t_tracing) return;
  const int i = g_traced.fetch_add(1, std::memory_order_relaxed);
  if (i >= g_trace_limit) return;
  t_tracing = true;
  g_traces[i].kind = kind;
  g_traces[i].depth = backtrace(g_traces[i].frames, kTraceDepth);
  t_tracing = false;
}

// Prints the stacks kept since the last call (none unless SECTORCRYPT_ALLOC_TRACE is set)
// and starts over. Call it disarmed.
void print_traces(const char* phase) {
  const int n = std::min(g_traced.exchange(0), g_trace_limit);
  for (int i = 0; i < n; ++i) {
    std::fprintf(stderr, "--- %s: counted %s #%d\n", phase,
                 g_traces[i].kind == 'a' ? "allocation" : "free", i);
    backtrace_symbols_fd(g_traces[i].frames, g_traces[i].depth, STDERR_FILENO);
  }
}

inline void note() {
  if (g_armed.load(std::memory_order_relaxed)) {
    g_calls.fetch_add(1, std::memory_order_relaxed);
    if (g_trap) __builtin_trap();
    trace('a');
  }
}

// Frees are counted too, apart, so a phase may allow releasing create-time memory (a
// stage thread's start state when the thread ends at shutdown) but no allocation.
std::atomic<uint64_t> g_frees{0};
std::atomic<bool> g_frees_apart{false};

inline void note_free() {
  if (!g_armed.load(std::memory_order_relaxed)) return;
  if (g_frees_apart.load(std::memory_order_relaxed)) {
    g_frees.fetch_add(1, std::memory_order_relaxed);
    trace('f');
  } else {
    note();
  }
}

void* counted_aligned(std::size_t align, std::size_t n) {
  note();
  return __libc_memalign(align < sizeof(void*) ? sizeof(void*) : align, n);
}

}  // namespace

extern "C" {
void* malloc(std::size_t n) {
  note();
  return __libc_malloc(n);
}
void* calloc(std::size_t a, std::size_t b) {
  note();
  return __libc_calloc(a, b);
}
void* realloc(void* p, std::size_t n) {
  note();
  return __libc_realloc(p, n);
}
void free(void* p) {
  if (p != nullptr) note_free();
  __libc_free(p);
}
int posix_memalign(void** out, std::size_t align, std::size_t n) {
  void* p = counted_aligned(align, n);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}
void* aligned_alloc(std::size_t align, std::size_t n) { return counted_aligned(align, n); }
void* memalign(std::size_t align, std::size_t n) { return counted_aligned(align, n); }
void* valloc(std::size_t n) { return counted_aligned(4096, n); }
void* pvalloc(std::size_t n) { return counted_aligned(4096, (n + 4095) / 4096 * 4096); }

}  // extern "C"

void* operator new(std::size_t n) {
  void* p = malloc(n);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return malloc(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return malloc(n); }
void* operator new(std::size_t n, std::align_val_t a) {
  void* p = counted_aligned(static_cast<std::size_t>(a), n);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void* operator new[](std::size_t n, std::align_val_t a) { return operator new(n, a); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted_aligned(static_cast<std::size_t>(a), n);
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted_aligned(static_cast<std::size_t>(a), n);
}
void operator delete(void* p) noexcept { free(p); }
void operator delete[](void* p) noexcept { free(p); }
void operator delete(void* p, std::size_t) noexcept { free(p); }
void operator delete[](void* p, std::size_t) noexcept { free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { free(p); }
void operator delete(void* p, std::align_val_t) noexcept { free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { free(p); }

namespace sectorcrypt::testing {
namespace {

struct Job {
  const TestKey* key = nullptr;
  Direction dir = Direction::encrypt;
  SectorFormat format;
  uint64_t start = 0;
  bool in_place = false;
  bool split_src = false;
  std::vector<uint8_t> input, work, out, want;
  iovec sv[3] = {}, dv[1] = {};
  std::atomic<int> done{0};
  std::atomic<int> failed{0};
};

void on_done(const Status& s, void* ctx) {
  auto* j = static_cast<Job*>(ctx);
  if (!s.ok()) j->failed.fetch_add(1);
  j->done.fetch_add(1);
}

// Runs one round of the stream. Returns false (without allocating) if a result is wrong.
bool run_round(Engine& e, std::vector<Job>& jobs, const TestKey& zk, bool* polled_ok) {
  bool good = true;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    Job& j = jobs[i];
    std::memcpy(j.work.data(), j.input.data(), j.input.size());
    std::memset(j.out.data(), 0, j.out.size());
    j.done.store(0);
    Request r;
    r.key = j.key->handle;
    r.dir = j.dir;
    r.format = j.format;
    r.start_sector = j.start;
    if (j.split_src) {
      const std::size_t a = j.work.size() / 3 + 7, b = j.work.size() / 3;
      j.sv[0] = {j.work.data(), a};
      j.sv[1] = {j.work.data() + a, b};
      j.sv[2] = {j.work.data() + a + b, j.work.size() - a - b};
      r.src_count = 3;
    } else {
      j.sv[0] = {j.work.data(), j.work.size()};
      r.src_count = 1;
    }
    r.src = j.sv;
    if (!j.in_place) {
      j.dv[0] = {j.out.data(), j.out.size()};
      r.dst = j.dv;
      r.dst_count = 1;
    }
    r.callback = &on_done;
    r.user_context = &j;
    r.post_completion = (i % 5 == 0);
    Status s = (i % 3 == 0) ? e.submit(r) : e.try_submit(r);
    while (s.code() == Errc::would_block) s = e.try_submit(r);
    if (!s.ok()) good = false;
    // Keep the polled queue from filling up the record pool.
    Completion c[8];
    while (e.poll(c, 8) > 0) {
    }
  }
  // A synchronous call and a zero-copy slot in the same stream.
  {
    Job& j = jobs[0];
    std::memcpy(j.work.data(), j.input.data(), j.input.size());
    if (!e.crypt_sync(j.key->handle, j.dir, j.format, j.start, j.input.data(), j.work.data(),
                      j.input.size()).ok()) {
      good = false;
    }
    if (std::memcmp(j.work.data(), j.want.data(), j.want.size()) != 0) good = false;
    std::memcpy(j.work.data(), j.input.data(), j.input.size());  // restore for the check
  }
  {
    SlotHandle slot;
    if (!e.acquire_slot(&slot).ok()) return false;
    std::memset(slot.data, 0x3c, 8192);
    SlotRequest sr;
    sr.key = zk.handle;
    sr.format = SectorFormat{4096, IvMode::plain64, false};
    sr.start_sector = 80;
    sr.bytes = 8192;
    sr.post_completion = true;
    if (!e.submit_slot(slot, sr).ok()) good = false;
    Completion c;
    bool got = false;
    for (int tries = 0; tries < 1000 && !got; ++tries) {
      Completion cs[8];
      const std::size_t n = e.wait_completions(cs, 8, 10'000);
      for (std::size_t k = 0; k < n; ++k) {
        if (cs[k].slot == slot.index) {
          c = cs[k];
          got = true;
        }
      }
    }
    if (!got || !c.status.ok()) good = false;
    *polled_ok = got;
    if (!e.release_slot(slot).ok()) good = false;
  }
  // Refusals are allocation-free too: a bad format and a stale key.
  {
    Job& j = jobs[1];
    Request r;
    r.key = j.key->handle;
    r.format = SectorFormat{1000, IvMode::plain64, false};
    j.sv[0] = {j.work.data(), j.work.size()};
    r.src = j.sv;
    r.src_count = 1;
    if (e.try_submit(r).code() != Errc::invalid_format) good = false;
    r.format = j.format;
    r.key = KeyHandle{0xdead00000001ull};
    if (e.submit(r).code() != Errc::invalid_key) good = false;
  }
  if (!e.drain().ok()) good = false;
  Completion c[8];
  while (e.poll(c, 8) > 0) {
  }
  for (Job& j : jobs) {
    if (j.done.load() != 1 || j.failed.load() != 0) good = false;
    const auto& got = j.in_place ? j.work : j.out;
    if (std::memcmp(got.data(), j.want.data(), j.want.size()) != 0) good = false;
  }
  return good;
}

#ifdef SECTORCRYPT_FAULT_INJECTION
// Every other CPU kernel call fails; the CPU fallback re-runs those batches (its own
// point never fires), so every result is still right and nothing may allocate.
std::atomic<uint64_t> g_faults{0};
bool every_other_kernel(engine::fault::Point p, void*) {
  if (p != engine::fault::Point::kernel_error) return false;
  return g_faults.fetch_add(1) % 2 == 0;
}
#endif

// registered: every job buffer is registered memory, so on a GPU the stream runs the
// DMA path instead of the staging copies.
void steady_stream(BackendKind backend, bool faults = false, bool registered = false) {
  EngineConfig c;
  c.backend = backend;
  c.registration_capacity = 255;
  c.cpu_fallback = faults;
  c.threads = 2;
  c.slot_count = 4;
  c.slot_bytes = 32 * 1024;
  c.request_capacity = 24;
  c.flush_deadline_us = 100;
  std::unique_ptr<Engine> e;
  const Status cs = Engine::create(c, &e);
  if (backend == BackendKind::cuda && !cs.ok()) {
    GTEST_SKIP() << "no usable GPU: " << cs.message();
  }
  ASSERT_TRUE(cs.ok()) << cs.message();

  std::vector<TestKey> keys;
  for (int i = 0; i < 3; ++i) keys.push_back(add_test_key(*e, i == 0 ? 32 : 64, 10 + i));
  const SectorFormat formats[] = {{512, IvMode::plain64, false}, {4096, IvMode::plain64, false},
                                  {1024, IvMode::plain, false}, {2048, IvMode::plain64be, true}};
  std::mt19937_64 g(99);
  std::vector<Job> jobs(48);
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    Job& j = jobs[i];
    j.key = &keys[g() % keys.size()];
    j.dir = g() % 2 ? Direction::encrypt : Direction::decrypt;
    j.format = formats[g() % 4];
    j.start = (g() % 4096) * (j.format.sector_size / 512);
    j.in_place = g() % 3 == 0;
    j.split_src = g() % 4 == 0;
    const std::size_t sectors = i % 7 == 0 ? 1 + g() % 40 : 1 + g() % 3;  // some split
    j.input = bytes_of(sectors * j.format.sector_size, i);
    j.work = j.input;
    j.out.assign(j.input.size(), 0);
    j.want = reference(j.key->ref, j.dir, j.format, j.start, j.input);
  }

  if (registered) {
    for (Job& j : jobs) {
      for (auto* v : {&j.input, &j.work, &j.out}) {
        ASSERT_TRUE(e->register_memory(v->data(), v->size()).ok());
      }
    }
  }
#ifdef SECTORCRYPT_FAULT_INJECTION
  if (faults) engine::fault::set_hook(&every_other_kernel, nullptr);
#endif
  bool polled = false;
  // Warm-up: first use of every thread and lock.
  for (int round = 0; round < 3; ++round) ASSERT_TRUE(run_round(*e, jobs, keys[1], &polled));

  g_calls.store(0);
  g_armed.store(true);
  bool good = true;
  for (int round = 0; round < 8; ++round) good = run_round(*e, jobs, keys[1], &polled) && good;
  g_armed.store(false);
  const uint64_t calls = g_calls.load();
  print_traces("steady stream");

  // Shutdown with accepted requests still queued (every slot is lent, so none can be
  // admitted): cancelling them is allocation-free as well.
  SlotHandle held[4];
  for (auto& h : held) ASSERT_TRUE(e->acquire_slot(&h).ok());
  g_calls.store(0);
  g_frees.store(0);
  g_frees_apart.store(true);
  g_armed.store(true);
  for (std::size_t i = 0; i < 6; ++i) {
    Job& j = jobs[i];
    j.done.store(0);
    j.failed.store(0);
    j.sv[0] = {j.work.data(), j.work.size()};
    j.dv[0] = {j.out.data(), j.out.size()};
    Request r;
    r.key = j.key->handle;
    r.format = j.format;
    r.start_sector = j.start;
    r.src = j.sv;
    r.src_count = 1;
    r.dst = j.dv;
    r.dst_count = 1;
    r.callback = &on_done;
    r.user_context = &j;
    if (!e->submit(r).ok()) good = false;
  }
  e->shutdown();
  for (std::size_t i = 0; i < 6; ++i) {
    if (jobs[i].done.load() != 1 || jobs[i].failed.load() != 1) good = false;
  }
  for (auto& h : held) {
    if (!e->release_slot(h).ok()) good = false;
  }
  g_armed.store(false);
  g_frees_apart.store(false);
  const uint64_t shutdown_calls = g_calls.load();
  print_traces("shutdown");
  EXPECT_EQ(shutdown_calls, 0u) << "heap allocations while shutting down";
  // Each engine thread frees its std::thread start state as it ends: create-time memory
  // going back, nothing new taken. With CUDA there is a worker per slot, and the driver
  // frees its per-thread state (three blocks on driver 580, seen with
  // SECTORCRYPT_ALLOC_TRACE on an H200) in every thread that made CUDA calls.
  const uint64_t cuda_threads = std::max<uint64_t>(c.threads, c.slot_count);
  const uint64_t free_bound = backend == BackendKind::cuda ? cuda_threads * (1u + 3u)
                                                           : c.threads + 2u;
  EXPECT_LE(g_frees.load(), free_bound) << "frees at shutdown (SECTORCRYPT_ALLOC_TRACE=16 shows where)";
  std::printf("shutdown with queued requests: %llu allocations, %llu frees (thread exits)\n",
              static_cast<unsigned long long>(shutdown_calls),
              static_cast<unsigned long long>(g_frees.load()));

  EXPECT_TRUE(good) << "a result differed from the reference";
  EXPECT_TRUE(polled);
  EXPECT_EQ(calls, 0u) << "heap allocations during the steady stream (" << e->backend_detail()
                       << ")";
  std::printf("steady stream on %s: %llu allocation calls while armed; %llu requests\n",
              e->backend_detail(), static_cast<unsigned long long>(calls),
              static_cast<unsigned long long>(e->stats().requests));
  if (registered) {
    EXPECT_GT(e->stats().registered_requests, 0u);
  }
  if (faults) {
    EXPECT_GT(e->stats().cpu_fallbacks, 0u);
    std::printf("with faults: %llu batches failed, %llu re-run on the CPU\n",
                static_cast<unsigned long long>(e->stats().backend_failures),
                static_cast<unsigned long long>(e->stats().cpu_fallbacks));
  }
#ifdef SECTORCRYPT_FAULT_INJECTION
  engine::fault::set_hook(nullptr, nullptr);
#endif
}

// Channels: `producers` threads, each on its own channel, submit batches of the jobs
// (small ones crypted inline by the producer, large ones through the workers) and reap
// them; then a shutdown with requests of every channel still queued. Counted on every
// thread: the producers, the workers, the owner's callbacks.
struct ChannelRun {
  std::vector<Job>* jobs;
  Channel* ch;
  bool good = true;
};

void on_channel_done(const Status& s, void* ctx) { on_done(s, ctx); }

// One round of one producer over its jobs. Allocation-free: requests are built in a
// fixed array, completions reaped into one.
void channel_round(ChannelRun& run) {
  std::vector<Job>& jobs = *run.jobs;
  Request reqs[64];
  const std::size_t n = std::min<std::size_t>(jobs.size(), 64);
  for (std::size_t i = 0; i < n; ++i) {
    Job& j = jobs[i];
    std::memcpy(j.work.data(), j.input.data(), j.input.size());
    std::memset(j.out.data(), 0, j.out.size());
    j.done.store(0);
    Request& r = reqs[i];
    r = Request{};
    r.key = j.key->handle;
    r.dir = j.dir;
    r.format = j.format;
    r.start_sector = j.start;
    j.sv[0] = {j.work.data(), j.work.size()};
    r.src = j.sv;
    r.src_count = 1;
    if (!j.in_place) {
      j.dv[0] = {j.out.data(), j.out.size()};
      r.dst = j.dv;
      r.dst_count = 1;
    }
    r.user_context = &j;
    if (i % 2 == 0) r.callback = &on_channel_done;  // else reaped as a Completion
  }
  std::size_t next = 0, reaped = 0;
  Completion c[16];
  while (next < n || run.ch->in_flight() != 0) {
    if (next < n) {
      std::size_t acc = 0;
      const Status s = run.ch->submit(reqs + next, n - next, &acc);
      if (!s.ok() && s.code() != Errc::would_block) run.good = false;
      next += acc;
    }
    const std::size_t got = run.ch->wait(c, 16, 1, 1'000'000);
    for (std::size_t k = 0; k < got; ++k) {
      if (!c[k].status.ok()) run.good = false;
      on_done(c[k].status, c[k].user_context);
    }
    reaped += got;
  }
  for (std::size_t i = 0; i < n; ++i) {
    Job& j = jobs[i];
    if (j.done.load() != 1 || j.failed.load() != 0) run.good = false;
    const auto& got = j.in_place ? j.work : j.out;
    if (std::memcmp(got.data(), j.want.data(), j.want.size()) != 0) run.good = false;
  }
}

void channel_stream(bool faults) {
  EngineConfig c;
  c.backend = BackendKind::cpu;
  c.cpu_fallback = faults;
  c.threads = 2;
  c.slot_count = 4;
  c.slot_bytes = 32 * 1024;
  c.channel_count = 4;
  c.channel_depth = 16;
  c.inline_max_bytes = 4096;
  std::unique_ptr<Engine> e;
  ASSERT_TRUE(Engine::create(c, &e).ok());
  std::vector<TestKey> keys;
  for (int i = 0; i < 3; ++i) keys.push_back(add_test_key(*e, i == 0 ? 32 : 64, 30 + i));
  constexpr int kProducers = 4;
  std::vector<std::vector<Job>> jobs(kProducers);
  std::mt19937_64 g(7);
  for (int p = 0; p < kProducers; ++p) {
    jobs[p] = std::vector<Job>(24);
    for (std::size_t i = 0; i < jobs[p].size(); ++i) {
      Job& j = jobs[p][i];
      j.key = &keys[g() % keys.size()];
      j.dir = g() % 2 ? Direction::encrypt : Direction::decrypt;
      j.format = SectorFormat{512, IvMode::plain64, false};
      j.start = g() % 100000;
      j.in_place = g() % 2 == 0;
      const std::size_t sectors = i % 5 == 0 ? 16 + g() % 48 : 1 + g() % 8;  // >4 KiB: workers
      j.input = bytes_of(sectors * 512, p * 100 + i);
      j.work = j.input;
      j.out.assign(j.input.size(), 0);
      j.want = reference(j.key->ref, j.dir, j.format, j.start, j.input);
    }
  }
#ifdef SECTORCRYPT_FAULT_INJECTION
  if (faults) engine::fault::set_hook(&every_other_kernel, nullptr);
#endif
  std::vector<ChannelRun> runs(kProducers);
  for (int p = 0; p < kProducers; ++p) {
    runs[p].jobs = &jobs[p];
    ASSERT_TRUE(e->open_channel({}, &runs[p].ch).ok());
  }
  // Producers wait at a barrier made of atomics (no allocation) between phases.
  std::atomic<int> phase{0}, ready{0};
  auto producer = [&](int p) {
    for (int ph = 0; ph < 2; ++ph) {  // 0: warm-up, 1: counted
      while (phase.load() != ph) std::this_thread::yield();
      for (int round = 0; round < (ph == 0 ? 3 : 8); ++round) channel_round(runs[p]);
      ready.fetch_add(1);
    }
    while (phase.load() != 2) std::this_thread::yield();  // exit (and free) disarmed
  };
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p) threads.emplace_back(producer, p);
  while (ready.load() != kProducers) std::this_thread::yield();
  g_calls.store(0);
  g_armed.store(true);
  phase.store(1);
  while (ready.load() != 2 * kProducers) std::this_thread::yield();
  g_armed.store(false);
  const uint64_t calls = g_calls.load();
  print_traces("channel stream");
  phase.store(2);
  for (auto& t : threads) t.join();
  bool good = true;
  for (auto& r : runs) good = good && r.good;
  EXPECT_TRUE(good) << "a result differed from the reference";
  const EngineStats st = e->stats();
  EXPECT_GT(st.inline_requests, 0u);
  EXPECT_GT(st.batches, 0u) << "some requests must have gone through the workers";
  EXPECT_EQ(calls, 0u) << "heap allocations during the channel stream";
  std::printf("channel stream: %llu allocation calls while armed; %llu channel requests, "
              "%llu inline\n", static_cast<unsigned long long>(calls),
              static_cast<unsigned long long>(st.channel_requests),
              static_cast<unsigned long long>(st.inline_requests));

  // Shutdown with channel requests queued (every slot lent): cancelled without allocating.
  SlotHandle held[4];
  for (auto& h : held) ASSERT_TRUE(e->acquire_slot(&h).ok());
  g_calls.store(0);
  g_frees.store(0);
  g_frees_apart.store(true);
  g_armed.store(true);
  for (auto& run : runs) {
    // Job 0 is larger than inline_max_bytes: queued for the workers, which have no slot.
    Job& big = (*run.jobs)[0];
    big.sv[0] = {big.work.data(), big.work.size()};
    Request r;
    r.key = big.key->handle;
    r.format = big.format;
    r.src = big.sv;
    r.src_count = 1;
    if (!run.ch->submit(r).ok()) good = false;
  }
  e->shutdown();
  std::size_t cancelled = 0;
  for (auto& run : runs) {
    Completion cs[4];
    const std::size_t n = run.ch->poll(cs, 4);
    for (std::size_t k = 0; k < n; ++k) cancelled += cs[k].status.code() == Errc::shut_down;
  }
  for (auto& h : held) (void)e->release_slot(h);
  g_armed.store(false);
  g_frees_apart.store(false);
  print_traces("channel shutdown");
  EXPECT_EQ(g_calls.load(), 0u) << "heap allocations while shutting down with channels";
  EXPECT_EQ(cancelled, runs.size());
  EXPECT_TRUE(good);
#ifdef SECTORCRYPT_FAULT_INJECTION
  engine::fault::set_hook(nullptr, nullptr);
  if (faults) {
    EXPECT_GT(e->stats().cpu_fallbacks, 0u);
  }
#endif
}

TEST(EngineNoAllocation, ChannelSteadyStream) { channel_stream(false); }
TEST(EngineNoAllocation, ChannelSteadyStreamUnderFaults) { channel_stream(true); }

TEST(EngineNoAllocation, CpuSteadyStream) { steady_stream(BackendKind::cpu); }
#ifdef SECTORCRYPT_FAULT_INJECTION
TEST(EngineNoAllocation, CpuFallbackUnderFaults) { steady_stream(BackendKind::cpu, true); }
#endif
TEST(EngineNoAllocation, CudaSteadyStream) { steady_stream(BackendKind::cuda); }
TEST(EngineNoAllocation, CpuRegisteredSteadyStream) {
  steady_stream(BackendKind::cpu, false, true);
}
TEST(EngineNoAllocation, CudaRegisteredSteadyStream) {
  steady_stream(BackendKind::cuda, false, true);
}

#ifdef SECTORCRYPT_HAVE_CUDA
// Device-resident requests: validation (cudaPointerGetAttributes), launches, completions.
TEST(EngineNoAllocation, CudaDeviceResidentSteadyStream) {
  EngineConfig c;
  c.backend = BackendKind::cuda;
  c.threads = 2;
  c.slot_count = 4;
  c.slot_bytes = 64 * 1024;
  std::unique_ptr<Engine> e;
  const Status cs = Engine::create(c, &e);
  if (!cs.ok()) GTEST_SKIP() << "no usable GPU: " << cs.message();
  const TestKey k = add_test_key(*e, 64, 77);
  constexpr std::size_t kReq = 16 * 1024, kCount = 32;
  uint8_t* dev = nullptr;
  ASSERT_EQ(cudaMalloc(&dev, 2 * kCount * kReq), cudaSuccess);
  const auto plain = bytes_of(kCount * kReq, 78);
  ASSERT_EQ(cudaMemcpy(dev, plain.data(), plain.size(), cudaMemcpyHostToDevice), cudaSuccess);
  std::vector<iovec> sv(kCount), dv(kCount);
  std::atomic<int> failed{0};
  auto round = [&] {
    for (std::size_t i = 0; i < kCount; ++i) {
      sv[i] = {dev + i * kReq, kReq};
      dv[i] = {dev + (kCount + i) * kReq, kReq};
      Request r;
      r.key = k.handle;
      r.format = SectorFormat{i % 2 ? 4096u : 512u, IvMode::plain64, false};
      r.start_sector = i * (kReq / 512);
      r.src = &sv[i];
      r.src_count = 1;
      r.dst = &dv[i];
      r.dst_count = 1;
      r.memory = MemoryKind::device;
      r.callback = [](const Status& s, void* p) {
        if (!s.ok()) static_cast<std::atomic<int>*>(p)->fetch_add(1);
      };
      r.user_context = &failed;
      if (!e->submit(r).ok()) failed.fetch_add(1);
    }
    (void)e->drain();
  };
  for (int i = 0; i < 3; ++i) round();
  g_calls.store(0);
  g_armed.store(true);
  for (int i = 0; i < 8; ++i) round();
  g_armed.store(false);
  const uint64_t calls = g_calls.load();
  print_traces("device-resident stream");
  EXPECT_EQ(failed.load(), 0);
  std::vector<uint8_t> got(kCount * kReq);
  ASSERT_EQ(cudaMemcpy(got.data(), dev + kCount * kReq, got.size(), cudaMemcpyDeviceToHost),
            cudaSuccess);
  for (std::size_t i = 0; i < kCount; ++i) {
    const SectorFormat f{i % 2 ? 4096u : 512u, IvMode::plain64, false};
    std::vector<uint8_t> one(plain.begin() + i * kReq, plain.begin() + (i + 1) * kReq);
    const auto want = reference(k.ref, Direction::encrypt, f, i * (kReq / 512), one);
    EXPECT_EQ(0, std::memcmp(got.data() + i * kReq, want.data(), kReq)) << "request " << i;
  }
  EXPECT_EQ(calls, 0u) << "heap allocations during the device-resident stream";
  std::printf("device-resident stream: %llu allocation calls while armed, %llu requests\n",
              static_cast<unsigned long long>(calls),
              static_cast<unsigned long long>(e->stats().device_requests));
  cudaFree(dev);
}
#endif

// The counter itself works (otherwise a zero above would prove nothing).
TEST(EngineNoAllocation, CounterSeesAllocations) {
  g_calls.store(0);
  g_armed.store(true);
  auto* p = new std::vector<int>(100);
  delete p;
  void* q = std::malloc(10);
  std::free(q);
  g_armed.store(false);
  EXPECT_GE(g_calls.load(), 4u);
}

}  // namespace
}  // namespace sectorcrypt::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
