// Engine data path: results equal the reference for every format, key size, direction,
// scatter/gather shape, split and coalesced batch, the zero-copy and fd paths; ordering;
// polled completions; statistics.
#include <sys/mman.h>
#include <unistd.h>

#include "tests/engine/engine_test_support.h"

namespace sectorcrypt::testing {
namespace {

TEST(EngineBasic, AutoResolvesAndReportsMemory) {
  EngineConfig c = small_config();
  c.backend = BackendKind::automatic;
  auto e = make_engine(c);
  ASSERT_TRUE(e);
  EXPECT_NE(e->backend(), BackendKind::automatic);
  EXPECT_STRNE(e->backend_detail(), "");
  EXPECT_EQ(e->memory_locked(), e->stats().memory_locked);
  EXPECT_STRNE(e->memory_detail(), "");
  EXPECT_EQ(e->config().request_capacity, 8 * c.slot_count);
}

TEST(EngineBasic, SyncMatchesReferenceForEveryFormat) {
  auto e = make_engine(small_config());
  ASSERT_TRUE(e);
  const std::size_t kBytes = 3 * 64 * 1024 + 8192;  // split over four slots
  uint64_t seed = 1;
  for (std::size_t klen : {32u, 64u}) {
    TestKey k = add_test_key(*e, klen, seed++);
    for (uint32_t ss : {512u, 1024u, 2048u, 4096u}) {
      for (IvMode mode : {IvMode::plain64, IvMode::plain, IvMode::plain64be}) {
        for (bool large : {false, true}) {
          SectorFormat f{ss, mode, large};
          const uint64_t start = large ? (ss / 512) * 12345 : 0xfffffffffff0ull;
          const auto plain = bytes_of(kBytes, seed++);
          std::vector<uint8_t> ct(kBytes), back(kBytes);
          Status s = e->crypt_sync(k.handle, Direction::encrypt, f, start, plain.data(),
                                   ct.data(), kBytes);
          ASSERT_TRUE(s.ok()) << s.message();
          ASSERT_EQ(ct, reference(k.ref, Direction::encrypt, f, start, plain))
              << "ss " << ss << " mode " << iv_mode_name(mode) << " large " << large;
          s = e->crypt_sync(k.handle, Direction::decrypt, f, start, ct.data(), back.data(), kBytes);
          ASSERT_TRUE(s.ok()) << s.message();
          ASSERT_EQ(back, plain);
        }
      }
    }
  }
}

TEST(EngineBasic, InPlaceSync) {
  auto e = make_engine(small_config());
  TestKey k = add_test_key(*e, 64, 7);
  SectorFormat f{4096, IvMode::plain64, false};
  auto buf = bytes_of(100 * 1024 / 4096 * 4096, 8);
  const auto want = reference(k.ref, Direction::encrypt, f, 40, buf);
  ASSERT_TRUE(e->crypt_sync(k.handle, Direction::encrypt, f, 40, buf.data(), buf.data(), buf.size()).ok());
  EXPECT_EQ(buf, want);
}

// Segment boundaries that cut sectors: those sectors go through the slot, the rest are
// processed in the caller's memory; the result must not care.
TEST(EngineBasic, ScatterGatherWithSectorsSplitAcrossSegments) {
  auto e = make_engine(small_config());
  TestKey k = add_test_key(*e, 32, 11);
  for (uint32_t ss : {512u, 4096u}) {
    SectorFormat f{ss, IvMode::plain64, false};
    const std::size_t total = 40 * ss;
    const auto plain = bytes_of(total, ss);
    const auto want = reference(k.ref, Direction::encrypt, f, 99, plain);
    for (bool in_place : {false, true}) {
      // Source cut at odd places; destination cut elsewhere.
      std::vector<uint8_t> src = plain, dst(total, 0xee);
      const std::size_t scuts[] = {0, 100, 3 * ss + 17, 9 * ss, 30 * ss - 1, total};
      const std::size_t dcuts[] = {0, ss / 2, 20 * ss, 20 * ss + 5, total};
      std::vector<iovec> sv, dv;
      for (std::size_t i = 0; i + 1 < std::size(scuts); ++i) {
        sv.push_back({src.data() + scuts[i], scuts[i + 1] - scuts[i]});
      }
      for (std::size_t i = 0; i + 1 < std::size(dcuts); ++i) {
        dv.push_back({dst.data() + dcuts[i], dcuts[i + 1] - dcuts[i]});
      }
      Request r;
      r.key = k.handle;
      r.format = f;
      r.start_sector = 99;
      r.src = sv.data();
      r.src_count = sv.size();
      if (!in_place) {
        r.dst = dv.data();
        r.dst_count = dv.size();
      }
      r.post_completion = true;
      r.flush = true;
      ASSERT_TRUE(e->submit(r).ok());
      Completion c;
      ASSERT_EQ(e->wait_completions(&c, 1, 10'000'000), 1u);
      ASSERT_TRUE(c.status.ok()) << c.status.message();
      EXPECT_EQ(in_place ? src : dst, want) << "ss " << ss << " in_place " << in_place;
      if (!in_place) {
        EXPECT_EQ(src, plain);  // source untouched
      }
    }
  }
}

// A stream of mixed keys, directions, formats, sizes, in place or not, from one producer:
// every result equals the reference and completions come in submission order.
TEST(EngineBasic, MixedStreamInOrder) {
  EngineConfig c = small_config();
  c.flush_deadline_us = 100;
  auto e = make_engine(c);
  std::vector<TestKey> keys;
  for (int i = 0; i < 3; ++i) keys.push_back(add_test_key(*e, i == 1 ? 32 : 64, 100 + i));
  std::mt19937_64 g(5);
  const std::size_t n = 120;
  struct Job {
    std::vector<uint8_t> in, out, want;
    std::vector<iovec> sv, dv;
  };
  std::vector<Job> jobs(n);
  CompletionLog log(n);
  std::vector<CompletionLog::Ctx> ctx(n);
  const SectorFormat formats[] = {{512, IvMode::plain64, false}, {4096, IvMode::plain64, false},
                                  {1024, IvMode::plain, false}, {2048, IvMode::plain64be, true}};
  for (std::size_t i = 0; i < n; ++i) {
    const SectorFormat f = formats[g() % 4];
    const std::size_t sectors = g() % 5 == 0 ? 1 + g() % 100 : 1 + g() % 4;  // some split
    const uint64_t start = (g() % 100000) * (f.sector_size / 512);
    const Direction dir = g() % 2 ? Direction::encrypt : Direction::decrypt;
    const TestKey& k = keys[g() % keys.size()];
    Job& j = jobs[i];
    j.in = bytes_of(sectors * f.sector_size, 1000 + i);
    j.want = reference(k.ref, dir, f, start, j.in);
    const bool in_place = g() % 3 == 0;
    j.out.assign(j.in.size(), 0);
    j.sv.push_back({j.in.data(), j.in.size()});
    if (!in_place) j.dv.push_back({j.out.data(), j.out.size()});
    Request r;
    r.key = k.handle;
    r.dir = dir;
    r.format = f;
    r.start_sector = start;
    r.src = j.sv.data();
    r.src_count = 1;
    r.dst = in_place ? nullptr : j.dv.data();
    r.dst_count = in_place ? 0 : 1;
    ctx[i] = {&log, i};
    r.callback = &CompletionLog::on_done;
    r.user_context = &ctx[i];
    if (in_place) j.out.clear();
    ASSERT_TRUE(e->submit(r).ok());
  }
  ASSERT_TRUE(e->drain().ok());
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_EQ(log.count[i].load(), 1) << i;
    ASSERT_EQ(log.codes[i], Errc::ok) << i;
    const auto& got = jobs[i].out.empty() ? jobs[i].in : jobs[i].out;
    ASSERT_EQ(got, jobs[i].want) << "request " << i;
  }
  ASSERT_EQ(log.order.size(), n);
  for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(log.order[i], i) << "completion order";
  const EngineStats st = e->stats();
  EXPECT_EQ(st.requests, n);
  EXPECT_EQ(st.requests_failed, 0u);
  EXPECT_GT(st.batches, 0u);
  EXPECT_GT(st.latency.p99_ns(), 0u);
  EXPECT_GE(st.latency.p99_ns(), st.latency.p50_ns());
}

// Small requests share one batch; the batch leaves at the deadline, not before and not
// much after.
TEST(EngineBasic, CoalescesSmallRequestsAndFlushesAtDeadline) {
  EngineConfig c = small_config();
  c.flush_deadline_us = 100'000;  // 100 ms: submitting 8 requests takes far less
  c.idle_flush = false;  // hold even an idle pipeline's batch until the deadline
  auto e = make_engine(c);
  TestKey k = add_test_key(*e, 32, 3);
  SectorFormat f{4096, IvMode::plain64, false};
  std::vector<std::vector<uint8_t>> bufs;
  std::vector<iovec> v(8);
  for (int i = 0; i < 8; ++i) bufs.push_back(bytes_of(4096, 50 + i));
  const auto before = e->stats();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 8; ++i) {
    v[i] = {bufs[i].data(), 4096};
    Request r;
    r.key = k.handle;
    r.format = f;
    r.start_sector = 8 * i;
    r.src = &v[i];
    r.src_count = 1;
    r.post_completion = true;
    r.user_context = reinterpret_cast<void*>(static_cast<uintptr_t>(i));
    ASSERT_TRUE(e->submit(r).ok());
  }
  Completion got[8];
  std::size_t n = 0;
  while (n < 8) {
    const std::size_t m = e->wait_completions(got + n, 8 - n, 5'000'000);
    ASSERT_GT(m, 0u) << "the partly filled batch was never flushed";
    n += m;
  }
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, std::chrono::milliseconds(90));
  EXPECT_LT(waited, std::chrono::seconds(3));
  const auto after = e->stats();
  EXPECT_EQ(after.batches - before.batches, 1u);
  EXPECT_EQ(after.parts - before.parts, 8u);
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(got[i].user_context, reinterpret_cast<void*>(static_cast<uintptr_t>(i)));
    EXPECT_TRUE(got[i].status.ok());
    EXPECT_EQ(got[i].bytes, 4096u);
    EXPECT_EQ(bufs[i], reference(k.ref, Direction::encrypt, f, 8 * i, bytes_of(4096, 50 + i)));
  }
}

