// Registered memory and device-resident requests: the bookkeeping and refusals on every
// backend (the CPU runs the same program, registration changes nothing but counters),
// and on a GPU the DMA and kernel-only paths against the reference.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "tests/engine/engine_test_support.h"
#ifdef SECTORCRYPT_HAVE_CUDA
#include <cuda_runtime.h>
#endif

namespace sectorcrypt::testing {
namespace {

// Blocks completion callbacks until opened, so a request stays in flight.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  std::atomic<int> done{0};
  static void hold(const Status&, void* p) {
    auto* g = static_cast<Gate*>(p);
    std::unique_lock lock(g->mu);
    g->cv.wait(lock, [&] { return g->open; });
    g->done.fetch_add(1);
  }
  void release() {
    std::lock_guard lock(mu);
    open = true;
    cv.notify_all();
  }
};

Request copy_request(KeyHandle key, iovec* src, iovec* dst) {
  Request r;
  r.key = key;
  r.src = src;
  r.src_count = 1;
  if (dst != nullptr) {
    r.dst = dst;
    r.dst_count = 1;
  }
  r.flush = true;
  return r;
}

TEST(RegisteredMemory, RequestsInsideRangesAreCountedAndCorrect) {
  auto e = make_engine(small_config());
  TestKey k = add_test_key(*e, 64, 1);
  std::vector<uint8_t> arena(256 * 1024);
  std::vector<uint8_t> outside(16 * 1024);
  ASSERT_TRUE(e->register_memory(arena.data(), arena.size()).ok());
  const SectorFormat f{};
  const auto plain = bytes_of(16 * 1024, 2);
  std::memcpy(arena.data(), plain.data(), plain.size());
  // Out of place inside the range: registered.
  ASSERT_TRUE(e->crypt_sync(k.handle, Direction::encrypt, f, 7, arena.data(),
                            arena.data() + 64 * 1024, plain.size()).ok());
  EXPECT_EQ(e->stats().registered_requests, 1u);
  const auto want = reference(k.ref, Direction::encrypt, f, 7, plain);
  EXPECT_EQ(0, std::memcmp(arena.data() + 64 * 1024, want.data(), want.size()));
  // Destination outside every range: an ordinary copy request.
  ASSERT_TRUE(e->crypt_sync(k.handle, Direction::encrypt, f, 7, arena.data(), outside.data(),
                            plain.size()).ok());
  EXPECT_EQ(e->stats().registered_requests, 1u);
  EXPECT_EQ(outside, want);
  // In place inside the range, then unregistered: counted only while registered.
  ASSERT_TRUE(e->crypt_sync(k.handle, Direction::decrypt, f, 7, arena.data() + 64 * 1024,
                            arena.data() + 64 * 1024, plain.size()).ok());
  EXPECT_EQ(e->stats().registered_requests, 2u);
  EXPECT_EQ(0, std::memcmp(arena.data() + 64 * 1024, plain.data(), plain.size()));
  ASSERT_TRUE(e->unregister_memory(arena.data()).ok());
  ASSERT_TRUE(e->crypt_sync(k.handle, Direction::encrypt, f, 7, arena.data(),
                            arena.data() + 64 * 1024, plain.size()).ok());
  EXPECT_EQ(e->stats().registered_requests, 2u);
}

TEST(RegisteredMemory, StraddlingSegmentIsNotRegistered) {
  auto e = make_engine(small_config());
  TestKey k = add_test_key(*e, 32, 3);
  std::vector<uint8_t> buf(64 * 1024);
  // Register the first half only; a request over both halves is a copy request.
  ASSERT_TRUE(e->register_memory(buf.data(), buf.size() / 2).ok());
  ASSERT_TRUE(e->crypt_sync(k.handle, Direction::encrypt, SectorFormat{}, 0, buf.data(),
                            buf.data(), buf.size()).ok());
  EXPECT_EQ(e->stats().registered_requests, 0u);
  ASSERT_TRUE(e->crypt_sync(k.handle, Direction::encrypt, SectorFormat{}, 0, buf.data(),
                            buf.data(), buf.size() / 2).ok());
  EXPECT_EQ(e->stats().registered_requests, 1u);
}

TEST(RegisteredMemory, BadRegistrationsAreRefused) {
  EngineConfig c = small_config();
  c.registration_capacity = 2;
  auto e = make_engine(c);
  std::vector<uint8_t> buf(64 * 1024);
  Status s = e->register_memory(nullptr, 4096);
  EXPECT_EQ(s.code(), Errc::invalid_buffer) << s.message();
  s = e->register_memory(buf.data(), 0);
  EXPECT_EQ(s.code(), Errc::invalid_length) << s.message();
  ASSERT_TRUE(e->register_memory(buf.data(), 16 * 1024).ok());
  s = e->register_memory(buf.data() + 8 * 1024, 16 * 1024);
  EXPECT_EQ(s.code(), Errc::invalid_buffer) << s.message();
  EXPECT_NE(std::strstr(s.message(), "overlaps"), nullptr) << s.message();
  ASSERT_TRUE(e->register_memory(buf.data() + 16 * 1024, 16 * 1024).ok());
  s = e->register_memory(buf.data() + 32 * 1024, 16 * 1024);
  EXPECT_EQ(s.code(), Errc::resource_exhausted) << s.message();
  EXPECT_NE(std::strstr(s.message(), "registration_capacity"), nullptr) << s.message();
  s = e->unregister_memory(buf.data() + 4096);  // not the start of a range
  EXPECT_EQ(s.code(), Errc::invalid_buffer) << s.message();
  ASSERT_TRUE(e->unregister_memory(buf.data()).ok());
  s = e->unregister_memory(buf.data());  // twice
  EXPECT_EQ(s.code(), Errc::invalid_buffer) << s.message();
  // The freed entry is reusable.
  EXPECT_TRUE(e->register_memory(buf.data() + 32 * 1024, 16 * 1024).ok());
  EngineConfig bad = small_config();
  bad.registration_capacity = 0;
  std::unique_ptr<Engine> none;
  EXPECT_EQ(Engine::create(bad, &none).code(), Errc::invalid_length);
  bad.registration_capacity = 256;
  EXPECT_EQ(Engine::create(bad, &none).code(), Errc::invalid_length);
}

// A range in use cannot be unregistered, from any number of threads at once; once the
// request's callback has returned, it can.
TEST(RegisteredMemory, UnregisterWhileInUseWouldBlock) {
  Watchdog dog(std::chrono::seconds(60), "UnregisterWhileInUseWouldBlock");
  auto e = make_engine(small_config());
  TestKey k = add_test_key(*e, 64, 4);
  std::vector<uint8_t> buf(64 * 1024, 0x33);
  ASSERT_TRUE(e->register_memory(buf.data(), buf.size()).ok());
  Gate gate;
  iovec v{buf.data(), 8192};
  Request r = copy_request(k.handle, &v, nullptr);
  r.callback = &Gate::hold;
  r.user_context = &gate;
  ASSERT_TRUE(e->submit(r).ok());
  std::atomic<int> refused{0}, succeeded{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        const Status s = e->unregister_memory(buf.data());
        if (s.ok()) {
          succeeded.fetch_add(1);
        } else if (s.code() == Errc::would_block) {
          refused.fetch_add(1);
        } else {
          ADD_FAILURE() << s.message();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(succeeded.load(), 0);
  EXPECT_EQ(refused.load(), 8 * 200);
  gate.release();
  ASSERT_TRUE(e->drain().ok());
  EXPECT_EQ(gate.done.load(), 1);
  EXPECT_TRUE(e->unregister_memory(buf.data()).ok());
}

// Producers crypt inside a range while another thread unregisters and re-registers it
// as fast as it can, so requests are accepted on both sides of every change: each one
// completes once, ok and correct, and no unregister fails with anything but "in use" or
// "not registered" (between its own unregister and register).
TEST(RegisteredMemory, UnregisterRacesProducers) {
  Watchdog dog(std::chrono::seconds(120), "UnregisterRacesProducers");
  EngineConfig c = small_config();
  c.slot_count = 2;
  auto e = make_engine(c);
  TestKey k = add_test_key(*e, 64, 5);
  constexpr int kProducers = 4, kEach = 300;
  constexpr std::size_t kReq = 4096;
  std::vector<uint8_t> arena(kProducers * 2 * kReq);
  ASSERT_TRUE(e->register_memory(arena.data(), arena.size()).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0}, unregistered{0}, failed{0};
  std::thread churn([&] {
    while (!stop.load()) {
      const Status s = e->unregister_memory(arena.data());
      if (s.ok()) {
        unregistered.fetch_add(1);
        if (!e->register_memory(arena.data(), arena.size()).ok()) bad.fetch_add(1);
      } else if (s.code() != Errc::would_block) {
        bad.fetch_add(1);
      }
    }
  });
  struct Done {
    std::atomic<bool> flag{false};
    std::atomic<int>* failed;
  };
  auto on_done = [](const Status& s, void* p) {
    auto* d = static_cast<Done*>(p);
    if (!s.ok()) d->failed->fetch_add(1);
    d->flag.store(true);
  };
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      uint8_t* in = arena.data() + p * 2 * kReq;
      uint8_t* out = in + kReq;
      const auto plain = bytes_of(kReq, 100 + p);
      for (int i = 0; i < kEach; ++i) {
        std::memcpy(in, plain.data(), kReq);
        iovec sv{in, kReq}, dv{out, kReq};
        Request r = copy_request(k.handle, &sv, &dv);
        r.start_sector = static_cast<uint64_t>(i);
        Done d;
        d.failed = &failed;
        r.callback = on_done;
        r.user_context = &d;
        if (!e->submit(r).ok()) {
          bad.fetch_add(1);
          return;
        }
        while (!d.flag.load()) std::this_thread::yield();
        const auto want = reference(k.ref, Direction::encrypt, SectorFormat{}, r.start_sector, plain);
        if (std::memcmp(out, want.data(), kReq) != 0) bad.fetch_add(1);
      }
    });
  }
  for (auto& t : producers) t.join();
  stop.store(true);
  churn.join();
  ASSERT_TRUE(e->drain().ok());
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(e->stats().requests, static_cast<uint64_t>(kProducers * kEach));
  EXPECT_GT(unregistered.load(), 0);
}

