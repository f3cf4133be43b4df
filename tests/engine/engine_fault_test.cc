// Fault injection (issue 7): every point where the data path can fail, forced through
// engine/fault_injection.h (this binary links sectorcrypt_fi). Each failure completes
// the affected requests exactly once with backend_failure naming the point, or re-runs
// them on the CPU with cpu_fallback; output is never reported ok when wrong, and the
// engine stays usable.
#include <cstring>
#include <stdexcept>
#include <string>

#include "engine/fault_injection.h"
#include "engine_test_support.h"
#include "kernels/cpu/xts_cpu.h"

namespace sectorcrypt::testing {
namespace {

using engine::fault::Point;

// Fails the next `budget[p]` firings of each point.
struct FaultPlan {
  std::atomic<int> budget[static_cast<unsigned>(Point::count)] = {};
  std::atomic<int> fired[static_cast<unsigned>(Point::count)] = {};
  static bool hook(Point p, void* ctx) {
    auto* f = static_cast<FaultPlan*>(ctx);
    const auto i = static_cast<unsigned>(p);
    if (f->budget[i].fetch_sub(1) > 0) {
      f->fired[i].fetch_add(1);
      return true;
    }
    f->budget[i].fetch_add(1);
    return false;
  }
};

class EngineFaults : public ::testing::Test {
 protected:
  void SetUp() override { engine::fault::set_hook(&FaultPlan::hook, &plan); }
  void TearDown() override { engine::fault::set_hook(nullptr, nullptr); }
  FaultPlan plan;
};

struct Result {
  std::mutex mu;
  std::condition_variable cv;
  int calls = 0;
  Status status;
  static void on_done(const Status& s, void* p) {
    auto* r = static_cast<Result*>(p);
    std::lock_guard lock(r->mu);
    ++r->calls;
    r->status = s;
    r->cv.notify_all();
  }
  Status wait() {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return calls > 0; });
    return status;
  }
};

// One request, waited for; returns its status. `out` gets the result (in == out: in place).
Status run_one(Engine& e, const TestKey& k, std::vector<uint8_t>& in, std::vector<uint8_t>& out,
               Result* res) {
  iovec sv{in.data(), in.size()}, dv{out.data(), out.size()};
  Request r;
  r.key = k.handle;
  r.src = &sv;
  r.src_count = 1;
  if (&in != &out) {
    r.dst = &dv;
    r.dst_count = 1;
  }
  r.callback = &Result::on_done;
  r.user_context = res;
  r.flush = true;
  const Status s = e.submit(r);
  if (!s) return s;
  return res->wait();
}

// A good request after a fault: the engine is still usable.
void expect_usable(Engine& e, const TestKey& k) {
  auto in = bytes_of(4096, 77);
  std::vector<uint8_t> out(in.size());
  Result res;
  ASSERT_TRUE(run_one(e, k, in, out, &res).ok());
  EXPECT_EQ(out, reference(k.ref, Direction::encrypt, SectorFormat{}, 0, in));
}

void expect_fails_untouched(Engine& e, const TestKey& k, const char* names) {
  auto in = bytes_of(8192, 5);
  std::vector<uint8_t> out(in.size(), 0xee);
  const auto before = out;
  Result res;
  const Status s = run_one(e, k, in, out, &res);
  EXPECT_EQ(s.code(), Errc::backend_failure) << s.message();
  EXPECT_NE(std::string(s.message()).find(names), std::string::npos) << s.message();
  EXPECT_EQ(out, before) << "a failed batch wrote its destination";
  EXPECT_EQ(res.calls, 1);
}

// A fault hook that fails nothing but holds the first crypt (and any after it) on its
// thread until release(): the batch is provably still running while the test looks.
struct HoldGate {
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false, open = false;
  static bool hold(Point, void* ctx) {
    auto* g = static_cast<HoldGate*>(ctx);
    std::unique_lock lock(g->mu);
    g->entered = true;
    g->cv.notify_all();
    g->cv.wait(lock, [&] { return g->open; });
    return false;
  }
  void wait_entered() {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return entered; });
  }
  void release() {
    {
      std::lock_guard lock(mu);
      open = true;
    }
    cv.notify_all();
  }
};

