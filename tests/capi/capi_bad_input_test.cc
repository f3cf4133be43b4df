// Every class of bad input through sectorcrypt_submit() and sectorcrypt_try_submit() is
// refused at once with its own code, never SECTORCRYPT_EWOULDBLOCK and never after a
// wait: against an idle engine, a full one (the default configuration, every request
// record held by a callback that waits), and a full one with 256 threads blocked in
// sectorcrypt_submit(). Nothing refused is ever accepted or completed.
#include <sectorcrypt.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/test_support.h"

namespace {

using namespace std::chrono_literals;

// A request whose size member claims more than this library knows, with a member past
// the known ones set: a caller built against a newer header asking for something.
struct NewerRequest {
  sectorcrypt_request known;
  uint64_t unknown_member;
};

struct BadCase {
  const char* name;
  int expected;
  std::function<void(sectorcrypt_request&)> spoil;
};

class BadInput {
 public:
  BadInput() {
    sectorcrypt_config cfg;
    sectorcrypt_config_init(&cfg);  // the defaults: 8 slots, 64 request records
    cfg.backend = SECTORCRYPT_BACKEND_CPU;
    cfg.idle_spin_us = 0;  // CI shares its CPUs
    EXPECT_EQ(sectorcrypt_create(&cfg, &engine), SECTORCRYPT_OK) << sectorcrypt_last_error();
    const auto raw = sectorcrypt::testing::random_xts_key(64);
    EXPECT_EQ(sectorcrypt_add_key(engine, raw.data(), raw.size(), 0, &key), SECTORCRYPT_OK);
    const auto raw2 = sectorcrypt::testing::random_xts_key(32);
    EXPECT_EQ(sectorcrypt_add_key(engine, raw2.data(), raw2.size(), 0, &removed_key), SECTORCRYPT_OK);
    EXPECT_EQ(sectorcrypt_remove_key(engine, removed_key), SECTORCRYPT_OK);
    data.assign(64 * 1024, 0);
    for (std::size_t i = 0; i < 17; ++i) seventeen[i] = {data.data() + 512 * i, 512};
  }
  ~BadInput() { sectorcrypt_destroy(engine); }

  // A valid, flushed, in-place request over data[0, 4096).
  sectorcrypt_request valid() {
    sectorcrypt_request r;
    sectorcrypt_request_init(&r);
    r.key = key;
    r.src = &whole;
    r.src_count = 1;
    r.flags = SECTORCRYPT_REQ_FLUSH;
    return r;
  }

