// crypt_sync() on an idle engine runs its one-slot batch on the calling thread (no
// hand-off, engine/pipeline.cc admit_on_caller); a request of several slots that would be
// admitted next has its batches crypted by the caller beside the workers, within the
// thread limit (crypt tokens, engine_impl.h). Either way: the reference's bytes,
// admission order, and shutdown waits for it.
#include "tests/engine/engine_test_support.h"

namespace sectorcrypt::testing {
namespace {

const SectorFormat k4K{4096, IvMode::plain64, false};

// The caller-run batch is crypt_sync's pipeline path; small calls on the CPU are crypted
// inline instead (EngineSyncInline below), so these tests turn that off.
EngineConfig pipeline_config() {
  EngineConfig c = small_config();
  c.inline_max_bytes = 0;
  return c;
}

TEST(EngineCallerRuns, IdleSyncCallWithinOneSlotRunsOnTheCaller) {
  auto e = make_engine(pipeline_config());  // 64 KiB slots
  TestKey k = add_test_key(*e, 64, 21);
  // In place first. A caller-run call is idle again when it returns (it completed its
  // own batch); after a call the workers ran, the last worker may still be finishing its
  // bookkeeping, so the calls expected on the caller come before those that are not.
  auto buf = bytes_of(8192, 99);
  const auto want = reference(k.ref, Direction::encrypt, k4K, 0, buf);
  ASSERT_TRUE(e->crypt_sync(k.handle, Direction::encrypt, k4K, 0, buf.data(), buf.data(), 8192).ok());
  EXPECT_EQ(buf, want);
  EXPECT_EQ(e->stats().caller_batches, 1u);
  // One slot: exactly its batch on the caller. Several slots (64 KiB each): the first
  // batch at least (made at admission), at most all of them, the workers the rest; at
  // least one batch per slot-full (the tail may be cut finer: part_length()).
  uint64_t seed = 1;
  for (std::size_t bytes : {std::size_t{4096}, std::size_t{64 * 1024}, std::size_t{68 * 1024},
                            std::size_t{1} << 20}) {
    const uint64_t batches = (bytes + 64 * 1024 - 1) / (64 * 1024);
    for (Direction dir : {Direction::encrypt, Direction::decrypt}) {
      const auto in = bytes_of(bytes, seed++);
      std::vector<uint8_t> out(bytes, 0xcd);
      const uint64_t start = 8 * seed;
      const EngineStats before = e->stats();
      ASSERT_TRUE(e->crypt_sync(k.handle, dir, k4K, start, in.data(), out.data(), bytes).ok());
      EXPECT_EQ(out, reference(k.ref, dir, k4K, start, in)) << bytes;
      const EngineStats after = e->stats();
      const uint64_t on_caller = after.caller_batches - before.caller_batches;
      const uint64_t made = after.batches - before.batches;
      if (batches == 1) {
        EXPECT_EQ(on_caller, 1u) << bytes << " bytes";
        EXPECT_EQ(made, 1u) << bytes << " bytes";
      } else {
        EXPECT_GE(made, batches) << bytes << " bytes";
        EXPECT_GE(on_caller, 1u) << bytes << " bytes";
        EXPECT_LE(on_caller, made) << bytes << " bytes";
      }
    }
  }
}

// With one thread there is one crypt token: a sync caller that holds it crypts every
// batch of its request, and the worker, which has no token, crypts none of them.
TEST(EngineCallerRuns, OneThreadSyncCallerCryptsItsWholeRequest) {
  EngineConfig c = pipeline_config();
  c.threads = 1;
  auto e = make_engine(c);
  TestKey k = add_test_key(*e, 32, 24);
  const auto in = bytes_of(1 << 20, 5);
  std::vector<uint8_t> out(in.size());
  ASSERT_TRUE(
      e->crypt_sync(k.handle, Direction::encrypt, k4K, 40, in.data(), out.data(), in.size()).ok());
  EXPECT_EQ(out, reference(k.ref, Direction::encrypt, k4K, 40, in));
  const EngineStats st = e->stats();
  EXPECT_EQ(st.batches, 16u);
  EXPECT_EQ(st.caller_batches, 16u);
}

// Sync callers helping with their requests while another thread keeps asynchronous
// requests in flight, with one and two threads: every byte right, nothing stuck.
TEST(EngineCallerRuns, HelpingCallersBesideAsynchronousSubmitters) {
  for (unsigned threads : {1u, 2u}) {
    EngineConfig c = pipeline_config();
    c.threads = threads;
    auto e = make_engine(c);
    TestKey k = add_test_key(*e, 64, 25);
    Watchdog dog(std::chrono::seconds(60), "helping callers beside async submitters");
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> async_done{0}, async_bad{0};
    std::thread submitter([&] {
      struct Job {
        std::vector<uint8_t> in, out, want;
        iovec sv, dv;
        std::atomic<bool> done{true};
        bool submitted = false;
      };
      std::vector<Job> jobs(8);
      for (std::size_t i = 0; i < jobs.size(); ++i) {
        Job& j = jobs[i];
        j.in = bytes_of(4096 * (1 + i * 7), 300 + i);  // 4 KiB to 200 KiB
        j.out.resize(j.in.size());
        j.want = reference(k.ref, Direction::decrypt, k4K, 1000 * i, j.in);
      }
      while (!stop.load()) {
        for (std::size_t i = 0; i < jobs.size(); ++i) {
          Job& j = jobs[i];
          if (!j.done.load()) continue;
          if (j.submitted && j.out != j.want) async_bad.fetch_add(1);  // its last round
          std::fill(j.out.begin(), j.out.end(), 0xee);
          j.sv = {j.in.data(), j.in.size()};
          j.dv = {j.out.data(), j.out.size()};
          Request r;
          r.key = k.handle;
          r.dir = Direction::decrypt;
          r.format = k4K;
          r.start_sector = 1000 * i;
          r.src = &j.sv;
          r.src_count = 1;
          r.dst = &j.dv;
          r.dst_count = 1;
          r.flush = true;
          r.user_context = &j;
          r.callback = [](const Status& s, void* p) {
            auto* job = static_cast<Job*>(p);
            if (!s.ok()) job->out.assign(job->out.size(), 0);
            job->done.store(true);
          };
          j.done.store(false);
          j.submitted = true;
          ASSERT_TRUE(e->submit(r).ok());
          async_done.fetch_add(1);
        }
        std::this_thread::sleep_for(std::chrono::microseconds(50));  // leave room for sync calls
      }
      for (Job& j : jobs) {
        while (!j.done.load()) std::this_thread::yield();
      }
    });
    const auto t0 = std::chrono::steady_clock::now();
    for (int call = 0; call < 30; ++call) {
      const std::size_t bytes = (call % 3 == 0 ? 4096 : 64 * 1024) * (1 + call % 5);
      const auto in = bytes_of(bytes, 900 + call);
      std::vector<uint8_t> out(bytes);
      ASSERT_TRUE(
          e->crypt_sync(k.handle, Direction::encrypt, k4K, call, in.data(), out.data(), bytes).ok());
      ASSERT_EQ(out, reference(k.ref, Direction::encrypt, k4K, call, in)) << bytes;
    }
    std::printf("%u threads: 30 sync calls in %.1f ms beside %llu async requests\n", threads,
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count(),
                static_cast<unsigned long long>(async_done.load()));
    stop.store(true);
    submitter.join();
    EXPECT_EQ(async_bad.load(), 0u) << threads << " threads";
    EXPECT_GT(async_done.load(), 0u);
    EXPECT_GT(e->stats().caller_batches, 0u);
  }
}

// A sync call made while an earlier request is still completing must not overtake it.
TEST(EngineCallerRuns, SyncCallNeverOvertakesAnEarlierRequest) {
  EngineConfig c = pipeline_config();
  c.threads = 1;
  auto e = make_engine(c);
  TestKey k = add_test_key(*e, 32, 22);
  Watchdog dog(std::chrono::seconds(30), "sync call behind a blocked completion");
  struct Gate {
    std::mutex mu;
    std::condition_variable cv;
    bool open = false, first_done = false, sync_done_first = false;
  } gate;
  auto first_in = bytes_of(4096, 1);
  std::vector<uint8_t> first_out(4096);
  iovec sv{first_in.data(), 4096}, dv{first_out.data(), 4096};
  Request r;
  r.key = k.handle;
  r.format = k4K;
  r.src = &sv;
  r.src_count = 1;
  r.dst = &dv;
  r.dst_count = 1;
  r.flush = true;
  r.user_context = &gate;
  r.callback = [](const Status&, void* p) {
    auto* g = static_cast<Gate*>(p);
    std::unique_lock lock(g->mu);
    g->cv.wait(lock, [&] { return g->open; });  // hold the completion (not the engine)
    g->first_done = true;
  };
  ASSERT_TRUE(e->submit(r).ok());
  std::thread sync([&] {
    auto in = bytes_of(4096, 2);
    std::vector<uint8_t> out(4096);
    const Status s = e->crypt_sync(k.handle, Direction::encrypt, k4K, 8, in.data(), out.data(), 4096);
    EXPECT_TRUE(s.ok()) << s.message();
    EXPECT_EQ(out, reference(k.ref, Direction::encrypt, k4K, 8, in));
    std::lock_guard lock(gate.mu);
    gate.sync_done_first = !gate.first_done;
  });
  // Give the sync call time to arrive while the first completion is held (not a pass
  // condition: the order must hold whenever it arrives).
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  {
    std::lock_guard lock(gate.mu);
    gate.open = true;
  }
  gate.cv.notify_all();
  sync.join();
  EXPECT_FALSE(gate.sync_done_first);
  EXPECT_EQ(first_out, reference(k.ref, Direction::encrypt, k4K, 0, first_in));
}

// Sync callers racing shutdown: each call returns ok with the right bytes or shut_down,
// and shutdown returns only once every accepted request has completed.
TEST(EngineCallerRuns, ShutdownWaitsForBatchesRunOnCallers) {
  for (int round = 0; round < 20; ++round) {
    auto e = make_engine(pipeline_config());
    TestKey k = add_test_key(*e, 64, 23);
    Watchdog dog(std::chrono::seconds(60), "sync callers racing shutdown");
    std::atomic<uint64_t> ok{0}, refused{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> callers;
    for (int t = 0; t < 3; ++t) {
      callers.emplace_back([&, t] {
        // One slot (run on the caller when idle) and several (the caller helps).
        const std::size_t bytes = t == 0 ? 8192 : 200 * 1024;
        auto in = bytes_of(bytes, 100 + t);
        const auto want = reference(k.ref, Direction::encrypt, k4K, 16 * t, in);
        std::vector<uint8_t> out(bytes);
        while (!go.load()) std::this_thread::yield();
        for (;;) {
          const Status s =
              e->crypt_sync(k.handle, Direction::encrypt, k4K, 16 * t, in.data(), out.data(), bytes);
          if (!s.ok()) {
            EXPECT_EQ(s.code(), Errc::shut_down) << s.message();
            refused.fetch_add(1);
            return;
          }
          EXPECT_EQ(out, want);
          ok.fetch_add(1);
        }
      });
    }
    go.store(true);
    std::this_thread::sleep_for(std::chrono::microseconds(200 * (round % 5)));
    e->shutdown();
    // Everything accepted has completed by now: the count cannot move any more.
    const uint64_t completed = e->stats().requests;
    for (auto& t : callers) t.join();
    EXPECT_EQ(refused.load(), 3u);
    EXPECT_EQ(e->stats().requests, completed);
    EXPECT_EQ(completed, ok.load() + e->stats().requests_failed);
  }
}

// Small crypt_sync calls on the CPU are crypted on the caller when a token is free: no
// batch, no queue, the same bytes, the same refusals.
TEST(EngineSyncInline, SmallCallsAreCryptedOnTheCaller) {
  auto e = make_engine(small_config());  // inline_max_bytes: 64 KiB
  TestKey k = add_test_key(*e, 64, 31);
  uint64_t seed = 1;
  for (std::size_t bytes : {std::size_t{4096}, std::size_t{65536}}) {
    for (Direction dir : {Direction::encrypt, Direction::decrypt}) {
      const auto in = bytes_of(bytes, seed++);
      std::vector<uint8_t> out(bytes, 0);
      ASSERT_TRUE(e->crypt_sync(k.handle, dir, k4K, 8 * seed, in.data(), out.data(), bytes).ok());
      EXPECT_EQ(out, reference(k.ref, dir, k4K, 8 * seed, in));
      auto inplace = in;
      ASSERT_TRUE(e->crypt_sync(k.handle, dir, k4K, 8 * seed, inplace.data(), inplace.data(), bytes).ok());
      EXPECT_EQ(inplace, out);
    }
  }
  EngineStats st = e->stats();
  EXPECT_EQ(st.inline_requests, 8u);
  EXPECT_EQ(st.requests, 8u);
  EXPECT_EQ(st.batches, 0u) << "inline calls make no batch";
  EXPECT_EQ(st.latency.count(), 8u);
  // Larger than inline_max_bytes: the pipeline.
  const auto big = bytes_of(128 * 1024, 7);
  std::vector<uint8_t> out(big.size());
  ASSERT_TRUE(e->crypt_sync(k.handle, Direction::encrypt, k4K, 0, big.data(), out.data(), big.size()).ok());
  EXPECT_EQ(out, reference(k.ref, Direction::encrypt, k4K, 0, big));
  st = e->stats();
  EXPECT_EQ(st.inline_requests, 8u);
  EXPECT_GE(st.batches, 2u);
  // Refusals are the pipeline's: a bad length, a stale key; and after shutdown.
  EXPECT_EQ(e->crypt_sync(k.handle, Direction::encrypt, k4K, 0, big.data(), out.data(), 1000).code(),
            Errc::invalid_length);
  EXPECT_EQ(e->crypt_sync(KeyHandle{77}, Direction::encrypt, k4K, 0, big.data(), out.data(), 4096).code(),
            Errc::invalid_key);
  e->shutdown();
  EXPECT_EQ(e->crypt_sync(k.handle, Direction::encrypt, k4K, 0, big.data(), out.data(), 4096).code(),
            Errc::shut_down);
}

// While memory is registered, small calls take the pipeline so that the ranges they lie
// in are held (unregister refuses) for as long as they run.
TEST(EngineSyncInline, RegisteredMemoryKeepsThePipelinePath) {
  auto e = make_engine(small_config());
  TestKey k = add_test_key(*e, 64, 32);
  auto buf = bytes_of(8192, 3);
  const auto want = reference(k.ref, Direction::encrypt, k4K, 0, buf);
  ASSERT_TRUE(e->register_memory(buf.data(), buf.size()).ok());
  ASSERT_TRUE(e->crypt_sync(k.handle, Direction::encrypt, k4K, 0, buf.data(), buf.data(), 8192).ok());
  EXPECT_EQ(buf, want);
  EXPECT_EQ(e->stats().inline_requests, 0u);
  EXPECT_EQ(e->stats().registered_requests, 1u);
  ASSERT_TRUE(e->unregister_memory(buf.data()).ok());
}

// Many threads of small calls on two tokens: each call is right, and at most `threads`
// threads crypt at once (the rest take the pipeline, which is right too).
TEST(EngineSyncInline, ManyCallersShareTheTokens) {
  auto e = make_engine(small_config());
  TestKey k = add_test_key(*e, 64, 33);
  std::atomic<int> bad{0};
  std::vector<std::thread> t;
  for (int i = 0; i < 6; ++i) {
    t.emplace_back([&, i] {
      const auto in = bytes_of(4096 * (1 + i), 40 + i);
      const auto want = reference(k.ref, Direction::encrypt, k4K, 8 * i, in);
      std::vector<uint8_t> out(in.size());
      for (int n = 0; n < 300; ++n) {
        std::fill(out.begin(), out.end(), 0);
        if (!e->crypt_sync(k.handle, Direction::encrypt, k4K, 8 * i, in.data(), out.data(), in.size()).ok() ||
            out != want) {
          ++bad;
        }
      }
    });
  }
  for (auto& th : t) th.join();
  EXPECT_EQ(bad.load(), 0);
  const EngineStats st = e->stats();
  EXPECT_EQ(st.requests, 1800u);
  EXPECT_GT(st.inline_requests, 0u);
}

}  // namespace
}  // namespace sectorcrypt::testing