TEST(DeviceResident, RefusedOnTheCpuBackendBeforeAnythingIsTaken) {
  auto e = make_engine(small_config());
  TestKey k = add_test_key(*e, 64, 6);
  std::vector<uint8_t> buf(8192, 0x5c);
  const auto before = buf;
  iovec v{buf.data(), buf.size()};
  Request r = copy_request(k.handle, &v, nullptr);
  r.memory = MemoryKind::device;
  int calls = 0;
  r.callback = [](const Status&, void* p) { ++*static_cast<int*>(p); };
  r.user_context = &calls;
  for (bool blocking : {true, false}) {
    const Status s = blocking ? e->submit(r) : e->try_submit(r);
    EXPECT_EQ(s.code(), Errc::invalid_buffer) << s.message();
    EXPECT_NE(std::strstr(s.message(), "needs the cuda backend"), nullptr) << s.message();
  }
  r.memory = static_cast<MemoryKind>(7);
  EXPECT_EQ(e->submit(r).code(), Errc::invalid_buffer);
  ASSERT_TRUE(e->drain().ok());
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(buf, before);
  EXPECT_EQ(e->stats().requests, 0u);
  // The key was not left referenced by the refusals.
  EXPECT_TRUE(e->remove_key(k.handle).ok());
}

#ifdef SECTORCRYPT_HAVE_CUDA
std::unique_ptr<Engine> cuda_engine_or_skip(EngineConfig c) {
  c.backend = BackendKind::cuda;
  std::unique_ptr<Engine> e;
  if (!Engine::create(c, &e).ok()) return nullptr;
  return e;
}

