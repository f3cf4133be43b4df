// The engine over several GPUs (EngineConfig::gpu_ordinals). A one-GPU machine tests the
// multi-device path by opening GPU 0 twice (the deliberate test mode: two devices, each
// with its own slots, streams and key table); without a GPU these tests skip, and the
// routing itself is tested with CPU stand-ins in multi_device_backend_test.cc.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "tests/engine/engine_test_support.h"

namespace sectorcrypt::testing {
namespace {

EngineConfig two_devices_on_gpu0(BackendKind kind) {
  EngineConfig c = small_config();
  c.backend = kind;
  c.slot_bytes = 256 * 1024;
  c.slot_count = 5;  // odd: device 0 owns 3 slots, device 1 owns 2
  c.gpu_ordinals = {0, 0};
  c.hybrid_min_gpu_bytes = 0;
  c.hybrid_gpu_percent = 100;
  return c;
}

TEST(EngineMultiGpu, WithoutAGpuItSaysWhy) {
  EngineConfig c = two_devices_on_gpu0(BackendKind::cuda);
  std::unique_ptr<Engine> e;
  const Status s = Engine::create(c, &e);
  if (s.ok()) GTEST_SKIP() << "a GPU is usable here: " << e->backend_detail();
  EXPECT_EQ(s.code(), Errc::unavailable);
  EXPECT_NE(std::strstr(s.message(), "backend cuda asked for"), nullptr) << s.message();
  // auto falls back to the CPU, as with one GPU.
  c.backend = BackendKind::automatic;
  ASSERT_TRUE(Engine::create(c, &e).ok());
  EXPECT_EQ(e->backend(), BackendKind::cpu);
  // Every usable GPU (gpu_ordinal -1): none here, so cuda says why and auto takes the CPU.
  c.gpu_ordinals.clear();
  c.gpu_ordinal = -1;
  ASSERT_TRUE(Engine::create(c, &e).ok());
  EXPECT_EQ(e->backend(), BackendKind::cpu);
  c.backend = BackendKind::cuda;
  const Status all = Engine::create(c, &e);
  EXPECT_EQ(all.code(), Errc::unavailable);
  EXPECT_NE(std::strstr(all.message(), "no GPU is usable"), nullptr) << all.message();
}

TEST(EngineMultiGpu, BadListsAreRefusedNamingTheEntry) {
  EngineConfig c = small_config();
  c.gpu_ordinals = {0, -2};
  std::unique_ptr<Engine> e;
  Status s = Engine::create(c, &e);
  EXPECT_EQ(s.code(), Errc::invalid_length);
  EXPECT_NE(std::strstr(s.message(), "gpu_ordinals[1] = -2"), nullptr) << s.message();
  c.gpu_ordinals.assign(kMaxGpus + 1, 0);
  s = Engine::create(c, &e);
  EXPECT_EQ(s.code(), Errc::invalid_length);
  EXPECT_NE(std::strstr(s.message(), "at most 16"), nullptr) << s.message();
  c.gpu_ordinals.clear();
  c.gpu_ordinal = -2;
  EXPECT_EQ(Engine::create(c, &e).code(), Errc::invalid_length);
}

// Needs a GPU from here on.
std::unique_ptr<Engine> open_or_skip(const EngineConfig& c, Status* why) {
  std::unique_ptr<Engine> e;
  *why = Engine::create(c, &e);
  return e;
}

TEST(EngineMultiGpu, AnUnusableOrdinalIsNamed) {
  EngineConfig c = two_devices_on_gpu0(BackendKind::cuda);
  c.gpu_ordinals = {0, 999};
  std::unique_ptr<Engine> e;
  const Status s = Engine::create(c, &e);
  ASSERT_FALSE(s.ok());
  if (std::strstr(s.message(), "no GPU is usable") != nullptr) GTEST_SKIP() << s.message();
  EXPECT_NE(std::strstr(s.message(), "GPU 999"), nullptr) << s.message();
  c.gpu_ordinals = {0, 0, 0, 0, 0, 0};  // six devices, five slots
  EXPECT_EQ(Engine::create(c, &e).code(), Errc::invalid_length);
}

TEST(EngineMultiGpu, GpuZeroTwiceMatchesTheReference) {
  for (BackendKind kind : {BackendKind::cuda, BackendKind::hybrid}) {
    Status why;
    auto e = open_or_skip(two_devices_on_gpu0(kind), &why);
    if (!why.ok()) GTEST_SKIP() << "no GPU: " << why.message();
    const std::string detail = e->backend_detail();
    EXPECT_NE(detail.find("2 devices"), std::string::npos) << detail;
    EXPECT_EQ(e->config().gpu_ordinals, (std::vector<int>{0, 0}));
    Watchdog dog(std::chrono::seconds(120), "GpuZeroTwiceMatchesTheReference");
    // Keys reach both devices: batches on either decrypt what the other encrypted.
    TestKey k1 = add_test_key(*e, 64, 901);
    TestKey k2 = add_test_key(*e, 32, 902);
    const SectorFormat f{4096, IvMode::plain64, false};
    const std::size_t total = 20 * 256 * 1024;  // 20 batches over 5 slots
    const auto plain = bytes_of(total, 903);
    for (const TestKey* k : {&k1, &k2}) {
      std::vector<uint8_t> out(total), back(total);
      ASSERT_TRUE(e->crypt_sync(k->handle, Direction::encrypt, f, 5, plain.data(), out.data(),
                                total).ok());
      EXPECT_EQ(out, reference(k->ref, Direction::encrypt, f, 5, plain)) << detail;
      ASSERT_TRUE(e->crypt_sync(k->handle, Direction::decrypt, f, 5, out.data(), back.data(),
                                total).ok());
      EXPECT_EQ(back, plain);
    }
    // Registered memory: registered once for both (cudaHostRegisterPortable), in place.
    std::vector<uint8_t> buf = plain;
    ASSERT_TRUE(e->register_memory(buf.data(), buf.size()).ok());
    ASSERT_TRUE(e->crypt_sync(k1.handle, Direction::encrypt, f, 5, buf.data(), buf.data(),
                              total).ok());
    EXPECT_EQ(buf, reference(k1.ref, Direction::encrypt, f, 5, plain));
    ASSERT_TRUE(e->unregister_memory(buf.data()).ok());
    EXPECT_TRUE(e->remove_key(k1.handle).ok());
    EXPECT_TRUE(e->remove_key(k2.handle).ok());
    std::printf("%s: %s\n", backend_kind_name(kind), detail.c_str());
  }
}

}  // namespace
}  // namespace sectorcrypt::testing
