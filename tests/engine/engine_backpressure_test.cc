// Backpressure: one slot, one request record, 64 producers. Blocking and non-blocking
// submits; every request completes exactly once with the right bytes; a watchdog turns a
// deadlock into a failure.
#include "tests/engine/engine_test_support.h"

namespace sectorcrypt::testing {
namespace {

constexpr int kProducers = 64;
constexpr int kPerProducer = 6;

struct ProducerJob {
  std::vector<uint8_t> in, out, want;
  iovec sv{}, dv{};
  CompletionLog::Ctx ctx{};
};

void run_backpressure(bool blocking) {
  EngineConfig c;
  c.backend = BackendKind::cpu;
  c.threads = 2;
  c.slot_count = 1;
  c.slot_bytes = 4096;
  c.request_capacity = 1;
  c.flush_deadline_us = 50;
  auto e = make_engine(c);
  ASSERT_TRUE(e);
  TestKey k = add_test_key(*e, 32, 1);
  const SectorFormat f{512, IvMode::plain64, false};

  const std::size_t n = kProducers * kPerProducer;
  CompletionLog log(n);
  std::vector<ProducerJob> jobs(n);
  for (std::size_t i = 0; i < n; ++i) {
    ProducerJob& j = jobs[i];
    const std::size_t sectors = 1 + i % 13;  // up to 6.5 KiB: some split over the slot
    j.in = bytes_of(sectors * 512, i);
    j.out.assign(j.in.size(), 0);
    j.want = reference(k.ref, i % 2 ? Direction::decrypt : Direction::encrypt, f, i * 64, j.in);
    j.sv = {j.in.data(), j.in.size()};
    j.dv = {j.out.data(), j.out.size()};
    j.ctx = {&log, i};
  }

  Watchdog dog(std::chrono::seconds(60), blocking ? "blocking backpressure" : "try_submit backpressure");
  std::atomic<uint64_t> full_answers{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (int m = 0; m < kPerProducer; ++m) {
        const std::size_t i = static_cast<std::size_t>(p) * kPerProducer + m;
        ProducerJob& j = jobs[i];
        Request r;
        r.key = k.handle;
        r.dir = i % 2 ? Direction::decrypt : Direction::encrypt;
        r.format = f;
        r.start_sector = i * 64;
        r.src = &j.sv;
        r.src_count = 1;
        r.dst = &j.dv;
        r.dst_count = 1;
        r.callback = &CompletionLog::on_done;
        r.user_context = &j.ctx;
        if (blocking && (m % 2 == 0)) {
          const Status s = e->submit(r);
          ASSERT_TRUE(s.ok()) << s.message();
        } else {
          for (;;) {
            const Status s = e->try_submit(r);
            if (s.ok()) break;
            ASSERT_EQ(s.code(), Errc::would_block) << s.message();  // full, never invalid
            full_answers.fetch_add(1);
            std::this_thread::yield();
          }
        }
      }
    });
  }
  for (auto& t : producers) t.join();
  ASSERT_TRUE(e->drain().ok());
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_EQ(log.count[i].load(), 1) << "request " << i << " completions";
    ASSERT_EQ(log.codes[i], Errc::ok);
    ASSERT_EQ(jobs[i].out, jobs[i].want) << "request " << i;
  }
  const EngineStats st = e->stats();
  EXPECT_EQ(st.requests, n);
  if (blocking) {
    EXPECT_GT(st.submit_waits, 0u);
  }
  EXPECT_GT(full_answers.load() + st.submit_waits, 0u);  // the pool really was contended
}

TEST(EngineBackpressure, OneSlotSixtyFourProducersBlockingAndTry) { run_backpressure(true); }
TEST(EngineBackpressure, OneSlotSixtyFourProducersTryOnly) { run_backpressure(false); }

// The zero-copy path under the same contention: 64 threads share one slot.
TEST(EngineBackpressure, OneSlotZeroCopyProducers) {
  EngineConfig c;
  c.backend = BackendKind::cpu;
  c.threads = 2;
  c.slot_count = 1;
  c.slot_bytes = 8192;
  auto e = make_engine(c);
  ASSERT_TRUE(e);
  TestKey k = add_test_key(*e, 64, 2);
  const SectorFormat f{4096, IvMode::plain64, false};
  Watchdog dog(std::chrono::seconds(60), "zero-copy backpressure");
  std::atomic<int> bad{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (int m = 0; m < 3; ++m) {
        SlotHandle slot;
        Status s = (m % 2) ? e->acquire_slot(&slot) : Status::error(Errc::would_block, "x");
        while (!s.ok()) {
          ASSERT_EQ(s.code(), Errc::would_block);
          std::this_thread::yield();
          s = e->try_acquire_slot(&slot);
        }
        const auto plain = bytes_of(8192, p * 10 + m);
        std::memcpy(slot.data, plain.data(), plain.size());
        struct Done {
          std::mutex mu;
          std::condition_variable cv;
          bool done = false;
          Errc code = Errc::internal;
        } done;
        SlotRequest r;
        r.key = k.handle;
        r.format = f;
        r.start_sector = 16 * p;
        r.bytes = 8192;
        r.callback = [](const Status& st, void* ctx) {
          auto* d = static_cast<Done*>(ctx);
          std::lock_guard lock(d->mu);
          d->code = st.code();
          d->done = true;
          d->cv.notify_one();
        };
        r.user_context = &done;
        ASSERT_TRUE(e->submit_slot(slot, r).ok());
        {
          std::unique_lock lock(done.mu);
          done.cv.wait(lock, [&] { return done.done; });
        }
        if (done.code != Errc::ok ||
            std::memcmp(slot.data, reference(k.ref, Direction::encrypt, f, 16 * p, plain).data(),
                        8192) != 0) {
          bad.fetch_add(1);
        }
        ASSERT_TRUE(e->release_slot(slot).ok());
      }
    });
  }
  for (auto& t : producers) t.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace sectorcrypt::testing
