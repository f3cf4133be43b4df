// Helpers for the engine tests: keys, reference results, a watchdog, completion records.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "engine/engine.h"
#include "kernels/xts_reference.h"

namespace sectorcrypt::testing {

inline std::vector<uint8_t> bytes_of(std::size_t n, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(g());
  return v;
}

inline std::vector<uint8_t> key_of(std::size_t len, uint64_t seed) {
  auto k = bytes_of(len, seed);
  k[0] ^= 0x5a;  // halves differ (a collision of random halves is all but impossible)
  if (std::memcmp(k.data(), k.data() + len / 2, len / 2) == 0) k[0] ^= 1;
  return k;
}

// A key both in the engine and as an XtsKey for the reference.
struct TestKey {
  KeyHandle handle;
  XtsKey ref;
};

inline TestKey add_test_key(Engine& e, std::size_t len, uint64_t seed) {
  TestKey k;
  const auto raw = key_of(len, seed);
  Status s = e.add_key(raw.data(), raw.size(), {}, &k.handle);
  EXPECT_TRUE(s.ok()) << s.message();
  s = XtsKey::create(raw.data(), raw.size(), &k.ref);
  EXPECT_TRUE(s.ok()) << s.message();
  return k;
}

inline std::vector<uint8_t> reference(const XtsKey& key, Direction dir, const SectorFormat& f,
                                      uint64_t start, const std::vector<uint8_t>& in) {
  std::vector<uint8_t> out(in.size());
  const Status s = ref::xts_crypt_sectors(key, dir, f, start, in.data(), out.data(), in.size());
  EXPECT_TRUE(s.ok()) << s.message();
  return out;
}

inline EngineConfig small_config() {
  EngineConfig c;
  c.backend = BackendKind::cpu;
  c.threads = 2;
  c.slot_count = 4;
  c.slot_bytes = 64 * 1024;
  c.flush_deadline_us = 200;
  return c;
}

inline std::unique_ptr<Engine> make_engine(const EngineConfig& c) {
  std::unique_ptr<Engine> e;
  const Status s = Engine::create(c, &e);
  EXPECT_TRUE(s.ok()) << s.message();
  return e;
}

// Aborts the process if not disarmed before the deadline: a deadlock fails loudly
// instead of hanging the suite (no sleep decides a pass).
class Watchdog {
 public:
  Watchdog(std::chrono::seconds limit, const char* what) : what_(what) {
    thread_ = std::thread([this, limit] {
      std::unique_lock lock(mu_);
      if (!cv_.wait_for(lock, limit, [&] { return done_; })) {
        std::fprintf(stderr, "WATCHDOG: %s did not finish in %lld s (deadlock?)\n", what_,
                     static_cast<long long>(limit.count()));
        std::abort();
      }
    });
  }
  ~Watchdog() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  const char* what_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// Counts completions per request id and checks each arrives exactly once.
struct CompletionLog {
  explicit CompletionLog(std::size_t n) : count(n), codes(n) {
    for (auto& c : count) c.store(0);
  }
  std::vector<std::atomic<int>> count;
  std::vector<Errc> codes;
  std::mutex mu;
  std::vector<std::size_t> order;

  struct Ctx {
    CompletionLog* log;
    std::size_t id;
  };
  static void on_done(const Status& s, void* p) {
    auto* c = static_cast<Ctx*>(p);
    c->log->codes[c->id] = s.code();
    {
      std::lock_guard lock(c->log->mu);
      c->log->order.push_back(c->id);
    }
    c->log->count[c->id].fetch_add(1);
  }
};

}  // namespace sectorcrypt::testing