TEST(EngineBasic, FlushFlagAndDrainSkipTheDeadline) {
  EngineConfig c = small_config();
  c.flush_deadline_us = 30'000'000;  // 30 s: only flush or drain can send it in time
  c.idle_flush = false;  // hold even an idle pipeline's batch until the deadline
  auto e = make_engine(c);
  TestKey k = add_test_key(*e, 32, 4);
  SectorFormat f;
  auto buf = bytes_of(512, 1);
  iovec v{buf.data(), buf.size()};
  Request r;
  r.key = k.handle;
  r.format = f;
  r.src = &v;
  r.src_count = 1;
  r.post_completion = true;
  r.flush = true;
  Watchdog dog(std::chrono::seconds(20), "flush/drain");
  ASSERT_TRUE(e->submit(r).ok());
  Completion comp;
  ASSERT_EQ(e->wait_completions(&comp, 1, 10'000'000), 1u);
  r.flush = false;
  ASSERT_TRUE(e->submit(r).ok());
  ASSERT_TRUE(e->drain().ok());
  ASSERT_EQ(e->poll(&comp, 1), 1u);
  EXPECT_TRUE(comp.status.ok());
}

TEST(EngineBasic, LargeRequestSplitsAndCompletesOnce) {
  EngineConfig c = small_config();
  c.slot_count = 2;
  auto e = make_engine(c);
  TestKey k = add_test_key(*e, 64, 9);
  SectorFormat f{512, IvMode::plain64, false};
  const std::size_t total = 5 * 64 * 1024 + 512 * 3;  // 6 batches over 2 slots
  const auto plain = bytes_of(total, 77);
  std::vector<uint8_t> out(total);
  iovec s{const_cast<uint8_t*>(plain.data()), total}, d{out.data(), total};
  CompletionLog log(1);
  CompletionLog::Ctx ctx{&log, 0};
  Request r;
  r.key = k.handle;
  r.format = f;
  r.start_sector = 5;
  r.src = &s;
  r.src_count = 1;
  r.dst = &d;
  r.dst_count = 1;
  r.callback = &CompletionLog::on_done;
  r.user_context = &ctx;
  const auto before = e->stats();
  ASSERT_TRUE(e->submit(r).ok());
  ASSERT_TRUE(e->drain().ok());
  EXPECT_EQ(log.count[0].load(), 1);
  EXPECT_EQ(log.codes[0], Errc::ok);
  // One batch per slot-full, except that the last two slot-fulls (one per thread) may be
  // cut into pieces of at least a quarter slot (part_length(), the guided tail).
  const uint64_t made = e->stats().batches - before.batches;
  EXPECT_GT(made, 6u);  // two threads, nothing queued behind it: the tail was cut
  EXPECT_LE(made, 4u + 2u * 4u);
  EXPECT_EQ(out, reference(k.ref, Direction::encrypt, f, 5, plain));
}