TEST_F(EngineFaults, KernelErrorFailsTheBatchAndNamesThePoint) {
  Watchdog w(std::chrono::seconds(60), "kernel error");
  auto e = make_engine(small_config());
  const TestKey k = add_test_key(*e, 64, 1);
  plan.budget[static_cast<unsigned>(Point::kernel_error)] = 1;
  expect_fails_untouched(*e, k, "kernel_error");
  EXPECT_EQ(e->stats().backend_failures, 1u);
  EXPECT_EQ(e->stats().requests_failed, 1u);
  expect_usable(*e, k);
}

TEST_F(EngineFaults, InPlaceKernelErrorLeavesTheInputAsItWas) {
  Watchdog w(std::chrono::seconds(60), "in place kernel error");
  auto e = make_engine(small_config());
  const TestKey k = add_test_key(*e, 32, 2);
  plan.budget[static_cast<unsigned>(Point::kernel_error)] = 1;
  auto buf = bytes_of(4096, 9);
  const auto before = buf;
  Result res;
  EXPECT_EQ(run_one(*e, k, buf, buf, &res).code(), Errc::backend_failure);
  EXPECT_EQ(buf, before);
  expect_usable(*e, k);
}

TEST_F(EngineFaults, ThrowingCryptWorkerFailsTheBatchNotTheEngine) {
  Watchdog w(std::chrono::seconds(60), "crypt throw");
  EngineConfig c = small_config();
  c.threads = 1;  // the only worker: if it died, the next request would hang
  auto e = make_engine(c);
  const TestKey k = add_test_key(*e, 64, 3);
  plan.budget[static_cast<unsigned>(Point::crypt_throw)] = 3;
  for (int i = 0; i < 3; ++i) expect_fails_untouched(*e, k, "crypt worker threw");
  expect_usable(*e, k);
}

TEST_F(EngineFaults, CpuFallbackRerunsAFailedBatch) {
  Watchdog w(std::chrono::seconds(60), "fallback");
  EngineConfig c = small_config();
  c.cpu_fallback = true;
  auto e = make_engine(c);
  const TestKey k = add_test_key(*e, 64, 4);
  for (Point p : {Point::kernel_error, Point::crypt_throw}) {
    plan.budget[static_cast<unsigned>(p)] = 1;
    auto in = bytes_of(3 * 4096, 6);
    const auto want = reference(k.ref, Direction::encrypt, SectorFormat{}, 0, in);
    std::vector<uint8_t> out(in.size());
    Result res;
    EXPECT_TRUE(run_one(*e, k, in, out, &res).ok());
    EXPECT_EQ(out, want);
    Result res2;  // in place: the rerun must not encrypt twice
    EXPECT_TRUE(run_one(*e, k, in, in, &res2).ok());
    EXPECT_EQ(in, want);
  }
  EXPECT_EQ(plan.fired[static_cast<unsigned>(Point::kernel_error)], 1);
  EXPECT_EQ(plan.fired[static_cast<unsigned>(Point::crypt_throw)], 1);
  EXPECT_EQ(e->stats().backend_failures, 2u);
  EXPECT_EQ(e->stats().cpu_fallbacks, 2u);
  EXPECT_EQ(e->stats().requests_failed, 0u);
}