  std::vector<BadCase> cases() {
    auto no_callback = [](int, const char*, void*) {};
    return {
        {"zero key", SECTORCRYPT_EINVAL_KEY, [](sectorcrypt_request& r) { r.key = 0; }},
        {"removed key", SECTORCRYPT_EINVAL_KEY,
         [this](sectorcrypt_request& r) { r.key = removed_key; }},
        {"unknown key", SECTORCRYPT_EINVAL_KEY, [](sectorcrypt_request& r) { r.key += 1000; }},
        {"sector size 1000", SECTORCRYPT_EINVAL_FORMAT,
         [](sectorcrypt_request& r) { r.format.sector_size = 1000; }},
        {"IV mode out of range", SECTORCRYPT_EINVAL_FORMAT,
         [](sectorcrypt_request& r) { r.format.iv_mode = 9; }},
        {"reserved format member set", SECTORCRYPT_EINVAL_FORMAT,
         [](sectorcrypt_request& r) { r.format.reserved[4] = 1; }},
        {"not whole sectors", SECTORCRYPT_EINVAL_LENGTH,
         [this](sectorcrypt_request& r) { r.src = &odd; }},
        {"no segments", SECTORCRYPT_EINVAL_LENGTH, [](sectorcrypt_request& r) { r.src_count = 0; }},
        {"17 segments", SECTORCRYPT_EINVAL_LENGTH,
         [this](sectorcrypt_request& r) { r.src = seventeen; r.src_count = 17; }},
        {"empty segment", SECTORCRYPT_EINVAL_LENGTH,
         [this](sectorcrypt_request& r) { r.src = &empty; }},
        {"destination size differs", SECTORCRYPT_EINVAL_LENGTH,
         [this](sectorcrypt_request& r) { r.dst = &short_dst; r.dst_count = 1; }},
        {"null segment base", SECTORCRYPT_EINVAL_BUFFER,
         [this](sectorcrypt_request& r) { r.src = &null_base; }},
        {"null segment list", SECTORCRYPT_EINVAL_BUFFER, [](sectorcrypt_request& r) { r.src = nullptr; }},
        {"overlapping source and destination", SECTORCRYPT_EINVAL_BUFFER,
         [this](sectorcrypt_request& r) { r.dst = &overlapping_dst; r.dst_count = 1; }},
        {"overlapping in-place segments", SECTORCRYPT_EINVAL_BUFFER,
         [this](sectorcrypt_request& r) { r.src = overlapping_pair; r.src_count = 2; }},
        {"misaligned start sector", SECTORCRYPT_EINVAL_BUFFER,
         [](sectorcrypt_request& r) {
           r.format.sector_size = 4096;
           r.format.iv_large_sectors = 1;
           r.start_sector = 3;  // 512-byte units: not on a 4096-byte sector
         }},
        {"direction out of range", SECTORCRYPT_EINVAL, [](sectorcrypt_request& r) { r.direction = 5; }},
        {"callback and SECTORCRYPT_REQ_POLL", SECTORCRYPT_EINVAL,
         [no_callback](sectorcrypt_request& r) {
           r.callback = +no_callback;
           r.flags |= SECTORCRYPT_REQ_POLL;
         }},
        {"unknown flag", SECTORCRYPT_EINVAL, [](sectorcrypt_request& r) { r.flags |= 0x100; }},
        {"size 0 (never initialised)", SECTORCRYPT_EINVAL, [](sectorcrypt_request& r) { r.size = 0; }},
        {"a member this library does not know set", SECTORCRYPT_EINVAL,
         [this](sectorcrypt_request& r) {
           newer.known = r;
           newer.known.size = sizeof newer;
           newer.unknown_member = 1;
         }},
    };
  }

  // Submits `bad` through `submit` on a thread of its own and expects the case's code at
  // once: a call that waits is a failure (the engine is then unblocked so it returns).
  void expect_refused(const BadCase& c, int (*submit)(sectorcrypt_engine*, const sectorcrypt_request*),
                      const char* how, const std::function<void()>& unblock) {
    sectorcrypt_request r = valid();
    c.spoil(r);
    const sectorcrypt_request* arg = std::strstr(c.name, "does not know") != nullptr ? &newer.known : &r;
    auto call = std::async(std::launch::async, [&] {
      const int rc = submit(engine, arg);
      return std::make_pair(rc, std::string(sectorcrypt_last_error()));
    });
    if (call.wait_for(10s) != std::future_status::ready) {
      ADD_FAILURE() << how << " of a request with " << c.name << " waited instead of refusing";
      unblock();
    }
    const auto [rc, message] = call.get();
    EXPECT_EQ(rc, c.expected) << how << ", " << c.name << ": " << sectorcrypt_strerror(rc) << " ("
                              << message << ")";
    EXPECT_FALSE(message.empty()) << how << ", " << c.name;
  }

  void expect_all_refused(const char* state, const std::function<void()>& unblock) {
    SCOPED_TRACE(state);
    for (const BadCase& c : cases()) {
      expect_refused(c, &sectorcrypt_submit, "sectorcrypt_submit", unblock);
      expect_refused(c, &sectorcrypt_try_submit, "sectorcrypt_try_submit", unblock);
    }
  }

  sectorcrypt_engine* engine = nullptr;
  sectorcrypt_key key = 0, removed_key = 0;
  std::vector<uint8_t> data;
  iovec whole{nullptr, 0}, odd{}, empty{}, short_dst{}, null_base{nullptr, 4096}, overlapping_dst{};
  iovec overlapping_pair[2] = {};
  iovec seventeen[17] = {};
  NewerRequest newer{};