TEST(EngineBasic, ZeroCopySlots) {
  auto e = make_engine(small_config());
  TestKey k = add_test_key(*e, 32, 21);
  SectorFormat f{4096, IvMode::plain64, false};
  SlotHandle slot;
  ASSERT_TRUE(e->acquire_slot(&slot).ok());
  ASSERT_NE(slot.data, nullptr);
  ASSERT_EQ(slot.capacity, 64u * 1024);
  const auto plain = bytes_of(slot.capacity, 5);
  std::memcpy(slot.data, plain.data(), plain.size());
  SlotRequest r;
  r.key = k.handle;
  r.format = f;
  r.start_sector = 64;
  r.bytes = slot.capacity;
  r.post_completion = true;
  ASSERT_TRUE(e->submit_slot(slot, r).ok());
  // Still lent and running: neither a second submit nor a release is accepted.
  Status s = e->submit_slot(slot, r);
  EXPECT_TRUE(s.code() == Errc::invalid_buffer || s.code() == Errc::would_block) << s.message();
  Completion c;
  ASSERT_EQ(e->wait_completions(&c, 1, 10'000'000), 1u);
  ASSERT_TRUE(c.status.ok()) << c.status.message();
  EXPECT_EQ(c.slot, slot.index);
  EXPECT_EQ(0, std::memcmp(slot.data, reference(k.ref, Direction::encrypt, f, 64, plain).data(),
                           plain.size()));
  // Decrypt in the same slot, then give it back.
  r.dir = Direction::decrypt;
  r.post_completion = false;
  ASSERT_TRUE(e->submit_slot(slot, r).ok());
  ASSERT_TRUE(e->drain().ok());
  EXPECT_EQ(0, std::memcmp(slot.data, plain.data(), plain.size()));
  ASSERT_TRUE(e->release_slot(slot).ok());
  EXPECT_EQ(e->release_slot(slot).code(), Errc::invalid_buffer);
  EXPECT_EQ(e->submit_slot(slot, r).code(), Errc::invalid_buffer);
  // All slots can be lent at once; then try_acquire says "full".
  std::vector<SlotHandle> all(4);
  for (auto& h : all) ASSERT_TRUE(e->try_acquire_slot(&h).ok());
  SlotHandle extra;
  EXPECT_EQ(e->try_acquire_slot(&extra).code(), Errc::would_block);
  for (auto& h : all) ASSERT_TRUE(e->release_slot(h).ok());
}