// The inline paths (a channel's submitter, a small crypt_sync) crypt through the same
// guarded backend call: a fault fails the request, in place leaves the input as it was,
// a throw does not escape into the caller, and cpu_fallback re-runs it.
TEST_F(EngineFaults, InlineCryptsFailAndFallBackLikeBatches) {
  Watchdog w(std::chrono::seconds(60), "inline faults");
  for (bool fallback : {false, true}) {
    EngineConfig c = small_config();
    c.cpu_fallback = fallback;
    c.inline_max_bytes = 8192;
    auto e = make_engine(c);
    const TestKey k = add_test_key(*e, 64, 8);
    const SectorFormat f{};
    Channel* ch = nullptr;
    ASSERT_TRUE(e->open_channel({}, &ch).ok());
    for (Point p : {Point::kernel_error, Point::crypt_throw}) {
      // crypt_sync, in place.
      plan.budget[static_cast<unsigned>(p)] = 1;
      auto buf = bytes_of(4096, 11);
      const auto input = buf;
      const auto want = reference(k.ref, Direction::encrypt, f, 3, input);
      const Status s = e->crypt_sync(k.handle, Direction::encrypt, f, 3, buf.data(), buf.data(), 4096);
      if (fallback) {
        EXPECT_TRUE(s.ok()) << s.message();
        EXPECT_EQ(buf, want);
      } else {
        EXPECT_EQ(s.code(), Errc::backend_failure) << s.message();
        EXPECT_EQ(buf, input) << "a failed in-place crypt must leave the input";
      }
      // A channel request, in place.
      plan.budget[static_cast<unsigned>(p)] = 1;
      buf = input;
      iovec v{buf.data(), buf.size()};
      Request r;
      r.key = k.handle;
      r.format = f;
      r.start_sector = 3;
      r.src = &v;
      r.src_count = 1;
      ASSERT_TRUE(ch->submit(r).ok());
      Completion cpl;
      ASSERT_EQ(ch->wait(&cpl, 1, 1, 10'000'000), 1u);
      if (fallback) {
        EXPECT_TRUE(cpl.status.ok()) << cpl.status.message();
        EXPECT_EQ(buf, want);
      } else {
        EXPECT_EQ(cpl.status.code(), Errc::backend_failure);
        EXPECT_EQ(buf, input);
      }
    }
    const EngineStats st = e->stats();
    EXPECT_EQ(st.inline_requests, 4u);
    EXPECT_EQ(st.backend_failures, 4u);
    EXPECT_EQ(st.cpu_fallbacks, fallback ? 4u : 0u);
    EXPECT_EQ(st.requests_failed, fallback ? 0u : 4u);
  }
}

// Channel requests on the workers ride in batches that complete on their crypting
// worker, outside the admission order (engine/pipeline.cc): a fault there still fails
// each request of the batch once, leaves in-place input as it was, and cpu_fallback
// re-runs the batch, with two workers completing at once.
TEST_F(EngineFaults, ChannelBatchesOnTheWorkersFailOnceOrFallBack) {
  Watchdog w(std::chrono::seconds(60), "channel batch faults");
  for (bool fallback : {false, true}) {
    EngineConfig c = small_config();
    c.cpu_fallback = fallback;
    c.inline_max_bytes = 0;  // everything to the workers
    c.channel_count = 1;
    c.channel_depth = 64;
    auto e = make_engine(c);
    const TestKey k = add_test_key(*e, 64, 12);
    const SectorFormat f{};
    Channel* ch = nullptr;
    ASSERT_TRUE(e->open_channel({}, &ch).ok());
    // 64 requests of 4 KiB fill at least four 64 KiB batches: room for three faults.
    plan.budget[static_cast<unsigned>(Point::kernel_error)] = 2;
    plan.budget[static_cast<unsigned>(Point::crypt_throw)] = 1;
    constexpr int kRequests = 64;
    std::vector<std::vector<uint8_t>> bufs, inputs, wants;
    std::vector<iovec> vs(kRequests);
    std::vector<Request> reqs(kRequests);
    for (int i = 0; i < kRequests; ++i) {
      bufs.push_back(bytes_of(4096, 200 + i));
      inputs.push_back(bufs.back());
      wants.push_back(reference(k.ref, Direction::encrypt, f, 8 * i, inputs.back()));
    }
    for (int i = 0; i < kRequests; ++i) {
      vs[i] = {bufs[i].data(), bufs[i].size()};
      reqs[i].key = k.handle;
      reqs[i].format = f;
      reqs[i].start_sector = 8 * i;
      reqs[i].src = &vs[i];
      reqs[i].src_count = 1;
      reqs[i].user_context = reinterpret_cast<void*>(static_cast<uintptr_t>(i));
    }
    std::size_t accepted = 0;
    ASSERT_TRUE(ch->submit(reqs.data(), reqs.size(), &accepted).ok());
    ASSERT_EQ(accepted, static_cast<std::size_t>(kRequests));
    std::vector<int> seen(kRequests, 0);
    int failed = 0;
    Completion got[16];
    while (ch->in_flight() != 0) {
      const std::size_t n = ch->wait(got, 16, 1, 10'000'000);
      ASSERT_NE(n, 0u) << "channel requests never completed";
      for (std::size_t j = 0; j < n; ++j) {
        const auto i = static_cast<int>(reinterpret_cast<uintptr_t>(got[j].user_context));
        ++seen[i];
        if (got[j].status.ok()) {
          EXPECT_EQ(bufs[i], wants[i]) << "request " << i << " reported ok";
        } else {
          ++failed;
          EXPECT_EQ(got[j].status.code(), Errc::backend_failure) << got[j].status.message();
          EXPECT_EQ(bufs[i], inputs[i]) << "a failed in-place request " << i << " was written";
        }
      }
    }
    for (int i = 0; i < kRequests; ++i) EXPECT_EQ(seen[i], 1) << "request " << i;
    const EngineStats st = e->stats();
    EXPECT_EQ(plan.fired[static_cast<unsigned>(Point::kernel_error)].exchange(0), 2);
    EXPECT_EQ(plan.fired[static_cast<unsigned>(Point::crypt_throw)].exchange(0), 1);
    EXPECT_EQ(st.backend_failures, 3u) << "fallback " << fallback;
    if (fallback) {
      EXPECT_EQ(failed, 0);
      EXPECT_EQ(st.cpu_fallbacks, 3u);
    } else {
      EXPECT_GE(failed, 3) << "each failed batch holds at least one request";
    }
    EXPECT_EQ(st.requests_failed, static_cast<uint64_t>(failed));
  }
}

