// engine/free_stack.h: many threads give indices back while one at a time (under a
// mutex, as the engine mutex serialises the slot pool's takers) takes them. Every index
// is held by exactly one thread at any time: none lost, none handed out twice.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/free_stack.h"

namespace sectorcrypt::testing {
namespace {

TEST(FreeStack, LastInFirstOut) {
  engine::FreeStack s;
  s.init(4);
  EXPECT_TRUE(s.empty());
  for (uint32_t i = 4; i-- > 0;) s.push(i);
  uint32_t v = 99;
  ASSERT_TRUE(s.pop(&v));
  EXPECT_EQ(v, 0u);
  s.push(v);
  ASSERT_TRUE(s.pop(&v));
  EXPECT_EQ(v, 0u) << "the index given back last is taken first";
  for (uint32_t want = 1; want < 4; ++want) {
    ASSERT_TRUE(s.pop(&v));
    EXPECT_EQ(v, want);
  }
  EXPECT_FALSE(s.pop(&v));
  EXPECT_TRUE(s.empty());
}

TEST(FreeStack, ManyGiversOneTakerAtATimeNeverLoseOrDuplicate) {
  constexpr uint32_t kSlots = 8;
  constexpr int kThreads = 8;
  constexpr int kRounds = 20000;
  engine::FreeStack s;
  s.init(kSlots);
  for (uint32_t i = 0; i < kSlots; ++i) s.push(i);
  std::mutex taker;  // the engine mutex's part: one pop at a time
  std::atomic<int> held[kSlots] = {};
  std::atomic<int> twice{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int r = 0; r < kRounds; ++r) {
        uint32_t v = 0;
        bool got = false;
        {
          std::lock_guard lk(taker);
          got = s.pop(&v);
        }
        if (!got) {
          std::this_thread::yield();
          continue;
        }
        if (held[v].fetch_add(1) != 0) twice.fetch_add(1);
        held[v].fetch_sub(1);
        s.push(v);  // given back without the lock, as a completing worker does
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(twice.load(), 0) << "an index was handed to two threads at once";
  std::vector<int> seen(kSlots, 0);
  uint32_t v = 0;
  while (s.pop(&v)) ++seen[v];
  for (uint32_t i = 0; i < kSlots; ++i) EXPECT_EQ(seen[i], 1) << "slot " << i;
}

}  // namespace
}  // namespace sectorcrypt::testing