TEST(EngineBasic, PolledCompletionsInOrder) {
  auto e = make_engine(small_config());
  TestKey k = add_test_key(*e, 32, 31);
  SectorFormat f;
  const int n = 20;
  std::vector<std::vector<uint8_t>> bufs(n);
  std::vector<iovec> v(n);
  for (int i = 0; i < n; ++i) {
    bufs[i] = bytes_of(512 * (1 + i % 7), i);
    v[i] = {bufs[i].data(), bufs[i].size()};
    Request r;
    r.key = k.handle;
    r.format = f;
    r.src = &v[i];
    r.src_count = 1;
    r.post_completion = true;
    r.user_context = &bufs[i];
    ASSERT_TRUE(e->submit(r).ok());
  }
  ASSERT_TRUE(e->drain().ok());
  Completion c[32];
  ASSERT_EQ(e->poll(c, 32), static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(c[i].user_context, &bufs[i]);
    EXPECT_EQ(c[i].bytes, bufs[i].size());
  }
  EXPECT_EQ(e->poll(c, 32), 0u);
}

TEST(EngineBasic, FileDescriptorRange) {
  EngineConfig c = small_config();
  auto e = make_engine(c);
  TestKey k = add_test_key(*e, 64, 41);
  SectorFormat f{4096, IvMode::plain64, false};
  const std::size_t total = 300 * 1024;  // not a multiple of the slot size
  const auto plain = bytes_of(total, 42);
  const int in = memfd_create("engine-in", 0), out = memfd_create("engine-out", 0);
  ASSERT_GE(in, 0);
  ASSERT_GE(out, 0);
  ASSERT_EQ(pwrite(in, plain.data(), total, 4096), static_cast<ssize_t>(total));
  ASSERT_TRUE(e->crypt_fd(k.handle, Direction::encrypt, f, 8, in, 4096, out, 0, total).ok());
  std::vector<uint8_t> got(total);
  ASSERT_EQ(pread(out, got.data(), total, 0), static_cast<ssize_t>(total));
  EXPECT_EQ(got, reference(k.ref, Direction::encrypt, f, 8, plain));
  // In place on one descriptor, back to the plaintext.
  ASSERT_TRUE(e->crypt_fd(k.handle, Direction::decrypt, f, 8, out, 0, out, 0, total).ok());
  ASSERT_EQ(pread(out, got.data(), total, 0), static_cast<ssize_t>(total));
  EXPECT_EQ(got, plain);
  // Overlapping ranges of one file (other than in place) are refused.
  EXPECT_EQ(e->crypt_fd(k.handle, Direction::encrypt, f, 8, out, 0, out, 4096, total).code(),
            Errc::invalid_buffer);
  // Short input.
  EXPECT_EQ(e->crypt_fd(k.handle, Direction::encrypt, f, 8, in, 8192, out, 0, total).code(),
            Errc::invalid_length);
  close(in);
  close(out);
}

