// The C API (<sectorcrypt.h>): defaults, error codes and messages, would-block distinct
// from invalid, callbacks and poll, the known answer, shutdown, versions.
#include <sectorcrypt.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/gpu_devices.h"
#include "host/kat_vectors.h"
#include "tests/test_support.h"

namespace {

struct EngineDeleter {
  void operator()(sectorcrypt_engine* e) const { sectorcrypt_destroy(e); }
};
using EnginePtr = std::unique_ptr<sectorcrypt_engine, EngineDeleter>;

EnginePtr make_cpu_engine(sectorcrypt_config cfg) {
  cfg.backend = SECTORCRYPT_BACKEND_CPU;
  sectorcrypt_engine* e = nullptr;
  EXPECT_EQ(sectorcrypt_create(&cfg, &e), SECTORCRYPT_OK) << sectorcrypt_last_error();
  return EnginePtr(e);
}

EnginePtr make_cpu_engine() {
  sectorcrypt_config cfg;
  sectorcrypt_config_init(&cfg);
  cfg.threads = 2;
  return make_cpu_engine(cfg);
}

sectorcrypt_key add_random_key(sectorcrypt_engine* e, std::size_t len) {
  const auto key = sectorcrypt::testing::random_xts_key(len);
  sectorcrypt_key k = 0;
  EXPECT_EQ(sectorcrypt_add_key(e, key.data(), key.size(), 0, &k), SECTORCRYPT_OK);
  return k;
}

TEST(CApi, DefaultsAndCreateErrors) {
  sectorcrypt_config cfg;
  sectorcrypt_config_init(&cfg);
  EXPECT_EQ(cfg.backend, SECTORCRYPT_BACKEND_AUTO);
  EXPECT_GE(cfg.slot_count, 1u);
  EXPECT_EQ(cfg.slot_bytes % 4096, 0u);
  EXPECT_EQ(cfg.idle_spin_us, 50u);  // EngineConfig's default
  EXPECT_EQ(cfg.cpu_fallback, 0);
  EXPECT_EQ(cfg.idle_flush, 1);
  EXPECT_EQ(cfg.gpu_aes, SECTORCRYPT_GPU_AES_CONSTANT_TIME);
  EXPECT_EQ(cfg.max_parts_per_batch, 0u);
  EXPECT_EQ(cfg.size, sizeof cfg);
  EXPECT_EQ(sectorcrypt_create(&cfg, nullptr), SECTORCRYPT_EINVAL);

  sectorcrypt_engine* e = nullptr;
  cfg.backend = 7;
  EXPECT_EQ(sectorcrypt_create(&cfg, &e), SECTORCRYPT_EINVAL);
  EXPECT_EQ(e, nullptr);
  cfg.backend = SECTORCRYPT_BACKEND_CPU;
  cfg.gpu_aes = 2;
  EXPECT_EQ(sectorcrypt_create(&cfg, &e), SECTORCRYPT_EINVAL);
  EXPECT_NE(std::string(sectorcrypt_last_error()).find("gpu_aes"), std::string::npos);
  cfg.gpu_aes = SECTORCRYPT_GPU_AES_CONSTANT_TIME;
  cfg.slot_bytes = 1000;  // not a multiple of 4096
  EXPECT_EQ(sectorcrypt_create(&cfg, &e), SECTORCRYPT_EINVAL_LENGTH);
  EXPECT_NE(std::string(sectorcrypt_last_error()), "");
  EXPECT_EQ(e, nullptr);

  if (!sectorcrypt::discover_gpus().usable()) {
    sectorcrypt_config_init(&cfg);
    cfg.backend = SECTORCRYPT_BACKEND_CUDA;
    EXPECT_EQ(sectorcrypt_create(&cfg, &e), SECTORCRYPT_EUNAVAILABLE);
    EXPECT_EQ(e, nullptr);
  }
  EXPECT_EQ(sectorcrypt_create(nullptr, &e), SECTORCRYPT_OK) << sectorcrypt_last_error();
  EXPECT_NE(std::string(sectorcrypt_backend_detail(e)), "");
  sectorcrypt_destroy(e);
  sectorcrypt_destroy(nullptr);  // ignored
}

// What create resolved comes back: zeros replaced by what was started, the rest as given.
TEST(CApi, GetConfigReturnsWhatCreateResolved) {
  sectorcrypt_config cfg;
  sectorcrypt_config_init(&cfg);
  cfg.backend = SECTORCRYPT_BACKEND_CPU;
  cfg.threads = 0;           // hardware concurrency
  cfg.slot_count = 3;
  cfg.slot_bytes = 8192;
  cfg.request_capacity = 0;  // 8 * slot_count
  cfg.idle_spin_us = 0;
  cfg.cpu_fallback = 1;
  cfg.idle_flush = 0;
  cfg.gpu_aes = SECTORCRYPT_GPU_AES_TABLE;
  cfg.max_parts_per_batch = 5;
  sectorcrypt_engine* raw = nullptr;
  ASSERT_EQ(sectorcrypt_create(&cfg, &raw), SECTORCRYPT_OK) << sectorcrypt_last_error();
  EnginePtr e(raw);
  sectorcrypt_config got;
  std::memset(&got, 0xff, sizeof got);
  ASSERT_EQ(sectorcrypt_get_config(e.get(), &got), SECTORCRYPT_OK);
  EXPECT_EQ(got.backend, SECTORCRYPT_BACKEND_CPU);
  EXPECT_EQ(got.threads, std::max(1u, std::thread::hardware_concurrency()));
  EXPECT_EQ(got.slot_count, 3u);
  EXPECT_EQ(got.slot_bytes, 8192u);
  EXPECT_EQ(got.request_capacity, 24u);
  EXPECT_EQ(got.key_capacity, cfg.key_capacity);
  EXPECT_EQ(got.flush_deadline_us, cfg.flush_deadline_us);
  EXPECT_EQ(got.idle_spin_us, 0u);
  EXPECT_EQ(got.cpu_fallback, 1);
  EXPECT_EQ(got.idle_flush, 0);
  EXPECT_EQ(got.gpu_aes, SECTORCRYPT_GPU_AES_TABLE);
  EXPECT_EQ(got.max_parts_per_batch, 5u);
  EXPECT_EQ(got.size, sizeof got);
  EXPECT_EQ(sectorcrypt_get_config(e.get(), nullptr), SECTORCRYPT_EINVAL);
  EXPECT_EQ(sectorcrypt_get_config(nullptr, &got), SECTORCRYPT_EINVAL);
}

TEST(CApi, StrerrorNamesEveryCode) {
  std::set<std::string> seen;
  for (int c = 0; c >= -11; --c) {
    const char* s = sectorcrypt_strerror(c);
    ASSERT_NE(s, nullptr);
    EXPECT_TRUE(seen.insert(s).second) << c;
  }
  EXPECT_NE(std::string(sectorcrypt_strerror(-12345)).find("unknown"), std::string::npos);
  EXPECT_NE(std::string(sectorcrypt_strerror(SECTORCRYPT_EWOULDBLOCK)).find("would block"),
            std::string::npos);
  char header_version[32];
  std::snprintf(header_version, sizeof header_version, "%d.%d.%d", SECTORCRYPT_VERSION_MAJOR,
                SECTORCRYPT_VERSION_MINOR, SECTORCRYPT_VERSION_PATCH);
  EXPECT_STREQ(sectorcrypt_version(), header_version);
  EXPECT_STREQ(SECTORCRYPT_VERSION_STRING, header_version);
  EXPECT_EQ(sectorcrypt_major_version(), SECTORCRYPT_VERSION_MAJOR);
  EXPECT_EQ(sectorcrypt_minor_version(), SECTORCRYPT_VERSION_MINOR);
  EXPECT_EQ(sectorcrypt_patch_version(), SECTORCRYPT_VERSION_PATCH);
  EXPECT_TRUE(sectorcrypt_check_version(SECTORCRYPT_VERSION_MAJOR, SECTORCRYPT_VERSION_MINOR));
  EXPECT_FALSE(sectorcrypt_check_version(SECTORCRYPT_VERSION_MAJOR + 1, 0));
  EXPECT_FALSE(sectorcrypt_check_version(SECTORCRYPT_VERSION_MAJOR, SECTORCRYPT_VERSION_MINOR + 1));
}

TEST(CApi, KeyErrors) {
  EnginePtr e = make_cpu_engine();
  sectorcrypt_key k = 0;
  uint8_t key[64] = {};
  EXPECT_EQ(sectorcrypt_add_key(e.get(), key, 48, 0, &k), SECTORCRYPT_EINVAL_KEY);
  EXPECT_NE(std::string(sectorcrypt_last_error()).find("48"), std::string::npos);
  EXPECT_EQ(sectorcrypt_add_key(e.get(), key, 64, 0, &k), SECTORCRYPT_EINVAL_KEY);  // equal halves
  EXPECT_EQ(sectorcrypt_add_key(e.get(), key, 64, SECTORCRYPT_KEY_ALLOW_EQUAL_HALVES, &k), SECTORCRYPT_OK);
  EXPECT_NE(k, 0u);
  EXPECT_EQ(sectorcrypt_add_key(e.get(), key, 64, 0x80, &k), SECTORCRYPT_EINVAL);
  EXPECT_EQ(sectorcrypt_add_key(e.get(), key, 64, 0, nullptr), SECTORCRYPT_EINVAL);
  EXPECT_EQ(sectorcrypt_add_key(nullptr, key, 64, 0, &k), SECTORCRYPT_EINVAL);
  EXPECT_EQ(sectorcrypt_remove_key(e.get(), k), SECTORCRYPT_OK);
  EXPECT_EQ(sectorcrypt_remove_key(e.get(), k), SECTORCRYPT_EINVAL_KEY);  // stale
}

TEST(CApi, KnownAnswerSyncAndPolled) {
  const auto vs = sectorcrypt::kat::read_ieee1619(sectorcrypt::kat::default_vector_dir() +
                                                  "/ieee1619-2007.txt");
  EnginePtr e = make_cpu_engine();
  int checked = 0;
  for (const auto& v : vs) {
    // Whole 512-byte sectors with distinct halves: what the engine takes (vectors 4-9: AES-128, 10-14: AES-256).
    if (v.plaintext.size() != 512 || std::memcmp(v.key.data(), v.key.data() + v.key.size() / 2, v.key.size() / 2) == 0) continue;
    uint64_t sector = 0;
    for (int i = 7; i >= 0; --i) sector = sector << 8 | v.iv[i];
    sectorcrypt_key k = 0;
    ASSERT_EQ(sectorcrypt_add_key(e.get(), v.key.data(), v.key.size(), 0, &k), SECTORCRYPT_OK);
    sectorcrypt_format fmt;
    sectorcrypt_format_init(&fmt);
    std::vector<uint8_t> out(512), back(512);
    ASSERT_EQ(sectorcrypt_crypt(e.get(), k, SECTORCRYPT_ENCRYPT, &fmt, sector, v.plaintext.data(), out.data(), 512), 0);
    EXPECT_EQ(out, v.ciphertext) << v.name;

    iovec src{out.data(), 512};
    iovec dst{back.data(), 512};
    sectorcrypt_request r;
    sectorcrypt_request_init(&r);
    r.key = k;
    r.direction = SECTORCRYPT_DECRYPT;
    r.start_sector = sector;
    r.src = &src;
    r.src_count = 1;
    r.dst = &dst;
    r.dst_count = 1;
    r.user_data = &r;
    r.flags = SECTORCRYPT_REQ_POLL | SECTORCRYPT_REQ_FLUSH;
    ASSERT_EQ(sectorcrypt_submit(e.get(), &r), SECTORCRYPT_OK);
    sectorcrypt_completion c{};
    ASSERT_EQ(sectorcrypt_wait(e.get(), &c, 1, 10'000'000), 1);
    EXPECT_EQ(c.status, 0);
    EXPECT_EQ(c.user_data, &r);
    EXPECT_EQ(c.bytes, 512u);
    EXPECT_EQ(back, v.plaintext) << v.name;
    EXPECT_EQ(sectorcrypt_poll(e.get(), &c, 1), 0);
    EXPECT_EQ(sectorcrypt_remove_key(e.get(), k), SECTORCRYPT_OK);
    ++checked;
  }
  EXPECT_GE(checked, 2);
}

TEST(CApi, InvalidRequestsAreRefusedUpFront) {
  EnginePtr e = make_cpu_engine();
  const sectorcrypt_key k = add_random_key(e.get(), 64);
  std::vector<uint8_t> buf(4096);
  iovec seg{buf.data(), 4096};
  sectorcrypt_request r;
  sectorcrypt_request_init(&r);
  r.key = k;
  r.src = &seg;
  r.src_count = 1;
  auto cb = [](int, const char*, void*) {};
  for (auto submit : {&sectorcrypt_submit, &sectorcrypt_try_submit}) {
    sectorcrypt_request bad = r;
    bad.callback = +cb;
    bad.flags = SECTORCRYPT_REQ_POLL;
    EXPECT_EQ(submit(e.get(), &bad), SECTORCRYPT_EINVAL);
    bad = r;
    bad.direction = 5;
    EXPECT_EQ(submit(e.get(), &bad), SECTORCRYPT_EINVAL);
    bad = r;
    bad.format.sector_size = 1000;
    EXPECT_EQ(submit(e.get(), &bad), SECTORCRYPT_EINVAL_FORMAT);
    bad = r;
    bad.key = k + 12345;
    EXPECT_EQ(submit(e.get(), &bad), SECTORCRYPT_EINVAL_KEY);
    iovec odd{buf.data(), 1000};
    bad = r;
    bad.src = &odd;
    EXPECT_EQ(submit(e.get(), &bad), SECTORCRYPT_EINVAL_LENGTH);
    bad = r;
    bad.src_count = 0;
    EXPECT_EQ(submit(e.get(), &bad), SECTORCRYPT_EINVAL_LENGTH);
    EXPECT_EQ(submit(nullptr, &r), SECTORCRYPT_EINVAL);
    EXPECT_EQ(submit(e.get(), nullptr), SECTORCRYPT_EINVAL);
  }
  sectorcrypt_format fmt;
  sectorcrypt_format_init(&fmt);
  EXPECT_EQ(sectorcrypt_crypt(e.get(), k, SECTORCRYPT_ENCRYPT, &fmt, 0, buf.data(), buf.data(), 100),
            SECTORCRYPT_EINVAL_LENGTH);
  EXPECT_EQ(sectorcrypt_crypt(e.get(), k, SECTORCRYPT_ENCRYPT, nullptr, 0, buf.data(), buf.data(), 512),
            SECTORCRYPT_EINVAL_FORMAT);
  sectorcrypt_stats st{};
  EXPECT_EQ(sectorcrypt_get_stats(e.get(), &st), SECTORCRYPT_OK);
  EXPECT_EQ(st.requests, 0u);  // nothing invalid was accepted
}

// A full engine answers would-block to valid requests and still invalid_* to invalid ones.
TEST(CApi, WouldBlockIsNotInvalid) {
  sectorcrypt_config cfg;
  sectorcrypt_config_init(&cfg);
  cfg.threads = 1;
  cfg.slot_count = 1;
  cfg.slot_bytes = 4096;
  cfg.request_capacity = 2;
  EnginePtr e = make_cpu_engine(cfg);
  const sectorcrypt_key k = add_random_key(e.get(), 32);

  struct Ctx {
    std::atomic<bool> release{false};
    std::atomic<int> completed{0};
  } ctx;
  // The callback holds the engine's completion stage until released: nothing finishes.
  auto hold = [](int status, const char*, void* p) {
    auto* c = static_cast<Ctx*>(p);
    EXPECT_EQ(status, 0);
    while (!c->release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    c->completed.fetch_add(1);
  };
  std::vector<std::vector<uint8_t>> bufs(64, std::vector<uint8_t>(512));
  std::vector<iovec> segs(64);
  int accepted = 0, would_block = 0;
  for (int i = 0; i < 64 && would_block == 0; ++i) {
    segs[i] = {bufs[i].data(), 512};
    sectorcrypt_request r;
    sectorcrypt_request_init(&r);
    r.key = k;
    r.src = &segs[i];
    r.src_count = 1;
    r.callback = +hold;
    r.user_data = &ctx;
    r.flags = SECTORCRYPT_REQ_FLUSH;
    const int rc = sectorcrypt_try_submit(e.get(), &r);
    if (rc == SECTORCRYPT_OK) ++accepted;
    else if (rc == SECTORCRYPT_EWOULDBLOCK) ++would_block;
    else ADD_FAILURE() << sectorcrypt_strerror(rc);
    if (i < 4) std::this_thread::sleep_for(std::chrono::milliseconds(5));  // let it reach the callback
  }
  ASSERT_EQ(would_block, 1) << "the engine never filled up";
  EXPECT_GE(accepted, 1);

  // Full now: an invalid request is still invalid.
  std::vector<uint8_t> odd(1000);
  iovec bad_seg{odd.data(), 1000};
  sectorcrypt_request bad;
  sectorcrypt_request_init(&bad);
  bad.key = k;
  bad.src = &bad_seg;
  bad.src_count = 1;
  bad.callback = +hold;
  bad.user_data = &ctx;
  EXPECT_EQ(sectorcrypt_try_submit(e.get(), &bad), SECTORCRYPT_EINVAL_LENGTH);
  bad.src = &segs[0];
  bad.key = 0;
  EXPECT_EQ(sectorcrypt_try_submit(e.get(), &bad), SECTORCRYPT_EINVAL_KEY);

  ctx.release = true;
  EXPECT_EQ(sectorcrypt_drain(e.get()), SECTORCRYPT_OK);
  EXPECT_EQ(ctx.completed.load(), accepted);  // every accepted request exactly once
  sectorcrypt_stats st{};
  ASSERT_EQ(sectorcrypt_get_stats(e.get(), &st), SECTORCRYPT_OK);
  EXPECT_GE(st.would_block, 1u);
}

TEST(CApi, CallbacksAndShutdown) {
  EnginePtr e = make_cpu_engine();
  const sectorcrypt_key k = add_random_key(e.get(), 64);
  std::atomic<int> done{0};
  auto count = [](int status, const char*, void* p) {
    EXPECT_EQ(status, 0);
    static_cast<std::atomic<int>*>(p)->fetch_add(1);
  };
  std::vector<uint8_t> data(1 << 20);
  std::vector<iovec> segs(16);
  for (int i = 0; i < 16; ++i) {
    segs[i] = {data.data() + i * 65536, 65536};
    sectorcrypt_request r;
    sectorcrypt_request_init(&r);
    r.key = k;
    r.src = &segs[i];
    r.src_count = 1;
    r.callback = +count;
    r.user_data = &done;
    ASSERT_EQ(sectorcrypt_submit(e.get(), &r), SECTORCRYPT_OK);
  }
  // In use by unfinished requests: "retry", or already done: removed.
  const int removed = sectorcrypt_remove_key(e.get(), k);
  EXPECT_TRUE(removed == SECTORCRYPT_EWOULDBLOCK || removed == SECTORCRYPT_OK) << removed;
  EXPECT_EQ(sectorcrypt_drain(e.get()), SECTORCRYPT_OK);
  EXPECT_EQ(done.load(), 16);

  const sectorcrypt_key k2 = add_random_key(e.get(), 32);
  EXPECT_EQ(sectorcrypt_shutdown(e.get()), SECTORCRYPT_OK);
  EXPECT_EQ(sectorcrypt_shutdown(e.get()), SECTORCRYPT_OK);  // idempotent
  sectorcrypt_request r;
  sectorcrypt_request_init(&r);
  r.key = k2;
  r.src = &segs[0];
  r.src_count = 1;
  EXPECT_EQ(sectorcrypt_submit(e.get(), &r), SECTORCRYPT_ESHUTDOWN);
  EXPECT_EQ(sectorcrypt_try_submit(e.get(), &r), SECTORCRYPT_ESHUTDOWN);
}

}  // namespace