  void set_buffers() {
    whole = {data.data(), 4096};
    odd = {data.data(), 1000};
    empty = {data.data(), 0};
    short_dst = {data.data() + 8192, 2048};
    overlapping_dst = {data.data() + 2048, 4096};
    overlapping_pair[0] = {data.data(), 4096};
    overlapping_pair[1] = {data.data() + 3584, 512};
  }
};

// The state the C layer used to get wrong: every request record held, hundreds of
// threads waiting for one; an invalid request must still be answered invalid, at once.
TEST(CApiBadInput, RefusedAtOnceIdleFullAndFullWithBlockedSubmitters) {
  BadInput t;
  t.set_buffers();
  ASSERT_NE(t.engine, nullptr);
  sectorcrypt_config resolved;
  ASSERT_EQ(sectorcrypt_get_config(t.engine, &resolved), SECTORCRYPT_OK);
  ASSERT_EQ(resolved.request_capacity, 64u);  // the default configuration

  struct Hold {
    std::atomic<bool> release{false};
    std::atomic<int> completed{0};
    std::atomic<int> failed{0};
  } hold;
  auto held = [](int status, const char*, void* p) {
    auto* h = static_cast<Hold*>(p);
    if (status != 0) h->failed.fetch_add(1);
    while (!h->release.load()) std::this_thread::sleep_for(1ms);
    h->completed.fetch_add(1);
  };
  auto unblock = [&] { hold.release = true; };

  t.expect_all_refused("idle engine", unblock);

  // Fill every request record with valid requests whose callback waits.
  std::vector<std::vector<uint8_t>> fill_bufs(64, std::vector<uint8_t>(512));
  std::vector<iovec> fill_segs(64);
  int accepted = 0;
  for (int i = 0; i < 64; ++i) {
    fill_segs[i] = {fill_bufs[i].data(), 512};
    sectorcrypt_request r = t.valid();
    r.src = &fill_segs[i];
    r.callback = +held;
    r.user_data = &hold;
    ASSERT_EQ(sectorcrypt_try_submit(t.engine, &r), SECTORCRYPT_OK) << i << ": " << sectorcrypt_last_error();
    ++accepted;
  }
  {
    sectorcrypt_request r = t.valid();
    r.src = &fill_segs[0];  // never crypted: refused
    ASSERT_EQ(sectorcrypt_try_submit(t.engine, &r), SECTORCRYPT_EWOULDBLOCK) << "not full";
  }
  t.expect_all_refused("full engine", unblock);

  // 256 threads blocked in sectorcrypt_submit with valid requests.
  constexpr int kBlocked = 256;
  std::vector<std::vector<uint8_t>> blocked_bufs(kBlocked, std::vector<uint8_t>(512));
  std::vector<iovec> blocked_segs(kBlocked);
  std::atomic<int> calling{0}, returned{0}, returned_ok{0};
  std::vector<std::thread> blocked;
  for (int i = 0; i < kBlocked; ++i) {
    blocked_segs[i] = {blocked_bufs[i].data(), 512};
    blocked.emplace_back([&, i] {
      sectorcrypt_request r = t.valid();
      r.src = &blocked_segs[i];
      r.callback = +held;
      r.user_data = &hold;
      calling.fetch_add(1);
      const int rc = sectorcrypt_submit(t.engine, &r);
      if (rc == SECTORCRYPT_OK) returned_ok.fetch_add(1);
      returned.fetch_add(1);
    });
  }
  while (calling.load() < kBlocked) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(returned.load(), 0) << "the engine was not full: submitters went through";
  t.expect_all_refused("full engine with 256 blocked submitters", unblock);
  EXPECT_EQ(returned.load(), 0) << "a refusal let a blocked submitter through";

  hold.release = true;
  for (auto& th : blocked) th.join();
  EXPECT_EQ(returned_ok.load(), kBlocked);
  ASSERT_EQ(sectorcrypt_drain(t.engine), SECTORCRYPT_OK);
  EXPECT_EQ(hold.completed.load(), accepted + kBlocked);  // each valid request exactly once
  EXPECT_EQ(hold.failed.load(), 0);
  sectorcrypt_stats st;
  ASSERT_EQ(sectorcrypt_get_stats(t.engine, &st), SECTORCRYPT_OK);
  EXPECT_EQ(st.requests, static_cast<uint64_t>(accepted + kBlocked));  // nothing refused ran
  EXPECT_EQ(st.requests_failed, 0u);
}

}  // namespace