TEST(EngineBasic, KeysRemoveRefusedWhileInUseAndStaleHandlesRefused) {
  EngineConfig c = small_config();
  c.key_capacity = 2;
  c.flush_deadline_us = 30'000'000;
  c.idle_flush = false;  // hold even an idle pipeline's batch until the deadline
  auto e = make_engine(c);
  TestKey a = add_test_key(*e, 32, 1);
  TestKey b = add_test_key(*e, 64, 2);
  KeyHandle third;
  const auto raw = key_of(32, 3);
  EXPECT_EQ(e->add_key(raw.data(), raw.size(), {}, &third).code(), Errc::resource_exhausted);
  // Held by a queued request (the deadline keeps it waiting).
  auto buf = bytes_of(512, 1);
  iovec v{buf.data(), 512};
  Request r;
  r.key = a.handle;
  r.src = &v;
  r.src_count = 1;
  ASSERT_TRUE(e->submit(r).ok());
  EXPECT_EQ(e->remove_key(a.handle).code(), Errc::would_block);
  ASSERT_TRUE(e->drain().ok());
  ASSERT_TRUE(e->remove_key(a.handle).ok());
  EXPECT_EQ(e->remove_key(a.handle).code(), Errc::invalid_key);
  EXPECT_EQ(e->submit(r).code(), Errc::invalid_key);  // stale
  // The entry is reused with a new handle; the old one stays refused.
  KeyHandle again;
  ASSERT_TRUE(e->add_key(raw.data(), raw.size(), {}, &again).ok());
  EXPECT_NE(again, a.handle);
  EXPECT_EQ(e->submit(r).code(), Errc::invalid_key);
  r.key = b.handle;
  r.flush = true;
  EXPECT_TRUE(e->submit(r).ok());
  // Equal halves are refused unless asked for.
  std::vector<uint8_t> eq(32, 0x11);
  KeyHandle h;
  EXPECT_TRUE(e->remove_key(again).ok());
  EXPECT_EQ(e->add_key(eq.data(), eq.size(), {}, &h).code(), Errc::invalid_key);
  EXPECT_TRUE(e->add_key(eq.data(), eq.size(), KeyOptions{true}, &h).ok());
  EXPECT_EQ(e->add_key(eq.data(), 48, {}, &h).code(), Errc::invalid_key);
  ASSERT_TRUE(e->drain().ok());  // `buf` dies before the engine does
}