// Registered and unregistered, in place and out of place, split over slots and
// coalesced with each other in one batch: every byte matches the reference.
TEST(RegisteredMemoryCuda, DmaPathMatchesReference) {
  EngineConfig c = small_config();
  c.slot_bytes = 256 * 1024;
  auto e = cuda_engine_or_skip(c);
  if (e == nullptr) GTEST_SKIP() << "no usable GPU";
  Watchdog dog(std::chrono::seconds(120), "DmaPathMatchesReference");
  TestKey k = add_test_key(*e, 64, 10);
  for (uint32_t ss : {512u, 4096u}) {
    const SectorFormat f{ss, IvMode::plain64, false};
    const std::size_t total = 3 * 256 * 1024 + 4 * ss;  // several slots
    std::vector<uint8_t> reg(3 * total), plain = bytes_of(total, ss);
    ASSERT_TRUE(e->register_memory(reg.data(), reg.size()).ok());
    uint8_t* src = reg.data();
    uint8_t* dst = reg.data() + total;
    std::memcpy(src, plain.data(), total);
    const uint64_t before = e->stats().registered_requests;
    ASSERT_TRUE(e->crypt_sync(k.handle, Direction::encrypt, f, 99, src, dst, total).ok());
    EXPECT_EQ(e->stats().registered_requests, before + 1);
    const auto want = reference(k.ref, Direction::encrypt, f, 99, plain);
    EXPECT_EQ(0, std::memcmp(dst, want.data(), total));
    // Two segments, one of them cutting a sector, in place.
    iovec sv[2] = {{dst, ss + 48}, {dst + ss + 48, total - ss - 48}};
    Request r;
    r.key = k.handle;
    r.dir = Direction::decrypt;
    r.format = f;
    r.start_sector = 99;
    r.src = sv;
    r.src_count = 2;
    r.post_completion = true;
    r.flush = true;
    ASSERT_TRUE(e->submit(r).ok());
    Completion comp;
    ASSERT_EQ(e->wait_completions(&comp, 1, 30'000'000), 1u);
    ASSERT_TRUE(comp.status.ok()) << comp.status.message();
    EXPECT_EQ(0, std::memcmp(dst, plain.data(), total));
    // Small registered and unregistered requests coalesced into shared batches.
    std::vector<uint8_t> unreg(16 * ss);
    std::vector<Completion> done(32);
    for (int i = 0; i < 16; ++i) {
      iovec in{src + i * ss, ss};
      iovec out{i % 2 == 0 ? dst + i * ss : unreg.data() + i * ss, ss};
      Request q;
      q.key = k.handle;
      q.format = f;
      q.start_sector = static_cast<uint64_t>(i) * (ss / 512);
      q.src = &in;
      q.src_count = 1;
      q.dst = &out;
      q.dst_count = 1;
      q.post_completion = true;
      ASSERT_TRUE(e->submit(q).ok());
    }
    ASSERT_TRUE(e->drain().ok());
    EXPECT_EQ(e->poll(done.data(), done.size()), 16u);
    for (int i = 0; i < 16; ++i) {
      std::vector<uint8_t> one(plain.begin() + i * ss, plain.begin() + (i + 1) * ss);
      const auto w = reference(k.ref, Direction::encrypt, f, static_cast<uint64_t>(i) * (ss / 512), one);
      const uint8_t* got = i % 2 == 0 ? dst + i * ss : unreg.data() + i * ss;
      EXPECT_EQ(0, std::memcmp(got, w.data(), ss)) << "request " << i;
    }
    ASSERT_TRUE(e->unregister_memory(reg.data()).ok());
  }
}

