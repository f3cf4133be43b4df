// Asynchronous failures reach a C caller with their code and the engine's message: the
// engine with its fault hooks (sectorcrypt_fi) behind the C API, a crypt worker made to
// throw, the failure seen in a callback, in a polled completion and in the stats.
#include <sectorcrypt.h>

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <vector>

#include "engine/fault_injection.h"
#include "tests/test_support.h"

namespace {

namespace fault = sectorcrypt::engine::fault;

std::atomic<int> g_throws_left{0};

bool throw_in_crypt(fault::Point p, void*) {
  return p == fault::Point::crypt_throw && g_throws_left.fetch_sub(1) > 0;
}

struct Seen {
  int status = 1;
  std::string message;
  int calls = 0;
};

void remember(int status, const char* message, void* p) {
  auto* s = static_cast<Seen*>(p);
  s->status = status;
  s->message = message;
  ++s->calls;
}

TEST(CApiFaults, BackendFailureCarriesItsMessage) {
  fault::set_hook(&throw_in_crypt, nullptr);
  sectorcrypt_config cfg;
  sectorcrypt_config_init(&cfg);
  cfg.backend = SECTORCRYPT_BACKEND_CPU;
  cfg.threads = 1;
  cfg.idle_spin_us = 0;
  sectorcrypt_engine* e = nullptr;
  ASSERT_EQ(sectorcrypt_create(&cfg, &e), SECTORCRYPT_OK) << sectorcrypt_last_error();
  const auto raw = sectorcrypt::testing::random_xts_key(64);
  sectorcrypt_key k = 0;
  ASSERT_EQ(sectorcrypt_add_key(e, raw.data(), raw.size(), 0, &k), SECTORCRYPT_OK);
  std::vector<uint8_t> buf(3 * 4096);
  iovec seg[3] = {{buf.data(), 4096}, {buf.data() + 4096, 4096}, {buf.data() + 8192, 4096}};
  sectorcrypt_request r;
  sectorcrypt_request_init(&r);
  r.key = k;
  r.src_count = 1;
  r.flags = SECTORCRYPT_REQ_FLUSH;

  Seen seen;
  g_throws_left = 1;
  r.src = &seg[0];
  r.callback = &remember;
  r.user_data = &seen;
  ASSERT_EQ(sectorcrypt_submit(e, &r), SECTORCRYPT_OK);
  ASSERT_EQ(sectorcrypt_drain(e), SECTORCRYPT_OK);
  EXPECT_EQ(seen.calls, 1);
  EXPECT_EQ(seen.status, SECTORCRYPT_EBACKEND);
  EXPECT_NE(seen.message.find("crypt worker threw"), std::string::npos) << seen.message;

  g_throws_left = 1;
  r.src = &seg[1];
  r.callback = nullptr;
  r.user_data = &seg[1];
  r.flags |= SECTORCRYPT_REQ_POLL;
  ASSERT_EQ(sectorcrypt_submit(e, &r), SECTORCRYPT_OK);
  sectorcrypt_completion c;
  ASSERT_EQ(sectorcrypt_wait(e, &c, 1, 10'000'000), 1);
  EXPECT_EQ(c.status, SECTORCRYPT_EBACKEND);
  EXPECT_EQ(c.user_data, &seg[1]);
  EXPECT_NE(std::string(c.message).find("crypt worker threw"), std::string::npos) << c.message;

  // The engine stays usable; the stats count what happened.
  g_throws_left = 0;
  r.src = &seg[2];
  r.user_data = &seg[2];
  ASSERT_EQ(sectorcrypt_submit(e, &r), SECTORCRYPT_OK);
  ASSERT_EQ(sectorcrypt_wait(e, &c, 1, 10'000'000), 1);
  EXPECT_EQ(c.status, SECTORCRYPT_OK);
  EXPECT_STREQ(c.message, "ok");
  sectorcrypt_stats st;
  ASSERT_EQ(sectorcrypt_get_stats(e, &st), SECTORCRYPT_OK);
  EXPECT_EQ(st.requests_failed, 2u);
  EXPECT_EQ(st.backend_failures, 2u);
  sectorcrypt_destroy(e);
  fault::set_hook(nullptr, nullptr);
}

}  // namespace
