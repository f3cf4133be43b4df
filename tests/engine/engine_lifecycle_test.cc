// Drain and shutdown: every accepted request gets exactly one completion (ok with the
// right bytes, or shut_down with its output untouched where nothing of it ran).
#include "tests/engine/engine_test_support.h"

namespace sectorcrypt::testing {
namespace {

struct Job {
  std::vector<uint8_t> in, out, want;
  iovec sv{}, dv{};
  CompletionLog::Ctx ctx{};

  // Random input, output poisoned (so a cancelled request is seen untouched), iovecs.
  void prepare(std::size_t bytes, uint64_t seed, CompletionLog* log, std::size_t id,
               uint8_t poison = 0xcd) {
    in = bytes_of(bytes, seed);
    out.assign(bytes, poison);
    sv = {in.data(), in.size()};
    dv = {out.data(), out.size()};
    ctx = {log, id};
  }
};

Request request_for(Job& j, const TestKey& k, const SectorFormat& f, uint64_t start) {
  Request r;
  r.key = k.handle;
  r.format = f;
  r.start_sector = start;
  r.src = &j.sv;
  r.src_count = 1;
  r.dst = &j.dv;
  r.dst_count = 1;
  r.callback = &CompletionLog::on_done;
  r.user_context = &j.ctx;
  return r;
}

TEST(EngineLifecycle, ShutdownWithRequestsInFlight) {
  EngineConfig c = small_config();
  c.slot_count = 2;
  c.request_capacity = 64;
  c.flush_deadline_us = 1000;
  auto e = make_engine(c);
  TestKey k = add_test_key(*e, 32, 1);
  const SectorFormat f{512, IvMode::plain64, false};
  const std::size_t n = 60;
  CompletionLog log(n);
  std::vector<Job> jobs(n);
  Watchdog dog(std::chrono::seconds(60), "shutdown with requests in flight");
  for (std::size_t i = 0; i < n; ++i) {
    Job& j = jobs[i];
    j.prepare(512 * (1 + i % 200), i, &log, i);  // up to 100 KiB: many split
    j.want = reference(k.ref, Direction::encrypt, f, i, j.in);
  }
  // Submit everything, then shut down at once: some run, the rest are cancelled.
  for (std::size_t i = 0; i < n; ++i) ASSERT_TRUE(e->submit(request_for(jobs[i], k, f, i)).ok());
  e->shutdown();
  std::size_t ok = 0, cancelled = 0;
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_EQ(log.count[i].load(), 1) << "request " << i;
    if (log.codes[i] == Errc::ok) {
      ++ok;
      EXPECT_EQ(jobs[i].out, jobs[i].want) << i;
    } else {
      ASSERT_EQ(log.codes[i], Errc::shut_down) << i;
      ++cancelled;
    }
  }
  // Completion order is admission order, so the cancelled ones are a tail.
  ASSERT_EQ(log.order.size(), n);
  for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(log.order[i], i);
  std::printf("shutdown: %zu completed ok, %zu cancelled\n", ok, cancelled);
  // After shutdown: refused, and idempotent.
  Job late;
  CompletionLog late_log(1);
  late.prepare(512, 9, &late_log, 0);
  EXPECT_EQ(e->submit(request_for(late, k, f, 0)).code(), Errc::shut_down);
  EXPECT_EQ(e->try_submit(request_for(late, k, f, 0)).code(), Errc::shut_down);
  SlotHandle slot;
  EXPECT_EQ(e->acquire_slot(&slot).code(), Errc::shut_down);
  e->shutdown();
  EXPECT_EQ(late_log.count[0].load(), 0);
  EXPECT_EQ(late.out, std::vector<uint8_t>(512, 0xcd));
  Completion comp;
  EXPECT_EQ(e->wait_completions(&comp, 1, 1000), 0u);
}

// Accepted requests that never reached a batch are cancelled with shut_down, in order,
// their output untouched. (All slots are lent to the caller, so none can be admitted.)
TEST(EngineLifecycle, ShutdownCancelsQueuedRequests) {
  EngineConfig c = small_config();
  c.slot_count = 2;
  auto e = make_engine(c);
  TestKey k = add_test_key(*e, 32, 5);
  const SectorFormat f;
  SlotHandle held[2];
  for (auto& h : held) ASSERT_TRUE(e->acquire_slot(&h).ok());
  const std::size_t n = 10;
  CompletionLog log(n);
  std::vector<Job> jobs(n);
  Watchdog dog(std::chrono::seconds(30), "shutdown cancelling queued requests");
  for (std::size_t i = 0; i < n; ++i) {
    jobs[i].prepare(512 * (1 + i), i, &log, i);
    Request r = request_for(jobs[i], k, f, 0);
    r.post_completion = true;
    ASSERT_TRUE(e->submit(r).ok());
  }
  e->shutdown();
  for (std::size_t i = 0; i < n; ++i) {
    EXPECT_EQ(log.count[i].load(), 1) << i;
    EXPECT_EQ(log.codes[i], Errc::shut_down) << i;
    EXPECT_EQ(jobs[i].out, std::vector<uint8_t>(jobs[i].out.size(), 0xcd)) << i;
  }
  ASSERT_EQ(log.order.size(), n);
  for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(log.order[i], i);
  // Posted completions stay pollable after shutdown; lent slots can still be returned.
  Completion comp[16];
  const std::size_t got = e->poll(comp, 16);
  EXPECT_EQ(got, n);
  for (std::size_t i = 0; i < got; ++i) {
    EXPECT_EQ(comp[i].status.code(), Errc::shut_down);
    EXPECT_NE(std::strstr(comp[i].status.message(), "shut down"), nullptr);
  }
  for (auto& h : held) EXPECT_TRUE(e->release_slot(h).ok());
}

// A producer blocked in submit() (no free record) is woken by shutdown with shut_down.
TEST(EngineLifecycle, ShutdownWakesBlockedSubmitters) {
  EngineConfig c = small_config();
  c.slot_count = 1;
  c.request_capacity = 1;
  c.flush_deadline_us = 60'000'000;  // the one accepted request waits for its deadline
  c.idle_flush = false;  // hold even an idle pipeline's batch until the deadline
  auto e = make_engine(c);
  TestKey k = add_test_key(*e, 32, 2);
  const SectorFormat f;
  Watchdog dog(std::chrono::seconds(30), "shutdown waking submitters");
  CompletionLog log(5);
  std::vector<Job> jobs(5);
  for (std::size_t i = 0; i < 5; ++i) jobs[i].prepare(512, i, &log, i);
  ASSERT_TRUE(e->submit(request_for(jobs[0], k, f, 0)).ok());
  EXPECT_EQ(e->try_submit(request_for(jobs[1], k, f, 0)).code(), Errc::would_block);
  std::vector<std::thread> blocked;
  std::atomic<int> shut{0};
  for (std::size_t i = 1; i < 5; ++i) {
    blocked.emplace_back([&, i] {
      const Status s = e->submit(request_for(jobs[i], k, f, 0));
      if (s.code() == Errc::shut_down) shut.fetch_add(1);
    });
  }
  // Let them block (not a pass condition: the assertions below hold either way).
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  e->shutdown();
  for (auto& t : blocked) t.join();
  EXPECT_EQ(shut.load(), 4);
  EXPECT_EQ(log.count[0].load(), 1);
  EXPECT_TRUE(log.codes[0] == Errc::shut_down || log.codes[0] == Errc::ok);
  for (std::size_t i = 1; i < 5; ++i) EXPECT_EQ(log.count[i].load(), 0);
}

// The destructor is shutdown(): batched requests finish, the rest are cancelled. How many
// got batched before ~Engine ran depends on timing, so the test checks the rule, not a count.
TEST(EngineLifecycle, DestructorCompletesBatchedAndCancelsTheRest) {
  const std::size_t n = 30;
  CompletionLog log(n);
  std::vector<Job> jobs(n);  // outlive the engine: callbacks run in its destructor
  Watchdog dog(std::chrono::seconds(30), "destructor with requests in flight");
  {
    auto e = make_engine(small_config());
    TestKey k = add_test_key(*e, 64, 3);
    const SectorFormat f{4096, IvMode::plain64, false};
    for (std::size_t i = 0; i < n; ++i) {
      Job& j = jobs[i];
      j.prepare(4096 * (1 + i % 20), i, &log, i);
      j.want = reference(k.ref, Direction::encrypt, f, 8 * i, j.in);
      ASSERT_TRUE(e->submit(request_for(j, k, f, 8 * i)).ok()) << i;
    }
  }  // ~Engine
  bool seen_cancel = false;
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_EQ(log.count[i].load(), 1) << i;
    if (log.codes[i] == Errc::ok) {
      EXPECT_FALSE(seen_cancel) << "request " << i << " ran after an earlier one was cancelled";
      EXPECT_EQ(jobs[i].out, jobs[i].want) << i;
    } else {
      ASSERT_EQ(log.codes[i], Errc::shut_down) << i;
      seen_cancel = true;
    }
  }
}

