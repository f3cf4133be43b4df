// The hybrid backend: the split policy on its own (every machine), and on a GPU the
// engine with every forced split and the adaptive one, byte for byte against the
// reference whichever side crypted a sector.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "engine/hybrid_split.h"
#include "tests/engine/engine_test_support.h"

namespace sectorcrypt::testing {
namespace {

using engine::HybridSplit;
using engine::Side;

constexpr uint64_t kMiB = 1 << 20;

// Forced shares are exact over equal batches, and 0 / 100 put everything on one side.
TEST(HybridSplit, ForcedSharesAreKeptBatchByBatch) {
  for (int pct : {0, 25, 50, 75, 100}) {
    HybridSplit split(pct, 256 * 1024);
    uint64_t gpu = 0, total = 0;
    for (int i = 0; i < 400; ++i) {
      const Side s = split.choose(kMiB, false);
      if (s == Side::gpu) gpu += kMiB;
      total += kMiB;
      split.done(s, kMiB, 1000);
      // Never ahead of the share, and never more than one batch behind it.
      EXPECT_LE(gpu * 100, total * pct) << pct << "% after " << i + 1;
      EXPECT_GE((gpu + kMiB) * 100, total * pct) << pct << "% after " << i + 1;
    }
    EXPECT_EQ(gpu * 100, total * pct) << pct;
  }
}

TEST(HybridSplit, SmallBatchesStayOnTheCpuAndDeviceMemoryGoesToTheGpu) {
  for (int pct : {-1, 100}) {
    HybridSplit split(pct, 256 * 1024);
    EXPECT_EQ(split.choose(4096, false), Side::cpu) << pct;
    EXPECT_EQ(split.choose(256 * 1024 - 4096, false), Side::cpu) << pct;
    EXPECT_EQ(split.choose(4096, true), Side::gpu) << pct;  // however small
  }
  HybridSplit none(0, 256 * 1024);
  EXPECT_EQ(none.choose(64 * kMiB, true), Side::gpu);  // a forced 0% cannot keep it
}

// Adaptive: sides that deliver 3:1 end up with about 3:1 of the bytes, measured as the
// run goes. A simulated clock: each side runs its batches one after another (a queue,
// as a GPU stream or a busy core does), eight batches are kept in flight, and a batch's
// time is from its hand-over to its end, as a worker sees it.
TEST(HybridSplit, AdaptiveShareFollowsWhatEachSideDelivers) {
  for (double gpu_speed : {3.0, 1.0 / 3}) {  // bytes per ns; the CPU side runs at 1
    HybridSplit split(-1, 256 * 1024);
    struct Running {
      double finish, start;
      Side side;
    };
    std::vector<Running> running;
    double now = 0, free_at[2] = {0, 0};
    uint64_t gpu = 0, total = 0;
    for (int done = 0; done < 3000;) {
      while (running.size() < 8) {
        const Side s = split.choose(kMiB, false);
        const int i = s == Side::gpu ? 1 : 0;
        const double speed = s == Side::gpu ? gpu_speed : 1.0;
        free_at[i] = std::max(free_at[i], now) + kMiB / speed;
        running.push_back({free_at[i], now, s});
      }
      auto first = std::min_element(running.begin(), running.end(),
                                    [](const Running& a, const Running& b) { return a.finish < b.finish; });
      now = first->finish;
      split.done(first->side, kMiB, static_cast<uint64_t>(first->finish - first->start));
      if (++done > 1000) {  // after it has settled
        if (first->side == Side::gpu) gpu += kMiB;
        total += kMiB;
      }
      running.erase(first);
    }
    const double share = static_cast<double>(gpu) / static_cast<double>(total);
    EXPECT_NEAR(share, gpu_speed / (gpu_speed + 1.0), 0.1) << "gpu speed " << gpu_speed;
  }
}

// In flight counts: a side with much queued gets the next batch only when it is still
// the sooner one to finish it.
TEST(HybridSplit, BytesInFlightDelayASide) {
  HybridSplit split(-1, 256 * 1024);
  // Equal measured rates (the initial guess): the batches alternate as each side fills.
  const Side a = split.choose(8 * kMiB, false);
  const Side b = split.choose(8 * kMiB, false);
  EXPECT_NE(a, b);
  split.done(a, 8 * kMiB, 8 * kMiB);
  EXPECT_EQ(split.choose(kMiB, false), a);  // a is empty again, b still has 8 MiB
}

TEST(EngineHybrid, WithoutAGpuItSaysWhy) {
  EngineConfig c = small_config();
  c.backend = BackendKind::hybrid;
  std::unique_ptr<Engine> e;
  const Status s = Engine::create(c, &e);
  if (s.ok()) GTEST_SKIP() << "a GPU is usable here: " << e->backend_detail();
  EXPECT_EQ(s.code(), Errc::unavailable);
  EXPECT_NE(std::strstr(s.message(), "backend hybrid asked for"), nullptr) << s.message();
  c.hybrid_gpu_percent = 101;
  EXPECT_EQ(Engine::create(c, &e).code(), Errc::invalid_length);
}

// Every split, including all on one side, gives the reference's bytes; the GPU's share
// of the bytes is what was forced.
TEST(EngineHybrid, EverySplitMatchesTheReference) {
  for (int pct : {0, 30, 100, -1}) {
    EngineConfig c = small_config();
    c.backend = BackendKind::hybrid;
    c.slot_bytes = 256 * 1024;
    c.slot_count = 6;
    c.hybrid_gpu_percent = pct;
    // Every batch may go to the GPU: the tails of split requests are smaller than a slot,
    // and the small-batch rule (tested in HybridSplit) would keep them on the CPU.
    c.hybrid_min_gpu_bytes = 0;
    std::unique_ptr<Engine> e;
    const Status cs = Engine::create(c, &e);
    if (!cs.ok()) GTEST_SKIP() << cs.message();
    ASSERT_EQ(e->backend(), BackendKind::hybrid);
    Watchdog dog(std::chrono::seconds(120), "EverySplitMatchesTheReference");
    TestKey k = add_test_key(*e, 64, 600 + pct);
    for (uint32_t ss : {512u, 4096u}) {
      const SectorFormat f{ss, IvMode::plain64, false};
      const std::size_t total = 20 * 256 * 1024;  // 20 full batches
      const auto plain = bytes_of(total, 700 + ss);
      std::vector<uint8_t> out(total);
      ASSERT_TRUE(e->crypt_sync(k.handle, Direction::encrypt, f, 77, plain.data(), out.data(),
                                total).ok());
      EXPECT_EQ(out, reference(k.ref, Direction::encrypt, f, 77, plain)) << pct << "% " << ss;
      std::vector<uint8_t> back(total);
      ASSERT_TRUE(e->crypt_sync(k.handle, Direction::decrypt, f, 77, out.data(), back.data(),
                                total).ok());
      EXPECT_EQ(back, plain);
    }
    const EngineStats st = e->stats();
    if (pct == 0) {
      EXPECT_EQ(st.gpu_bytes, 0u);
    } else if (pct == 100) {
      EXPECT_EQ(st.gpu_bytes, st.bytes);
    } else if (pct == 30) {
      EXPECT_NEAR(static_cast<double>(st.gpu_bytes) / static_cast<double>(st.bytes), 0.30, 0.05);
    }
    std::printf("hybrid %d%%: %llu of %llu bytes on the GPU (%s)\n", pct,
                static_cast<unsigned long long>(st.gpu_bytes),
                static_cast<unsigned long long>(st.bytes), e->backend_detail());
  }
}

}  // namespace
}  // namespace sectorcrypt::testing