TEST_F(EngineFaults, CpuFallbackThatFailsTooReportsFailure) {
  Watchdog w(std::chrono::seconds(60), "fallback fails");
  EngineConfig c = small_config();
  c.cpu_fallback = true;
  auto e = make_engine(c);
  const TestKey k = add_test_key(*e, 64, 5);
  plan.budget[static_cast<unsigned>(Point::kernel_error)] = 1;
  plan.budget[static_cast<unsigned>(Point::fallback_error)] = 1;
  expect_fails_untouched(*e, k, "fallback_error");
  EXPECT_EQ(e->stats().cpu_fallbacks, 1u);
  expect_usable(*e, k);
}

TEST_F(EngineFaults, ZeroCopyFaultKeepsTheSlotLentAndItsInput) {
  Watchdog w(std::chrono::seconds(60), "zero-copy fault");
  for (bool fallback : {false, true}) {
    EngineConfig c = small_config();
    c.cpu_fallback = fallback;
    auto e = make_engine(c);
    const TestKey k = add_test_key(*e, 32, 6);
    SlotHandle h;
    ASSERT_TRUE(e->acquire_slot(&h).ok());
    const auto in = bytes_of(8192, 8);
    std::memcpy(h.data, in.data(), in.size());
    plan.budget[static_cast<unsigned>(Point::kernel_error)] = 1;
    SlotRequest sr;
    sr.key = k.handle;
    sr.bytes = in.size();
    Result res;
    sr.callback = &Result::on_done;
    sr.user_context = &res;
    ASSERT_TRUE(e->submit_slot(h, sr).ok());
    const Status s = res.wait();
    if (fallback) {
      EXPECT_TRUE(s.ok()) << s.message();
      EXPECT_EQ(0, std::memcmp(h.data,
                               reference(k.ref, Direction::encrypt, SectorFormat{}, 0, in).data(),
                               in.size()));
    } else {
      EXPECT_EQ(s.code(), Errc::backend_failure);
      EXPECT_EQ(0, std::memcmp(h.data, in.data(), in.size()));  // not crypted, not reported ok
    }
    EXPECT_TRUE(e->release_slot(h).ok());
    expect_usable(*e, k);
  }
}

void throwing_callback(const Status&, void* p) {
  static_cast<std::atomic<int>*>(p)->fetch_add(1);
  throw std::runtime_error("callback fault");
}

TEST_F(EngineFaults, ThrowingCallbackIsCaughtAndCounted) {
  Watchdog w(std::chrono::seconds(60), "throwing callback");
  auto e = make_engine(small_config());
  const TestKey k = add_test_key(*e, 64, 7);
  std::atomic<int> calls{0};
  auto buf = bytes_of(512, 1);
  for (int i = 0; i < 10; ++i) {
    iovec v{buf.data(), buf.size()};
    Request r;
    r.key = k.handle;
    r.src = &v;
    r.src_count = 1;
    r.callback = &throwing_callback;
    r.user_context = &calls;
    ASSERT_TRUE(e->submit(r).ok());
    ASSERT_TRUE(e->drain().ok());
  }
  EXPECT_EQ(calls.load(), 10);
  EXPECT_EQ(e->stats().callback_exceptions, 10u);
  EXPECT_EQ(e->stats().requests, 10u);
  expect_usable(*e, k);
}