// shutdown() from a callback only starts the shutdown; the destructor then finishes it.
// The test waits for that callback before destroying the engine, so nothing but the
// callback can have cancelled anything admitted before it.
TEST(EngineLifecycle, ShutdownFromCallbackThenDestructorIsSafe) {
  constexpr std::size_t n = 30, trigger = 10;
  CompletionLog log(n);
  std::vector<Job> jobs(n);
  struct Ctx {
    Engine* e;
    CompletionLog::Ctx inner;
    std::atomic<bool>* triggered;
  };
  std::vector<Ctx> ctx(n);
  std::atomic<bool> triggered{false};
  Watchdog dog(std::chrono::seconds(30), "shutdown from a callback");
  {
    auto e = make_engine(small_config());
    TestKey k = add_test_key(*e, 64, 3);
    const SectorFormat f{4096, IvMode::plain64, false};
    for (std::size_t i = 0; i < n; ++i) {
      Job& j = jobs[i];
      j.prepare(4096 * (1 + i % 20), i, &log, i);
      ctx[i] = {e.get(), j.ctx, &triggered};
      Request r = request_for(j, k, f, 8 * i);
      r.flush = i == trigger;  // send request 10 now rather than at a deadline
      r.user_context = &ctx[i];
      r.callback = [](const Status& s, void* p) {
        auto* cx = static_cast<Ctx*>(p);
        if (cx->inner.id == trigger) cx->e->shutdown();  // from a callback: starts it, returns
        CompletionLog::on_done(s, &cx->inner);
        if (cx->inner.id == trigger) cx->triggered->store(true);
      };
      if (i > trigger) {
        while (!triggered.load()) std::this_thread::yield();
      }
      const Status s = e->submit(r);
      if (i <= trigger) {
        ASSERT_TRUE(s.ok()) << i;
      } else {
        // The callback's shutdown() has returned, so admission is closed.
        ASSERT_EQ(s.code(), Errc::shut_down) << i;
        log.count[i].fetch_add(1);  // never accepted: count the refusal as its one answer
        log.codes[i] = Errc::shut_down;
      }
    }
  }  // ~Engine
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(log.count[i].load(), 1) << i;
  for (std::size_t i = 0; i <= trigger; ++i) EXPECT_EQ(log.codes[i], Errc::ok) << i;
}

TEST(EngineLifecycle, DrainFromCallbackIsRefused) {
  auto e = make_engine(small_config());
  TestKey k = add_test_key(*e, 32, 4);
  auto buf = bytes_of(512, 1);
  iovec v{buf.data(), 512};
  struct Ctx {
    Engine* e;
    Errc code = Errc::ok;
  } ctx{e.get()};
  Request r;
  r.key = k.handle;
  r.src = &v;
  r.src_count = 1;
  r.flush = true;
  r.user_context = &ctx;
  r.callback = [](const Status&, void* p) {
    auto* c = static_cast<Ctx*>(p);
    c->code = c->e->drain().code();
  };
  ASSERT_TRUE(e->submit(r).ok());
  ASSERT_TRUE(e->drain().ok());
  EXPECT_EQ(ctx.code, Errc::unavailable);
}

}  // namespace
}  // namespace sectorcrypt::testing
