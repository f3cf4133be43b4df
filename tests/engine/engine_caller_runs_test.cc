// crypt_sync() on an idle engine runs its one-slot batch on the calling thread (no
// hand-off, engine/pipeline.cc admit_on_caller); anything else goes through the workers.
// Either way: the reference's bytes, admission order, and shutdown waits for it.
#include "tests/engine/engine_test_support.h"

namespace sectorcrypt::testing {
namespace {

const SectorFormat k4K{4096, IvMode::plain64, false};

TEST(EngineCallerRuns, IdleSyncCallWithinOneSlotRunsOnTheCaller) {
  auto e = make_engine(small_config());  // 64 KiB slots
  TestKey k = add_test_key(*e, 64, 21);
  // In place first. A caller-run call is idle again when it returns (it completed its
  // own batch); after a call the workers ran, the last worker may still be finishing its
  // bookkeeping, so the calls expected on the caller come before those that are not.
  auto buf = bytes_of(8192, 99);
  const auto want = reference(k.ref, Direction::encrypt, k4K, 0, buf);
  ASSERT_TRUE(e->crypt_sync(k.handle, Direction::encrypt, k4K, 0, buf.data(), buf.data(), 8192).ok());
  EXPECT_EQ(buf, want);
  EXPECT_EQ(e->stats().caller_batches, 1u);
  struct Case {
    std::size_t bytes;
    bool on_caller;
  };
  uint64_t expected_caller = 1, seed = 1;
  for (const Case& c : {Case{4096, true}, Case{64 * 1024, true}, Case{68 * 1024, false},
                        Case{1 << 20, false}}) {
    for (Direction dir : {Direction::encrypt, Direction::decrypt}) {
      const auto in = bytes_of(c.bytes, seed++);
      std::vector<uint8_t> out(c.bytes, 0xcd);
      const uint64_t start = 8 * seed;
      ASSERT_TRUE(e->crypt_sync(k.handle, dir, k4K, start, in.data(), out.data(), c.bytes).ok());
      EXPECT_EQ(out, reference(k.ref, dir, k4K, start, in)) << c.bytes;
      if (c.on_caller) ++expected_caller;
      EXPECT_EQ(e->stats().caller_batches, expected_caller) << c.bytes << " bytes";
    }
  }
}

// A sync call made while an earlier request is still completing must not overtake it.
TEST(EngineCallerRuns, SyncCallNeverOvertakesAnEarlierRequest) {
  EngineConfig c = small_config();
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
    auto e = make_engine(small_config());
    TestKey k = add_test_key(*e, 64, 23);
    Watchdog dog(std::chrono::seconds(60), "sync callers racing shutdown");
    std::atomic<uint64_t> ok{0}, refused{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> callers;
    for (int t = 0; t < 3; ++t) {
      callers.emplace_back([&, t] {
        auto in = bytes_of(8192, 100 + t);
        const auto want = reference(k.ref, Direction::encrypt, k4K, 16 * t, in);
        std::vector<uint8_t> out(8192);
        while (!go.load()) std::this_thread::yield();
        for (;;) {
          const Status s =
              e->crypt_sync(k.handle, Direction::encrypt, k4K, 16 * t, in.data(), out.data(), 8192);
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

}  // namespace
}  // namespace sectorcrypt::testing