TEST_F(EngineFaults, SlotReturnedOrSubmittedTwiceIsRefused) {
  Watchdog w(std::chrono::seconds(60), "slot twice");
  auto e = make_engine(small_config());
  const TestKey k = add_test_key(*e, 64, 8);
  SlotHandle h;
  ASSERT_TRUE(e->acquire_slot(&h).ok());
  std::memset(h.data, 1, 4096);
  // The crypt is held (in the fault hook, which then lets it run) until the second
  // submit and the early release were tried, so the slot is provably still submitted.
  // (At delivery the slot is lent again, before the callback, so a callback may release
  // or resubmit it.)
  HoldGate gate;
  std::atomic<int> calls{0};
  engine::fault::set_hook(&HoldGate::hold, &gate);
  SlotRequest sr;
  sr.key = k.handle;
  sr.bytes = 4096;
  sr.callback = [](const Status&, void* p) { static_cast<std::atomic<int>*>(p)->fetch_add(1); };
  sr.user_context = &calls;
  ASSERT_TRUE(e->submit_slot(h, sr).ok());
  EXPECT_EQ(e->submit_slot(h, sr).code(), Errc::invalid_buffer);
  EXPECT_EQ(e->release_slot(h).code(), Errc::invalid_buffer);  // still running
  gate.release();
  ASSERT_TRUE(e->drain().ok());
  engine::fault::set_hook(nullptr, nullptr);
  EXPECT_TRUE(e->release_slot(h).ok());
  EXPECT_EQ(e->release_slot(h).code(), Errc::invalid_buffer);  // returned twice
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(e->stats().requests, 1u);
  expect_usable(*e, k);
}

// A crypt_sync() on an idle engine runs its batch on the calling thread. Held there (in
// the fault hook), it keeps shutdown() from returning: shutdown means every accepted
// request has completed, including those no worker ran.
TEST_F(EngineFaults, ShutdownWaitsForABatchRunningOnASyncCaller) {
  Watchdog w(std::chrono::seconds(60), "shutdown behind a caller-run batch");
  EngineConfig c = small_config();
  c.inline_max_bytes = 0;  // the caller-run batch (pipeline path), not the inline crypt
  auto e = make_engine(c);
  const TestKey k = add_test_key(*e, 64, 9);
  HoldGate gate;
  engine::fault::set_hook(&HoldGate::hold, &gate);
  const SectorFormat f{4096, IvMode::plain64, false};
  const auto in = bytes_of(8192, 5);
  std::vector<uint8_t> out(8192);
  Status sync_status = Status::error(Errc::internal, "not run");
  std::thread caller([&] {
    sync_status = e->crypt_sync(k.handle, Direction::encrypt, f, 0, in.data(), out.data(), 8192);
  });
  gate.wait_entered();
  EXPECT_EQ(e->stats().caller_batches, 1u);  // held on the caller, not on a worker
  std::atomic<bool> shut{false};
  std::thread stopper([&] {
    e->shutdown();
    shut.store(true);
  });
  // Shutdown must still be waiting: the held batch cannot complete before the gate opens.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(shut.load()) << "shutdown returned while an accepted request was running";
  gate.release();
  caller.join();
  stopper.join();
  engine::fault::set_hook(nullptr, nullptr);
  ASSERT_TRUE(sync_status.ok()) << sync_status.message();
  EXPECT_EQ(out, reference(k.ref, Direction::encrypt, f, 0, in));
  EXPECT_EQ(e->stats().requests, 1u);
}