// An engine destroyed with ranges still registered unpins them: the same range can be
// pinned again afterwards (the driver refuses a range that is still registered).
TEST(RegisteredMemoryCuda, DestroyUnregistersWhatIsLeft) {
  std::vector<uint8_t> buf(1 << 20);
  {
    auto e = cuda_engine_or_skip(small_config());
    if (e == nullptr) GTEST_SKIP() << "no usable GPU";
    ASSERT_TRUE(e->register_memory(buf.data(), buf.size()).ok());
    EXPECT_EQ(cudaHostRegister(buf.data(), buf.size(), cudaHostRegisterDefault),
              cudaErrorHostMemoryAlreadyRegistered);
    (void)cudaGetLastError();
  }
  ASSERT_EQ(cudaHostRegister(buf.data(), buf.size(), cudaHostRegisterDefault), cudaSuccess);
  EXPECT_EQ(cudaHostUnregister(buf.data()), cudaSuccess);
}

TEST(DeviceResidentCuda, KernelOnlyPathMatchesReference) {
  EngineConfig c = small_config();
  c.slot_bytes = 256 * 1024;
  auto e = cuda_engine_or_skip(c);
  if (e == nullptr) GTEST_SKIP() << "no usable GPU";
  Watchdog dog(std::chrono::seconds(120), "KernelOnlyPathMatchesReference");
  TestKey k = add_test_key(*e, 32, 11);
  const std::size_t total = 2 * 256 * 1024 + 8 * 4096;
  uint8_t* d_in = nullptr;
  uint8_t* d_out = nullptr;
  ASSERT_EQ(cudaMalloc(&d_in, total), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&d_out, total + 64), cudaSuccess);
  for (uint32_t ss : {512u, 4096u}) {
    const SectorFormat f{ss, IvMode::plain64be, false};
    const auto plain = bytes_of(total, 20 + ss);
    ASSERT_EQ(cudaMemcpy(d_in, plain.data(), total, cudaMemcpyHostToDevice), cudaSuccess);
    ASSERT_EQ(cudaMemset(d_out, 0xee, total + 64), cudaSuccess);
    // Source in two segments of whole sectors, destination in one.
    iovec sv[2] = {{d_in, 3 * ss}, {d_in + 3 * ss, total - 3 * ss}};
    iovec dv{d_out, total};
    Request r;
    r.key = k.handle;
    r.format = f;
    r.start_sector = 5000;
    r.src = sv;
    r.src_count = 2;
    r.dst = &dv;
    r.dst_count = 1;
    r.memory = MemoryKind::device;
    r.post_completion = true;
    r.flush = true;
    ASSERT_TRUE(e->submit(r).ok());
    Completion comp;
    ASSERT_EQ(e->wait_completions(&comp, 1, 30'000'000), 1u);
    ASSERT_TRUE(comp.status.ok()) << comp.status.message();
    std::vector<uint8_t> got(total + 64);
    ASSERT_EQ(cudaMemcpy(got.data(), d_out, total + 64, cudaMemcpyDeviceToHost), cudaSuccess);
    const auto want = reference(k.ref, Direction::encrypt, f, 5000, plain);
    EXPECT_EQ(0, std::memcmp(got.data(), want.data(), total));
    for (std::size_t i = total; i < total + 64; ++i) ASSERT_EQ(got[i], 0xee) << "guard " << i;
    // In place, back to the plaintext.
    iovec io{d_out, total};
    r.dir = Direction::decrypt;
    r.src = &io;
    r.src_count = 1;
    r.dst = nullptr;
    r.dst_count = 0;
    ASSERT_TRUE(e->submit(r).ok());
    ASSERT_EQ(e->wait_completions(&comp, 1, 30'000'000), 1u);
    ASSERT_TRUE(comp.status.ok()) << comp.status.message();
    ASSERT_EQ(cudaMemcpy(got.data(), d_out, total, cudaMemcpyDeviceToHost), cudaSuccess);
    EXPECT_EQ(0, std::memcmp(got.data(), plain.data(), total));
  }
  EXPECT_EQ(e->stats().device_requests, 4u);
  // Host memory passed as device memory, misaligned or split sectors: refused up front.
  std::vector<uint8_t> host(8192);
  iovec hv{host.data(), host.size()};
  Request bad;
  bad.key = k.handle;
  bad.src = &hv;
  bad.src_count = 1;
  bad.memory = MemoryKind::device;
  Status s = e->submit(bad);
  EXPECT_EQ(s.code(), Errc::invalid_buffer) << s.message();
  iovec mis{d_in + 8, 4096};
  bad.src = &mis;
  s = e->submit(bad);
  EXPECT_EQ(s.code(), Errc::invalid_buffer) << s.message();
  iovec split[2] = {{d_in, 700}, {d_in + 704, 324}};
  bad.src = split;
  bad.src_count = 2;
  s = e->submit(bad);
  EXPECT_EQ(s.code(), Errc::invalid_length) << s.message();
  cudaFree(d_in);
  cudaFree(d_out);
}
#endif

}  // namespace
}  // namespace sectorcrypt::testing