// Where a GPU is usable: the CUDA backend's output equals the reference (and so the
// CPU backend's) for mixed formats, keys, scatter/gather and split requests, with every
// GPU AES the engine offers.
void expect_cuda_matches_reference(GpuAes aes, const char* name) {
  EngineConfig c = small_config();
  c.backend = BackendKind::cuda;
  c.gpu_aes = aes;
  std::unique_ptr<Engine> e;
  const Status cs = Engine::create(c, &e);
  if (!cs.ok()) GTEST_SKIP() << cs.message();
  ASSERT_EQ(e->backend(), BackendKind::cuda);
  EXPECT_NE(std::strstr(e->backend_detail(), name), nullptr) << e->backend_detail();
  uint64_t seed = 500;
  for (std::size_t klen : {32u, 64u}) {
    TestKey k = add_test_key(*e, klen, seed++);
    for (uint32_t ss : {512u, 4096u}) {
      for (IvMode mode : {IvMode::plain64, IvMode::plain, IvMode::plain64be}) {
        const SectorFormat f{ss, mode, false};
        const std::size_t total = 3 * 64 * 1024 + 4 * ss;
        const auto plain = bytes_of(total, seed++);
        std::vector<uint8_t> out(total);
        // Two source segments that cut a sector, one destination.
        std::vector<uint8_t> src = plain;
        iovec sv[2] = {{src.data(), ss + 100}, {src.data() + ss + 100, total - ss - 100}};
        iovec dv{out.data(), total};
        Request r;
        r.key = k.handle;
        r.format = f;
        r.start_sector = 1234 * (ss / 512);
        r.src = sv;
        r.src_count = 2;
        r.dst = &dv;
        r.dst_count = 1;
        r.post_completion = true;
        r.flush = true;
        ASSERT_TRUE(e->submit(r).ok());
        Completion comp;
        ASSERT_EQ(e->wait_completions(&comp, 1, 30'000'000), 1u);
        ASSERT_TRUE(comp.status.ok()) << comp.status.message();
        EXPECT_EQ(out, reference(k.ref, Direction::encrypt, f, r.start_sector, plain));
        std::vector<uint8_t> back(total);
        ASSERT_TRUE(e->crypt_sync(k.handle, Direction::decrypt, f, r.start_sector, out.data(),
                                  back.data(), total).ok());
        EXPECT_EQ(back, plain);
      }
    }
  }
}

TEST(EngineCuda, MatchesReference) {
  for (const auto& [aes, name] : {std::pair{GpuAes::constant_time, "bitsliced32"},
                                  std::pair{GpuAes::table, "table"},
                                  std::pair{GpuAes::fixsliced, "constant_time"}}) {
    SCOPED_TRACE(name);
    expect_cuda_matches_reference(aes, name);
    if (HasFatalFailure() || IsSkipped()) return;
  }
}

TEST(EngineBasic, CudaBackendUnavailableSaysWhy) {
  EngineConfig c = small_config();
  c.backend = BackendKind::cuda;
  std::unique_ptr<Engine> e;
  const Status s = Engine::create(c, &e);
  if (s.ok()) GTEST_SKIP() << "a GPU is usable here: " << e->backend_detail();
  EXPECT_EQ(s.code(), Errc::unavailable);
  EXPECT_NE(std::strstr(s.message(), "no GPU is usable"), nullptr) << s.message();
  EXPECT_EQ(e, nullptr);
}

}  // namespace
}  // namespace sectorcrypt::testing