// Random faults at every CPU-reachable point under load: every request completes
// exactly once; each ok result is checked against the CPU kernels.
TEST_F(EngineFaults, RandomFaultsUnderLoadLoseNothing) {
  Watchdog w(std::chrono::seconds(120), "random faults");
  for (bool fallback : {false, true}) {
    EngineConfig c = small_config();
    c.cpu_fallback = fallback;
    c.slot_count = 2;
    auto e = make_engine(c);
    const TestKey k = add_test_key(*e, 64, 9);
    struct Rate {
      std::atomic<uint64_t> n{0};
      std::atomic<uint64_t> fired{0};
      static bool hook(Point, void* p) {
        auto* r = static_cast<Rate*>(p);
        // A cheap deterministic mix: about one call in four fails.
        const uint64_t x = r->n.fetch_add(1) * 0x9e3779b97f4a7c15ull;
        if ((x >> 61) < 2) {
          r->fired.fetch_add(1);
          return true;
        }
        return false;
      }
    } rate;
    engine::fault::set_hook(&Rate::hook, &rate);
    constexpr std::size_t kN = 600;
    CompletionLog log(kN);
    std::vector<CompletionLog::Ctx> ctx(kN);
    std::vector<std::vector<uint8_t>> in(kN), out(kN);
    std::vector<iovec> sv(kN), dv(kN);
    for (std::size_t i = 0; i < kN; ++i) {
      in[i] = bytes_of(512 * (1 + i % 9), i);
      out[i].assign(in[i].size(), 0);
      sv[i] = {in[i].data(), in[i].size()};
      dv[i] = {out[i].data(), out[i].size()};
      ctx[i] = {&log, i};
      Request r;
      r.key = k.handle;
      r.start_sector = i * 16;
      r.src = &sv[i];
      r.src_count = 1;
      r.dst = &dv[i];
      r.dst_count = 1;
      r.callback = &CompletionLog::on_done;
      r.user_context = &ctx[i];
      ASSERT_TRUE(e->submit(r).ok());
    }
    ASSERT_TRUE(e->drain().ok());
    engine::fault::set_hook(&FaultPlan::hook, &plan);
    std::size_t failed = 0;
    for (std::size_t i = 0; i < kN; ++i) {
      ASSERT_EQ(log.count[i].load(), 1) << "request " << i;
      if (log.codes[i] != Errc::ok) {
        EXPECT_EQ(log.codes[i], Errc::backend_failure);
        ++failed;
        continue;
      }
      std::vector<uint8_t> want(in[i].size());
      ASSERT_TRUE(cpu::xts_crypt_sectors(k.ref, Direction::encrypt, SectorFormat{}, i * 16,
                                         in[i].data(), want.data(), want.size()).ok());
      EXPECT_EQ(out[i], want) << "request " << i << " reported ok with wrong bytes";
    }
    EXPECT_GT(rate.fired.load(), 0u);
    if (!fallback) {
      EXPECT_GT(failed, 0u);
    }
    const EngineStats st = e->stats();
    EXPECT_EQ(st.requests, kN);
    EXPECT_EQ(st.requests_failed, failed);
    std::printf("fallback=%d: %llu faults, %zu failed, %llu reruns\n", fallback,
                static_cast<unsigned long long>(rate.fired.load()), failed,
                static_cast<unsigned long long>(st.cpu_fallbacks));
    expect_usable(*e, k);
  }
}

// The CUDA points need a GPU; the same logic is covered on the CPU above.
TEST_F(EngineFaults, CudaCopyLaunchAndKernelFaults) {
  EngineConfig c = small_config();
  c.backend = BackendKind::cuda;
  std::unique_ptr<Engine> e;
  if (Status s = Engine::create(c, &e); !s) GTEST_SKIP() << s.message();
  Watchdog w(std::chrono::seconds(60), "cuda faults");
  const TestKey k = add_test_key(*e, 64, 10);
  plan.budget[static_cast<unsigned>(Point::cuda_copy)] = 1;
  expect_fails_untouched(*e, k, "H2D copy");
  plan.budget[static_cast<unsigned>(Point::cuda_launch)] = 1;
  expect_fails_untouched(*e, k, "kernel launch");
  plan.budget[static_cast<unsigned>(Point::kernel_error)] = 1;
  expect_fails_untouched(*e, k, "kernel_error");
  expect_usable(*e, k);
  e.reset();
  c.cpu_fallback = true;
  ASSERT_TRUE(Engine::create(c, &e).ok());
  const TestKey k2 = add_test_key(*e, 64, 11);
  for (Point p : {Point::cuda_copy, Point::cuda_launch, Point::kernel_error}) {
    plan.budget[static_cast<unsigned>(p)] = 1;
    expect_usable(*e, k2);
  }
  EXPECT_EQ(e->stats().cpu_fallbacks, 3u);
}

}  // namespace
}  // namespace sectorcrypt::testing
