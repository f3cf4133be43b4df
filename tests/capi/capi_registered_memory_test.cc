// The C API's registered memory and device-resident flag: bookkeeping and refusals on the
// CPU backend (the GPU paths themselves are tested through the engine on a GPU), the
// new configuration members and the hybrid backend's refusals.
#include <sectorcrypt.h>

#include <gtest/gtest.h>

#include <sys/uio.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

namespace {

struct Engine {
  sectorcrypt_engine* e = nullptr;
  ~Engine() { sectorcrypt_destroy(e); }
};

void create_cpu(Engine* out, size_t registrations = 0) {
  sectorcrypt_config cfg;
  sectorcrypt_config_init(&cfg);
  cfg.backend = SECTORCRYPT_BACKEND_CPU;
  cfg.threads = 2;
  if (registrations != 0) cfg.registration_capacity = registrations;
  ASSERT_EQ(sectorcrypt_create(&cfg, &out->e), SECTORCRYPT_OK) << sectorcrypt_last_error();
}

sectorcrypt_key add_key(sectorcrypt_engine* e) {
  uint8_t key[64];
  for (int i = 0; i < 64; ++i) key[i] = static_cast<uint8_t>(i * 7 + 1);
  sectorcrypt_key k = 0;
  EXPECT_EQ(sectorcrypt_add_key(e, key, sizeof key, 0, &k), SECTORCRYPT_OK);
  return k;
}

TEST(CApiRegisteredMemory, DefaultsOfTheNewMembers) {
  sectorcrypt_config cfg;
  sectorcrypt_config_init(&cfg);
  EXPECT_EQ(cfg.slot_bytes, 0u);  // the backend's default
  EXPECT_EQ(cfg.registration_capacity, 64u);
  EXPECT_EQ(cfg.hybrid_gpu_percent, -1);
  EXPECT_EQ(cfg.hybrid_min_gpu_bytes, 256u * 1024);
  Engine e;
  create_cpu(&e);
  sectorcrypt_config got;
  ASSERT_EQ(sectorcrypt_get_config(e.e, &got), SECTORCRYPT_OK);
  EXPECT_EQ(got.slot_bytes, 1u << 20);  // resolved: 1 MiB on the CPU
  EXPECT_EQ(got.backend, SECTORCRYPT_BACKEND_CPU);
}

TEST(CApiRegisteredMemory, RegisterCryptUnregister) {
  Engine e;
  create_cpu(&e, 2);
  const sectorcrypt_key k = add_key(e.e);
  std::vector<uint8_t> buf(64 * 1024, 0x11);
  ASSERT_EQ(sectorcrypt_register_memory(e.e, buf.data(), buf.size()), SECTORCRYPT_OK);
  EXPECT_EQ(sectorcrypt_register_memory(e.e, buf.data() + 4096, 4096), SECTORCRYPT_EINVAL_BUFFER);
  EXPECT_NE(std::strstr(sectorcrypt_last_error(), "overlaps"), nullptr) << sectorcrypt_last_error();
  EXPECT_EQ(sectorcrypt_register_memory(e.e, nullptr, 4096), SECTORCRYPT_EINVAL_BUFFER);
  std::vector<uint8_t> other(8192);
  EXPECT_EQ(sectorcrypt_register_memory(e.e, other.data(), 0), SECTORCRYPT_EINVAL_LENGTH);
  std::vector<uint8_t> a(4096), b(4096);
  ASSERT_EQ(sectorcrypt_register_memory(e.e, a.data(), a.size()), SECTORCRYPT_OK);
  EXPECT_EQ(sectorcrypt_register_memory(e.e, b.data(), b.size()), SECTORCRYPT_ENOMEM);

  sectorcrypt_format fmt;
  sectorcrypt_format_init(&fmt);
  ASSERT_EQ(sectorcrypt_crypt(e.e, k, SECTORCRYPT_ENCRYPT, &fmt, 0, buf.data(),
                              buf.data() + 32 * 1024, 32 * 1024), SECTORCRYPT_OK);
  sectorcrypt_stats st;
  ASSERT_EQ(sectorcrypt_get_stats(e.e, &st), SECTORCRYPT_OK);
  EXPECT_EQ(st.registered_requests, 1u);
  EXPECT_EQ(st.device_requests, 0u);
  EXPECT_EQ(st.gpu_bytes, 0u);

  EXPECT_EQ(sectorcrypt_unregister_memory(e.e, buf.data() + 1), SECTORCRYPT_EINVAL_BUFFER);
  ASSERT_EQ(sectorcrypt_unregister_memory(e.e, buf.data()), SECTORCRYPT_OK);
  EXPECT_EQ(sectorcrypt_unregister_memory(e.e, buf.data()), SECTORCRYPT_EINVAL_BUFFER);
  EXPECT_EQ(sectorcrypt_unregister_memory(nullptr, buf.data()), SECTORCRYPT_EINVAL);
}

// A range a request still holds cannot go; once the request completed, it can.
TEST(CApiRegisteredMemory, UnregisterWhileInUseWouldBlock) {
  Engine e;
  create_cpu(&e);
  const sectorcrypt_key k = add_key(e.e);
  std::vector<uint8_t> buf(8192, 0x22);
  ASSERT_EQ(sectorcrypt_register_memory(e.e, buf.data(), buf.size()), SECTORCRYPT_OK);
  struct Hold {
    std::atomic<bool> release{false}, entered{false};
  } hold;
  iovec v{buf.data(), buf.size()};
  sectorcrypt_request r;
  sectorcrypt_request_init(&r);
  r.key = k;
  r.src = &v;
  r.src_count = 1;
  r.flags = SECTORCRYPT_REQ_FLUSH;
  r.callback = [](int, const char*, void* p) {
    auto* h = static_cast<Hold*>(p);
    h->entered.store(true);
    while (!h->release.load()) std::this_thread::yield();
  };
  r.user_data = &hold;
  ASSERT_EQ(sectorcrypt_submit(e.e, &r), SECTORCRYPT_OK);
  while (!hold.entered.load()) std::this_thread::yield();
  EXPECT_EQ(sectorcrypt_unregister_memory(e.e, buf.data()), SECTORCRYPT_EWOULDBLOCK);
  hold.release.store(true);
  ASSERT_EQ(sectorcrypt_drain(e.e), SECTORCRYPT_OK);
  EXPECT_EQ(sectorcrypt_unregister_memory(e.e, buf.data()), SECTORCRYPT_OK);
}

TEST(CApiRegisteredMemory, DeviceFlagIsRefusedOnTheCpu) {
  Engine e;
  create_cpu(&e);
  const sectorcrypt_key k = add_key(e.e);
  std::vector<uint8_t> buf(8192, 0x33);
  const auto before = buf;
  iovec v{buf.data(), buf.size()};
  sectorcrypt_request r;
  sectorcrypt_request_init(&r);
  r.key = k;
  r.src = &v;
  r.src_count = 1;
  r.flags = SECTORCRYPT_REQ_DEVICE | SECTORCRYPT_REQ_POLL;
  EXPECT_EQ(sectorcrypt_submit(e.e, &r), SECTORCRYPT_EINVAL_BUFFER);
  EXPECT_NE(std::strstr(sectorcrypt_last_error(), "cuda backend"), nullptr) << sectorcrypt_last_error();
  EXPECT_EQ(sectorcrypt_try_submit(e.e, &r), SECTORCRYPT_EINVAL_BUFFER);
  ASSERT_EQ(sectorcrypt_drain(e.e), SECTORCRYPT_OK);
  EXPECT_EQ(buf, before);
  sectorcrypt_completion c;
  EXPECT_EQ(sectorcrypt_poll(e.e, &c, 1), 0);
}

TEST(CApiRegisteredMemory, HybridBackendRefusals) {
  sectorcrypt_config cfg;
  sectorcrypt_config_init(&cfg);
  cfg.backend = SECTORCRYPT_BACKEND_HYBRID;
  cfg.hybrid_gpu_percent = 101;
  sectorcrypt_engine* e = nullptr;
  EXPECT_EQ(sectorcrypt_create(&cfg, &e), SECTORCRYPT_EINVAL_LENGTH);
  cfg.hybrid_gpu_percent = 50;
  const int rc = sectorcrypt_create(&cfg, &e);
  if (rc == SECTORCRYPT_OK) {
    sectorcrypt_config got;
    EXPECT_EQ(sectorcrypt_get_config(e, &got), SECTORCRYPT_OK);
    EXPECT_EQ(got.backend, SECTORCRYPT_BACKEND_HYBRID);
    EXPECT_EQ(got.hybrid_gpu_percent, 50);
    sectorcrypt_destroy(e);
    return;
  }
  EXPECT_EQ(rc, SECTORCRYPT_EUNAVAILABLE);
  EXPECT_NE(std::strstr(sectorcrypt_last_error(), "hybrid"), nullptr) << sectorcrypt_last_error();
}

}  // namespace
