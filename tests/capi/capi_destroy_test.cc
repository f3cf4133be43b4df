// sectorcrypt_destroy() with work still pending: every accepted request completes and
// its callback has returned before destroy returns, so a callback may use memory the
// caller frees right after (under ASan a late callback is a heap-use-after-free; the
// counts below catch it without ASan too). Pending polled completions and lent slots are
// freed with the engine (ASan's leak check).
#include <sectorcrypt.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/test_support.h"

namespace {

using namespace std::chrono_literals;

sectorcrypt_engine* make_engine(unsigned threads) {
  sectorcrypt_config cfg;
  sectorcrypt_config_init(&cfg);
  cfg.backend = SECTORCRYPT_BACKEND_CPU;
  cfg.threads = threads;
  cfg.idle_spin_us = 0;
  sectorcrypt_engine* e = nullptr;
  EXPECT_EQ(sectorcrypt_create(&cfg, &e), SECTORCRYPT_OK) << sectorcrypt_last_error();
  return e;
}

sectorcrypt_key add_key(sectorcrypt_engine* e) {
  const auto raw = sectorcrypt::testing::random_xts_key(64);
  sectorcrypt_key k = 0;
  EXPECT_EQ(sectorcrypt_add_key(e, raw.data(), raw.size(), 0, &k), SECTORCRYPT_OK);
  return k;
}

// What the callbacks touch: heap memory the test frees as soon as destroy returns.
struct Pending {
  std::atomic<int> called{0};
  std::atomic<int> ok{0};
  std::atomic<int> shut_down{0};
  std::atomic<int> other{0};
  std::atomic<int> empty_message{0};
};

void slow_callback(int status, const char* message, void* p) {
  std::this_thread::sleep_for(2ms);  // a callback that takes a while: work stays pending
  auto* pending = static_cast<Pending*>(p);
  if (message == nullptr || message[0] == '\0') pending->empty_message.fetch_add(1);
  if (status == SECTORCRYPT_OK) {
    pending->ok.fetch_add(1);
  } else if (status == SECTORCRYPT_ESHUTDOWN) {
    pending->shut_down.fetch_add(1);
  } else {
    pending->other.fetch_add(1);
  }
  pending->called.fetch_add(1);
}

// The reported failure: 32 flushed requests with a callback of a couple of milliseconds,
// then destroy. Here from 4 submitting threads, destroyed from a fifth, a few times over.
TEST(CApiDestroy, WithCallbacksPendingFromSeveralThreads) {
  constexpr int kThreads = 4, kPerThread = 8, kRounds = 3;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE(round);
    sectorcrypt_engine* e = make_engine(2);
    ASSERT_NE(e, nullptr);
    const sectorcrypt_key k = add_key(e);
    auto pending = std::make_unique<Pending>();
    std::vector<std::vector<uint8_t>> bufs(kThreads * kPerThread, std::vector<uint8_t>(4096));
    std::vector<iovec> segs(bufs.size());
    std::atomic<int> accepted{0};
    std::vector<std::thread> submitters;
    for (int t = 0; t < kThreads; ++t) {
      submitters.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          const int n = t * kPerThread + i;
          segs[n] = {bufs[n].data(), bufs[n].size()};
          sectorcrypt_request r;
          sectorcrypt_request_init(&r);
          r.key = k;
          r.src = &segs[n];
          r.src_count = 1;
          r.callback = &slow_callback;
          r.user_data = pending.get();
          r.flags = SECTORCRYPT_REQ_FLUSH;
          if (sectorcrypt_submit(e, &r) == SECTORCRYPT_OK) accepted.fetch_add(1);
        }
      });
    }
    for (auto& th : submitters) th.join();
    ASSERT_EQ(accepted.load(), kThreads * kPerThread);
    std::thread destroyer([e] { sectorcrypt_destroy(e); });
    destroyer.join();
    // Everything delivered before destroy returned; nothing may arrive after this.
    const int called = pending->called.load();
    EXPECT_EQ(called, kThreads * kPerThread);
    EXPECT_EQ(pending->ok.load() + pending->shut_down.load(), called);
    EXPECT_EQ(pending->other.load(), 0);
    EXPECT_EQ(pending->empty_message.load(), 0);
    pending.reset();
    std::this_thread::sleep_for(5ms);  // a straggler would now write to freed memory
  }
}

// Completions nobody polled, a lent slot, a submitted slot with a callback, and requests
// still waiting for a slot: destroy completes or frees all of it.
TEST(CApiDestroy, WithPolledCompletionsAndSlotsOutstanding) {
  sectorcrypt_engine* e = make_engine(1);
  ASSERT_NE(e, nullptr);
  const sectorcrypt_key k = add_key(e);
  auto pending = std::make_unique<Pending>();
  std::vector<std::vector<uint8_t>> bufs(16, std::vector<uint8_t>(8192));
  std::vector<iovec> segs(bufs.size());
  for (std::size_t i = 0; i < bufs.size(); ++i) {
    segs[i] = {bufs[i].data(), bufs[i].size()};
    sectorcrypt_request r;
    sectorcrypt_request_init(&r);
    r.key = k;
    r.src = &segs[i];
    r.src_count = 1;
    if (i % 2 == 0) {
      r.flags = SECTORCRYPT_REQ_POLL;  // never polled
    } else {
      r.callback = &slow_callback;
      r.user_data = pending.get();
    }
    ASSERT_EQ(sectorcrypt_submit(e, &r), SECTORCRYPT_OK) << sectorcrypt_last_error();
  }
  sectorcrypt_slot lent, submitted;
  ASSERT_EQ(sectorcrypt_acquire_slot(e, &lent), SECTORCRYPT_OK);
  ASSERT_EQ(sectorcrypt_acquire_slot(e, &submitted), SECTORCRYPT_OK);
  std::memset(submitted.data, 0x5a, 4096);
  sectorcrypt_slot_request sr;
  sectorcrypt_slot_request_init(&sr);
  sr.key = k;
  sr.bytes = 4096;
  sr.callback = &slow_callback;
  sr.user_data = pending.get();
  ASSERT_EQ(sectorcrypt_submit_slot(e, &submitted, &sr), SECTORCRYPT_OK) << sectorcrypt_last_error();
  sectorcrypt_destroy(e);
  EXPECT_EQ(pending->called.load(), 8 + 1);
  EXPECT_EQ(pending->other.load(), 0);
}

}  // namespace
