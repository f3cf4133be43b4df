// Channels through the C API, beyond capi_channel_test.cc: the IEEE 1619 answers through
// a channel; batch submits across the 32-request conversion chunks (48 in one call, one
// wait with min_count above the chunk); refusals by the C layer and by the engine at
// chunk boundaries and in the middle, with nothing written for the refused; the array
// stride of a newer request layout; closed and foreign handles; callbacks that submit
// again and poll with max 0; the eventfd on the inline and the worker path and quiet
// without the option; 8 threads x 500 requests; completions all there when shutdown
// returns; the size members of the options and of the pre-channel config and stats.
#include <poll.h>
#include <sectorcrypt.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "host/kat_vectors.h"
#include "tests/capi/guarded_struct.h"
#include "tests/test_support.h"

namespace {

struct EngineDeleter {
  void operator()(sectorcrypt_engine* e) const { sectorcrypt_destroy(e); }
};
using EnginePtr = std::unique_ptr<sectorcrypt_engine, EngineDeleter>;

sectorcrypt_config cpu_config(std::size_t channel_count = 4, std::size_t depth = 64,
                              std::size_t inline_max = 4096) {
  sectorcrypt_config cfg;
  sectorcrypt_config_init(&cfg);
  cfg.backend = SECTORCRYPT_BACKEND_CPU;
  cfg.threads = 2;
  cfg.idle_spin_us = 0;  // a 2-CPU machine: spinning threads would only slow the test
  cfg.channel_count = channel_count;
  cfg.channel_depth = depth;
  cfg.inline_max_bytes = inline_max;
  return cfg;
}

EnginePtr make_engine(const sectorcrypt_config& cfg) {
  sectorcrypt_engine* e = nullptr;
  EXPECT_EQ(sectorcrypt_create(&cfg, &e), SECTORCRYPT_OK) << sectorcrypt_last_error();
  return EnginePtr(e);
}

sectorcrypt_key add_random_key(sectorcrypt_engine* e, std::size_t len = 64) {
  const auto key = sectorcrypt::testing::random_xts_key(len);
  sectorcrypt_key k = 0;
  EXPECT_EQ(sectorcrypt_add_key(e, key.data(), key.size(), 0, &k), SECTORCRYPT_OK);
  return k;
}

sectorcrypt_channel* open_channel(sectorcrypt_engine* e, bool ordered = false, bool fd = false) {
  sectorcrypt_channel_options o;
  sectorcrypt_channel_options_init(&o);
  o.ordered = ordered ? 1 : 0;
  o.completion_fd = fd ? 1 : 0;
  sectorcrypt_channel* ch = nullptr;
  EXPECT_EQ(sectorcrypt_channel_open(e, &o, &ch), SECTORCRYPT_OK) << sectorcrypt_last_error();
  return ch;
}

// One request's buffers: random plaintext encrypted out of place into `out`.
struct Job {
  std::vector<uint8_t> plain, out;
  iovec src{}, dst{};
  uint64_t sector = 0;

  Job(std::size_t bytes, uint64_t start) : plain(sectorcrypt::testing::random_bytes(bytes)),
                                           out(bytes, 0), sector(start) {}
  sectorcrypt_request request(sectorcrypt_key k, void* user_data) {
    src = {plain.data(), plain.size()};
    dst = {out.data(), out.size()};
    sectorcrypt_request r;
    sectorcrypt_request_init(&r);
    r.key = k;
    r.start_sector = sector;
    r.src = &src;
    r.src_count = 1;
    r.dst = &dst;
    r.dst_count = 1;
    r.user_data = user_data;
    return r;
  }
};

// Reaps completions until `n` have come or 30 s have passed.
std::vector<sectorcrypt_completion> reap(sectorcrypt_channel* ch, std::size_t n) {
  std::vector<sectorcrypt_completion> got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  sectorcrypt_completion c[40];
  while (got.size() < n && std::chrono::steady_clock::now() < deadline) {
    const int k = sectorcrypt_channel_wait(ch, c, 40, 1, 100'000);
    EXPECT_GE(k, 0) << sectorcrypt_last_error();
    if (k < 0) break;
    got.insert(got.end(), c, c + k);
  }
  return got;
}

std::size_t index_of(const sectorcrypt_completion& c) {
  return reinterpret_cast<std::uintptr_t>(c.user_data);
}
void* as_user_data(std::size_t i) { return reinterpret_cast<void*>(static_cast<std::uintptr_t>(i)); }

// What the plain synchronous path makes of a job's plaintext.
std::vector<uint8_t> sync_encrypt(sectorcrypt_engine* e, sectorcrypt_key k, const Job& j) {
  std::vector<uint8_t> out(j.plain.size());
  sectorcrypt_format fmt;
  sectorcrypt_format_init(&fmt);
  EXPECT_EQ(sectorcrypt_crypt(e, k, SECTORCRYPT_ENCRYPT, &fmt, j.sector, j.plain.data(), out.data(),
                              out.size()),
            SECTORCRYPT_OK);
  return out;
}

// Both paths (inline on the submitting thread and through the workers), 48 requests in
// one batch (two conversion chunks): every one accepted, every one back exactly once, its
// ciphertext what sectorcrypt_crypt makes and decrypting to the plaintext.
TEST(CApiChannelEdge, BatchRoundTripAgainstTheSynchronousPath) {
  EnginePtr e = make_engine(cpu_config());
  const sectorcrypt_key k = add_random_key(e.get());
  sectorcrypt_channel* ch = open_channel(e.get());
  ASSERT_NE(ch, nullptr);

  // An idle engine crypts a small request inline: complete when submit returns.
  Job first(512, 7);
  sectorcrypt_request r0 = first.request(k, as_user_data(999));
  std::size_t accepted = 99;
  ASSERT_EQ(sectorcrypt_channel_submit(ch, &r0, 1, &accepted), SECTORCRYPT_OK) << sectorcrypt_last_error();
  EXPECT_EQ(accepted, 1u);
  sectorcrypt_completion c{};
  ASSERT_EQ(sectorcrypt_channel_poll(ch, &c, 1), 1);  // no wait: already done
  EXPECT_EQ(c.status, SECTORCRYPT_OK);
  EXPECT_STREQ(c.message, "ok");
  EXPECT_EQ(c.bytes, 512u);
  EXPECT_EQ(c.slot, SECTORCRYPT_NO_SLOT);
  EXPECT_EQ(index_of(c), 999u);
  EXPECT_EQ(first.out, sync_encrypt(e.get(), k, first));

  constexpr std::size_t kN = 48;
  const std::size_t sizes[] = {512, 4096, 65536, 262144, 1024};
  std::vector<std::unique_ptr<Job>> jobs;
  std::vector<sectorcrypt_request> reqs;
  for (std::size_t i = 0; i < kN; ++i) {
    jobs.push_back(std::make_unique<Job>(sizes[i % 5], i * 1000));
    reqs.push_back(jobs.back()->request(k, as_user_data(i)));
  }
  ASSERT_EQ(sectorcrypt_channel_submit(ch, reqs.data(), kN, &accepted), SECTORCRYPT_OK)
      << sectorcrypt_last_error();
  EXPECT_EQ(accepted, kN);
  // One wait for all of them: min_count larger than the 32 taken from the engine at once.
  std::vector<sectorcrypt_completion> got(kN + 5);
  ASSERT_EQ(sectorcrypt_channel_wait(ch, got.data(), got.size(), kN, 30'000'000), static_cast<int>(kN))
      << sectorcrypt_last_error();
  got.resize(kN);
  std::vector<int> seen(kN, 0);
  for (const auto& g : got) {
    ASSERT_LT(index_of(g), kN);
    ++seen[index_of(g)];
    EXPECT_EQ(g.status, SECTORCRYPT_OK) << g.message;
    EXPECT_EQ(g.bytes, jobs[index_of(g)]->plain.size());
  }
  sectorcrypt_format fmt;
  sectorcrypt_format_init(&fmt);
  for (std::size_t i = 0; i < kN; ++i) {
    EXPECT_EQ(seen[i], 1) << i;
    const Job& j = *jobs[i];
    EXPECT_NE(j.out, j.plain) << i;
    EXPECT_EQ(j.out, sync_encrypt(e.get(), k, j)) << i;
    std::vector<uint8_t> back(j.out.size());
    ASSERT_EQ(sectorcrypt_crypt(e.get(), k, SECTORCRYPT_DECRYPT, &fmt, j.sector, j.out.data(),
                                back.data(), back.size()),
              SECTORCRYPT_OK);
    EXPECT_EQ(back, j.plain) << i;
  }
  EXPECT_EQ(sectorcrypt_channel_poll(ch, &c, 1), 0);

  sectorcrypt_stats st{};
  ASSERT_EQ(sectorcrypt_get_stats(e.get(), &st), SECTORCRYPT_OK);
  EXPECT_EQ(st.channel_requests, kN + 1);
  EXPECT_GE(st.inline_requests, 1u);  // the first one at least
  EXPECT_EQ(sectorcrypt_channel_close(e.get(), ch), SECTORCRYPT_OK);
}

TEST(CApiChannelEdge, KnownAnswers) {
  const auto vs = sectorcrypt::kat::read_ieee1619(sectorcrypt::kat::default_vector_dir() +
                                                  "/ieee1619-2007.txt");
  EnginePtr e = make_engine(cpu_config());
  sectorcrypt_channel* ch = open_channel(e.get());
  ASSERT_NE(ch, nullptr);
  int checked = 0;
  for (const auto& v : vs) {
    if (v.plaintext.size() != 512 ||
        std::memcmp(v.key.data(), v.key.data() + v.key.size() / 2, v.key.size() / 2) == 0) {
      continue;
    }
    uint64_t sector = 0;
    for (int i = 7; i >= 0; --i) sector = sector << 8 | v.iv[i];
    sectorcrypt_key k = 0;
    ASSERT_EQ(sectorcrypt_add_key(e.get(), v.key.data(), v.key.size(), 0, &k), SECTORCRYPT_OK);
    std::vector<uint8_t> buf = v.plaintext;  // in place this time
    iovec seg{buf.data(), buf.size()};
    sectorcrypt_request r;
    sectorcrypt_request_init(&r);
    r.key = k;
    r.start_sector = sector;
    r.src = &seg;
    r.src_count = 1;
    std::size_t accepted = 0;
    ASSERT_EQ(sectorcrypt_channel_submit(ch, &r, 1, &accepted), SECTORCRYPT_OK);
    ASSERT_EQ(reap(ch, 1).size(), 1u);
    EXPECT_EQ(buf, v.ciphertext) << v.name;
    r.direction = SECTORCRYPT_DECRYPT;
    ASSERT_EQ(sectorcrypt_channel_submit(ch, &r, 1, &accepted), SECTORCRYPT_OK);
    ASSERT_EQ(reap(ch, 1).size(), 1u);
    EXPECT_EQ(buf, v.plaintext) << v.name;
    EXPECT_EQ(sectorcrypt_remove_key(e.get(), k), SECTORCRYPT_OK);
    ++checked;
  }
  EXPECT_GE(checked, 2);
}

// A channel of depth D holding D unreaped requests refuses the next with would-block and
// the batch stops there; after a poll the rest goes in.
TEST(CApiChannelEdge, FullChannelStopsTheBatchWithWouldBlock) {
  constexpr std::size_t kDepth = 8, kN = 11;
  EnginePtr e = make_engine(cpu_config(2, kDepth));
  const sectorcrypt_key k = add_random_key(e.get());
  sectorcrypt_channel* ch = open_channel(e.get());
  ASSERT_NE(ch, nullptr);
  std::vector<std::unique_ptr<Job>> jobs;
  std::vector<sectorcrypt_request> reqs;
  for (std::size_t i = 0; i < kN; ++i) {
    jobs.push_back(std::make_unique<Job>(i % 2 ? 512 : 65536, i * 200));
    reqs.push_back(jobs.back()->request(k, as_user_data(i)));
  }
  std::size_t accepted = 0;
  EXPECT_EQ(sectorcrypt_channel_submit(ch, reqs.data(), kN, &accepted), SECTORCRYPT_EWOULDBLOCK);
  EXPECT_EQ(accepted, kDepth);
  EXPECT_NE(std::string(sectorcrypt_last_error()).find("full"), std::string::npos)
      << sectorcrypt_last_error();
  // Still full until something is reaped, however long the requests have been done.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(sectorcrypt_channel_submit(ch, &reqs[kDepth], 1, &accepted), SECTORCRYPT_EWOULDBLOCK);
  EXPECT_EQ(accepted, 0u);
  EXPECT_TRUE(jobs[kDepth]->out == std::vector<uint8_t>(jobs[kDepth]->out.size(), 0));  // not written

  auto got = reap(ch, kDepth);
  ASSERT_EQ(got.size(), kDepth);
  ASSERT_EQ(sectorcrypt_channel_submit(ch, &reqs[kDepth], kN - kDepth, &accepted), SECTORCRYPT_OK)
      << sectorcrypt_last_error();
  EXPECT_EQ(accepted, kN - kDepth);
  const auto rest = reap(ch, kN - kDepth);
  got.insert(got.end(), rest.begin(), rest.end());
  std::vector<int> seen(kN, 0);
  for (const auto& g : got) {
    EXPECT_EQ(g.status, SECTORCRYPT_OK);
    ++seen.at(index_of(g));
  }
  for (std::size_t i = 0; i < kN; ++i) EXPECT_EQ(seen[i], 1) << i;
  sectorcrypt_stats st{};
  ASSERT_EQ(sectorcrypt_get_stats(e.get(), &st), SECTORCRYPT_OK);
  EXPECT_GE(st.would_block, 2u);
  EXPECT_EQ(st.channel_requests, kN);
}

// An invalid request stops the batch with its own code: the ones before it complete, it
// and those after it get no completion and nothing written. Refusals by the engine
// (invalid key) and by the C layer (direction, callback with SECTORCRYPT_REQ_POLL, a size
// that differs from reqs[0].size) alike, in the first conversion chunk or a later one.
TEST(CApiChannelEdge, InvalidRequestInTheMiddleStopsTheBatchWithItsCode) {
  EnginePtr e = make_engine(cpu_config(2, 128));
  const sectorcrypt_key k = add_random_key(e.get());
  sectorcrypt_channel* ch = open_channel(e.get());
  ASSERT_NE(ch, nullptr);
  auto cb = [](int, const char*, void*) {};

  struct Case {
    std::size_t bad;
    int code;
    void (*spoil)(sectorcrypt_request*, sectorcrypt_callback);
  };
  const Case cases[] = {
      {6, SECTORCRYPT_EINVAL_KEY, [](sectorcrypt_request* r, sectorcrypt_callback) { r->key += 4242; }},
      {0, SECTORCRYPT_EINVAL_LENGTH, [](sectorcrypt_request* r, sectorcrypt_callback) { r->src_count = 0; }},
      {40, SECTORCRYPT_EINVAL, [](sectorcrypt_request* r, sectorcrypt_callback) { r->direction = 9; }},
      {32, SECTORCRYPT_EINVAL,
       [](sectorcrypt_request* r, sectorcrypt_callback c) {
         r->callback = c;
         r->flags = SECTORCRYPT_REQ_POLL;
       }},
      {5, SECTORCRYPT_EINVAL, [](sectorcrypt_request* r, sectorcrypt_callback) { r->size -= 8; }},
      {33, SECTORCRYPT_EINVAL_FORMAT, [](sectorcrypt_request* r, sectorcrypt_callback) { r->format.sector_size = 1000; }},
  };
  constexpr std::size_t kN = 50;
  for (const Case& cs : cases) {
    std::vector<std::unique_ptr<Job>> jobs;
    std::vector<sectorcrypt_request> reqs;
    for (std::size_t i = 0; i < kN; ++i) {
      jobs.push_back(std::make_unique<Job>(i % 3 == 0 ? 65536 : 512, i));
      reqs.push_back(jobs.back()->request(k, as_user_data(i)));
    }
    cs.spoil(&reqs[cs.bad], +cb);
    std::size_t accepted = 12345;
    EXPECT_EQ(sectorcrypt_channel_submit(ch, reqs.data(), kN, &accepted), cs.code) << "bad " << cs.bad;
    EXPECT_EQ(accepted, cs.bad);
    EXPECT_NE(std::string(sectorcrypt_last_error()), "");
    const auto got = reap(ch, cs.bad);
    ASSERT_EQ(got.size(), cs.bad);
    std::vector<int> seen(kN, 0);
    for (const auto& g : got) {
      EXPECT_EQ(g.status, SECTORCRYPT_OK);
      ++seen.at(index_of(g));
    }
    for (std::size_t i = 0; i < cs.bad; ++i) EXPECT_EQ(seen[i], 1) << i;
    // Nothing more comes, and nothing of the refused or later requests was written.
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    sectorcrypt_completion c{};
    EXPECT_EQ(sectorcrypt_channel_poll(ch, &c, 1), 0) << "bad " << cs.bad;
    for (std::size_t i = cs.bad; i < kN; ++i) {
      EXPECT_TRUE(jobs[i]->out == std::vector<uint8_t>(jobs[i]->out.size(), 0)) << i;
    }
  }
  // The arguments themselves.
  sectorcrypt_request r;
  sectorcrypt_request_init(&r);
  std::size_t accepted = 7;
  EXPECT_EQ(sectorcrypt_channel_submit(nullptr, &r, 1, &accepted), SECTORCRYPT_EINVAL);
  EXPECT_EQ(accepted, 0u);
  EXPECT_EQ(sectorcrypt_channel_submit(ch, &r, 1, nullptr), SECTORCRYPT_EINVAL);
  EXPECT_EQ(sectorcrypt_channel_submit(ch, nullptr, 1, &accepted), SECTORCRYPT_EINVAL);
  EXPECT_EQ(sectorcrypt_channel_submit(ch, nullptr, 0, &accepted), SECTORCRYPT_OK);
  EXPECT_EQ(accepted, 0u);
  sectorcrypt_completion c{};
  EXPECT_EQ(sectorcrypt_channel_poll(nullptr, &c, 1), SECTORCRYPT_EINVAL);
  EXPECT_EQ(sectorcrypt_channel_poll(ch, nullptr, 1), SECTORCRYPT_EINVAL);
  EXPECT_EQ(sectorcrypt_channel_poll(ch, nullptr, 0), 0);
  EXPECT_EQ(sectorcrypt_channel_poll_sized(ch, &c, 1, sizeof c - 8), SECTORCRYPT_EINVAL);
  EXPECT_EQ(sectorcrypt_channel_wait(nullptr, &c, 1, 1, 0), SECTORCRYPT_EINVAL);
  EXPECT_EQ(sectorcrypt_channel_fd(nullptr), SECTORCRYPT_EINVAL);
}

// An array of a newer, larger request layout: the library steps by reqs[0].size, not by
// its own sizeof.
TEST(CApiChannelEdge, RequestArrayStepsByTheCallersSize) {
  EnginePtr e = make_engine(cpu_config());
  const sectorcrypt_key k = add_random_key(e.get());
  sectorcrypt_channel* ch = open_channel(e.get());
  ASSERT_NE(ch, nullptr);
  struct Newer {
    sectorcrypt_request known;
    uint64_t future_member[3];
  };
  constexpr std::size_t kN = 40;
  std::vector<std::unique_ptr<Job>> jobs;
  std::vector<Newer> reqs(kN);
  for (std::size_t i = 0; i < kN; ++i) {
    jobs.push_back(std::make_unique<Job>(512 * (1 + i % 4), i * 10));
    sectorcrypt_request_init_sized(&reqs[i].known, sizeof(Newer));
    EXPECT_EQ(reqs[i].future_member[2], 0u);
    const sectorcrypt_request r = jobs[i]->request(k, as_user_data(i));
    std::memcpy(&reqs[i].known.key, &r.key, sizeof r - offsetof(sectorcrypt_request, key));
  }
  std::size_t accepted = 0;
  ASSERT_EQ(sectorcrypt_channel_submit(ch, &reqs[0].known, kN, &accepted), SECTORCRYPT_OK)
      << sectorcrypt_last_error();
  EXPECT_EQ(accepted, kN);
  const auto got = reap(ch, kN);
  ASSERT_EQ(got.size(), kN);
  for (std::size_t i = 0; i < kN; ++i) EXPECT_EQ(jobs[i]->out, sync_encrypt(e.get(), k, *jobs[i])) << i;

  // A member this library does not know, set: refused at that element.
  reqs[3].future_member[0] = 1;
  EXPECT_EQ(sectorcrypt_channel_submit(ch, &reqs[0].known, kN, &accepted), SECTORCRYPT_EINVAL);
  EXPECT_EQ(accepted, 3u);
  EXPECT_NE(std::string(sectorcrypt_last_error()).find("does not know"), std::string::npos);
  EXPECT_EQ(reap(ch, 3).size(), 3u);
}

TEST(CApiChannelEdge, OpeningMoreThanChannelCountFailsNamingIt) {
  EnginePtr e = make_engine(cpu_config(2));
  sectorcrypt_channel* a = open_channel(e.get());
  sectorcrypt_channel* b = open_channel(e.get());
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(a, b);
  sectorcrypt_channel* c = nullptr;
  EXPECT_EQ(sectorcrypt_channel_open(e.get(), nullptr, &c), SECTORCRYPT_ENOMEM);
  EXPECT_EQ(c, nullptr);
  EXPECT_NE(std::string(sectorcrypt_last_error()).find("channel_count"), std::string::npos)
      << sectorcrypt_last_error();
  EXPECT_EQ(sectorcrypt_channel_close(e.get(), a), SECTORCRYPT_OK);
  EXPECT_EQ(sectorcrypt_channel_open(e.get(), nullptr, &c), SECTORCRYPT_OK);
  EXPECT_NE(c, nullptr);
  EXPECT_EQ(sectorcrypt_channel_open(nullptr, nullptr, &c), SECTORCRYPT_EINVAL);
  EXPECT_EQ(sectorcrypt_channel_open(e.get(), nullptr, nullptr), SECTORCRYPT_EINVAL);

  // No channels at all.
  EnginePtr none = make_engine(cpu_config(0));
  EXPECT_EQ(sectorcrypt_channel_open(none.get(), nullptr, &c), SECTORCRYPT_ENOMEM);
  // Out of range at create, named.
  sectorcrypt_config cfg = cpu_config(5000);
  sectorcrypt_engine* bad = nullptr;
  EXPECT_EQ(sectorcrypt_create(&cfg, &bad), SECTORCRYPT_EINVAL_LENGTH);
  EXPECT_NE(std::string(sectorcrypt_last_error()).find("channel_count"), std::string::npos);
  cfg = cpu_config(2, 0);
  EXPECT_EQ(sectorcrypt_create(&cfg, &bad), SECTORCRYPT_EINVAL_LENGTH);
  EXPECT_NE(std::string(sectorcrypt_last_error()).find("channel_depth"), std::string::npos);
  EXPECT_EQ(bad, nullptr);
}

TEST(CApiChannelEdge, CloseWithUnreapedRequestsIsRefused) {
  EnginePtr e = make_engine(cpu_config(2));
  const sectorcrypt_key k = add_random_key(e.get());
  sectorcrypt_channel* ch = open_channel(e.get());
  ASSERT_NE(ch, nullptr);
  Job j(65536, 0);
  sectorcrypt_request r = j.request(k, nullptr);
  std::size_t accepted = 0;
  ASSERT_EQ(sectorcrypt_channel_submit(ch, &r, 1, &accepted), SECTORCRYPT_OK);
  EXPECT_EQ(sectorcrypt_channel_close(e.get(), ch), SECTORCRYPT_EWOULDBLOCK);
  EXPECT_NE(std::string(sectorcrypt_last_error()).find("not reaped"), std::string::npos)
      << sectorcrypt_last_error();
  // Still open: it takes requests. The second has its own buffers: two requests writing
  // one destination at once would be the caller's data race, not the engine's.
  Job j2(65536, 128);
  sectorcrypt_request r2 = j2.request(k, nullptr);
  EXPECT_EQ(sectorcrypt_channel_submit(ch, &r2, 1, &accepted), SECTORCRYPT_OK);
  EXPECT_EQ(reap(ch, 2).size(), 2u);
  EXPECT_EQ(sectorcrypt_channel_close(e.get(), ch), SECTORCRYPT_OK);
  // Closed: the handle is still the engine's memory and answers invalid_buffer.
  EXPECT_EQ(sectorcrypt_channel_close(e.get(), ch), SECTORCRYPT_EINVAL_BUFFER);
  EXPECT_EQ(sectorcrypt_channel_submit(ch, &r, 1, &accepted), SECTORCRYPT_EINVAL_BUFFER);
  EXPECT_EQ(accepted, 0u);
  EXPECT_EQ(sectorcrypt_channel_submit(ch, &r, 0, &accepted), SECTORCRYPT_EINVAL_BUFFER);
  EXPECT_NE(std::string(sectorcrypt_last_error()).find("closed"), std::string::npos);
  EXPECT_EQ(sectorcrypt_channel_close(e.get(), nullptr), SECTORCRYPT_EINVAL);
  EXPECT_EQ(sectorcrypt_channel_close(nullptr, ch), SECTORCRYPT_EINVAL);
  // Another engine's channel is not this engine's.
  EnginePtr other = make_engine(cpu_config(1));
  sectorcrypt_channel* foreign = open_channel(other.get());
  ASSERT_NE(foreign, nullptr);
  EXPECT_EQ(sectorcrypt_channel_close(e.get(), foreign), SECTORCRYPT_EINVAL_BUFFER);
  EXPECT_EQ(sectorcrypt_channel_close(other.get(), foreign), SECTORCRYPT_OK);
}

// Callbacks of channel requests run on the owner thread, inside its poll/wait, never on
// an engine thread; they are not counted as completions; one may submit again.
TEST(CApiChannelEdge, CallbacksRunOnTheOwnerInsidePoll) {
  EnginePtr e = make_engine(cpu_config(2, 64, 4096));
  const sectorcrypt_key k = add_random_key(e.get());
  sectorcrypt_channel* ch = open_channel(e.get());
  ASSERT_NE(ch, nullptr);

  struct Ctx {
    std::thread::id owner;
    std::atomic<bool> in_poll{false};
    std::atomic<int> calls{0}, wrong_thread{0}, outside_poll{0}, bad_status{0};
    sectorcrypt_channel* ch = nullptr;
    sectorcrypt_request again{};
    int resubmitted = -1;
  } ctx;
  ctx.owner = std::this_thread::get_id();
  ctx.ch = ch;
  auto cb = [](int status, const char* message, void* p) {
    auto* c = static_cast<Ctx*>(p);
    if (std::this_thread::get_id() != c->owner) c->wrong_thread.fetch_add(1);
    if (!c->in_poll.load()) c->outside_poll.fetch_add(1);
    if (status != SECTORCRYPT_OK || std::strcmp(message, "ok") != 0) c->bad_status.fetch_add(1);
    if (c->calls.fetch_add(1) == 0) {  // the first one submits one more from here
      std::size_t accepted = 0;
      c->resubmitted = sectorcrypt_channel_submit(c->ch, &c->again, 1, &accepted);
    }
  };
  constexpr std::size_t kN = 20;
  std::vector<std::unique_ptr<Job>> jobs;
  std::vector<sectorcrypt_request> reqs;
  for (std::size_t i = 0; i < kN; ++i) {
    jobs.push_back(std::make_unique<Job>(i % 2 ? 512 : 131072, i * 300));
    reqs.push_back(jobs.back()->request(k, &ctx));
    reqs.back().callback = +cb;
  }
  Job extra(512, 99999);
  ctx.again = extra.request(k, &ctx);
  ctx.again.callback = +cb;
  std::size_t accepted = 0;
  ASSERT_EQ(sectorcrypt_channel_submit(ch, reqs.data(), kN, &accepted), SECTORCRYPT_OK);
  // Not even the inline ones' callbacks have run: only poll runs them.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(ctx.calls.load(), 0);
  // max 0 (out NULL) runs the callbacks of what has finished by now.
  ctx.in_poll = true;
  EXPECT_EQ(sectorcrypt_channel_poll(ch, nullptr, 0), 0);
  ctx.in_poll = false;
  EXPECT_GT(ctx.calls.load(), 0);

  sectorcrypt_completion c[4];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (ctx.calls.load() < static_cast<int>(kN + 1) && std::chrono::steady_clock::now() < deadline) {
    ctx.in_poll = true;
    EXPECT_EQ(sectorcrypt_channel_wait(ch, c, 4, 1, 100'000), 0);  // callbacks are not returned
    ctx.in_poll = false;
  }
  EXPECT_EQ(ctx.calls.load(), static_cast<int>(kN + 1));
  EXPECT_EQ(ctx.resubmitted, SECTORCRYPT_OK);
  EXPECT_EQ(ctx.wrong_thread.load(), 0);
  EXPECT_EQ(ctx.outside_poll.load(), 0);
  EXPECT_EQ(ctx.bad_status.load(), 0);
  EXPECT_EQ(extra.out, sync_encrypt(e.get(), k, extra));
  EXPECT_EQ(sectorcrypt_channel_close(e.get(), ch), SECTORCRYPT_OK);  // all reaped
}

bool readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN) != 0;
}

// With completion_fd the eventfd becomes readable for inline and worker completions
// alike; without it, nothing is written to it while nobody waits.
TEST(CApiChannelEdge, CompletionFdBecomesReadable) {
  EnginePtr e = make_engine(cpu_config(2, 64, 4096));
  const sectorcrypt_key k = add_random_key(e.get());
  sectorcrypt_channel* ch = open_channel(e.get(), false, /*fd=*/true);
  sectorcrypt_channel* quiet = open_channel(e.get(), false, false);
  ASSERT_NE(ch, nullptr);
  ASSERT_NE(quiet, nullptr);
  const int fd = sectorcrypt_channel_fd(ch);
  ASSERT_GE(fd, 0);
  EXPECT_NE(fd, sectorcrypt_channel_fd(quiet));
  EXPECT_FALSE(readable(fd, 0));
  for (std::size_t bytes : {std::size_t{512}, std::size_t{262144}}) {
    Job j(bytes, 5);
    sectorcrypt_request r = j.request(k, as_user_data(bytes));
    std::size_t accepted = 0;
    ASSERT_EQ(sectorcrypt_channel_submit(ch, &r, 1, &accepted), SECTORCRYPT_OK);
    ASSERT_TRUE(readable(fd, 30'000)) << bytes;
    uint64_t v = 0;
    EXPECT_EQ(::read(fd, &v, sizeof v), static_cast<ssize_t>(sizeof v));
    EXPECT_GE(v, 1u);
    const auto got = reap(ch, 1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(index_of(got[0]), bytes);
  }

  const int qfd = sectorcrypt_channel_fd(quiet);
  ASSERT_GE(qfd, 0);
  Job j(512, 1);
  sectorcrypt_request r = j.request(k, nullptr);
  std::size_t accepted = 0;
  ASSERT_EQ(sectorcrypt_channel_submit(quiet, &r, 1, &accepted), SECTORCRYPT_OK);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(readable(qfd, 0));
  EXPECT_EQ(reap(quiet, 1).size(), 1u);
}

// 8 threads, each on its own channel, 500 requests each through both paths: every
// request completes exactly once, with the right ciphertext.
TEST(CApiChannelEdge, ManyThreadsEachOnItsOwnChannel) {
  constexpr int kThreads = 8;
  constexpr std::size_t kPerThread = 500, kBatch = 16;
  EnginePtr e = make_engine(cpu_config(kThreads, 32, 4096));
  const sectorcrypt_key k = add_random_key(e.get());
  // Every request encrypts a prefix of one plaintext at sector 0: its ciphertext is the
  // same prefix of one reference.
  const std::vector<uint8_t> plain = sectorcrypt::testing::random_bytes(8192);
  std::vector<uint8_t> want(plain.size());
  sectorcrypt_format fmt;
  sectorcrypt_format_init(&fmt);
  ASSERT_EQ(sectorcrypt_crypt(e.get(), k, SECTORCRYPT_ENCRYPT, &fmt, 0, plain.data(), want.data(),
                              want.size()),
            SECTORCRYPT_OK);
  std::vector<std::atomic<int>> seen(kThreads * kPerThread);
  std::atomic<int> wrong_data{0}, bad_status{0}, close_failed{0};

  auto producer = [&](int t) {
    sectorcrypt_channel* ch = open_channel(e.get());
    if (ch == nullptr) return;
    std::vector<std::vector<uint8_t>> outs(kPerThread);
    std::vector<iovec> src(kPerThread), dst(kPerThread);
    std::vector<sectorcrypt_request> reqs(kPerThread);
    for (std::size_t i = 0; i < kPerThread; ++i) {
      const std::size_t bytes = (i + t) % 3 == 0 ? 8192 : 512;
      outs[i].assign(bytes, 0);
      src[i] = {const_cast<uint8_t*>(plain.data()), bytes};
      dst[i] = {outs[i].data(), bytes};
      sectorcrypt_request_init(&reqs[i]);
      reqs[i].key = k;
      reqs[i].src = &src[i];
      reqs[i].src_count = 1;
      reqs[i].dst = &dst[i];
      reqs[i].dst_count = 1;
      reqs[i].user_data = as_user_data(t * kPerThread + i);
    }
    std::size_t submitted = 0, done = 0;
    sectorcrypt_completion c[kBatch];
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (done < kPerThread && std::chrono::steady_clock::now() < deadline) {
      if (submitted < kPerThread) {
        std::size_t accepted = 0;
        const int rc = sectorcrypt_channel_submit(ch, &reqs[submitted],
                                                  std::min(kBatch, kPerThread - submitted), &accepted);
        if (rc != SECTORCRYPT_OK && rc != SECTORCRYPT_EWOULDBLOCK) {
          ADD_FAILURE() << sectorcrypt_strerror(rc) << ": " << sectorcrypt_last_error();
          break;
        }
        submitted += accepted;
      }
      const int got = sectorcrypt_channel_wait(ch, c, kBatch, 1, 100'000);
      for (int i = 0; i < got; ++i) {
        if (c[i].status != SECTORCRYPT_OK) bad_status.fetch_add(1);
        seen.at(index_of(c[i])).fetch_add(1);
      }
      done += static_cast<std::size_t>(std::max(got, 0));
    }
    for (std::size_t i = 0; i < kPerThread; ++i) {
      if (std::memcmp(outs[i].data(), want.data(), outs[i].size()) != 0) wrong_data.fetch_add(1);
    }
    if (sectorcrypt_channel_close(e.get(), ch) != SECTORCRYPT_OK) close_failed.fetch_add(1);
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(producer, t);
  for (auto& th : threads) th.join();

  for (std::size_t i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i].load(), 1) << i;
  EXPECT_EQ(wrong_data.load(), 0);
  EXPECT_EQ(bad_status.load(), 0);
  EXPECT_EQ(close_failed.load(), 0);
  sectorcrypt_stats st{};
  ASSERT_EQ(sectorcrypt_get_stats(e.get(), &st), SECTORCRYPT_OK);
  EXPECT_EQ(st.channel_requests, kThreads * kPerThread);
  EXPECT_GE(st.requests, kThreads * kPerThread);
}

// After sectorcrypt_shutdown a submit is refused with ESHUTDOWN and opening too; the
// requests accepted before still get exactly one completion each through poll (ok, or
// ESHUTDOWN when they had not reached a batch), all there when shutdown returns.
TEST(CApiChannelEdge, ShutdownThenSubmitAndEveryAcceptedRequestCompletesOnce) {
  EnginePtr e = make_engine(cpu_config(2, 64, 0));  // no inline: all through the workers
  const sectorcrypt_key k = add_random_key(e.get());
  sectorcrypt_channel* ch = open_channel(e.get());
  ASSERT_NE(ch, nullptr);
  constexpr std::size_t kN = 24;
  std::vector<std::unique_ptr<Job>> jobs;
  std::vector<sectorcrypt_request> reqs;
  std::vector<std::vector<uint8_t>> want;
  for (std::size_t i = 0; i < kN; ++i) {
    jobs.push_back(std::make_unique<Job>(262144, i * 512));
    reqs.push_back(jobs.back()->request(k, as_user_data(i)));
    want.push_back(sync_encrypt(e.get(), k, *jobs.back()));
  }
  std::size_t accepted = 0;
  ASSERT_EQ(sectorcrypt_channel_submit(ch, reqs.data(), kN, &accepted), SECTORCRYPT_OK);
  ASSERT_EQ(accepted, kN);
  ASSERT_EQ(sectorcrypt_shutdown(e.get()), SECTORCRYPT_OK);

  EXPECT_EQ(sectorcrypt_channel_submit(ch, reqs.data(), 1, &accepted), SECTORCRYPT_ESHUTDOWN);
  EXPECT_EQ(accepted, 0u);
  sectorcrypt_channel* late = nullptr;
  EXPECT_EQ(sectorcrypt_channel_open(e.get(), nullptr, &late), SECTORCRYPT_ESHUTDOWN);

  std::vector<int> seen(kN, 0);
  sectorcrypt_completion c[8];
  std::size_t total = 0;
  for (int got; (got = sectorcrypt_channel_poll(ch, c, 8)) > 0;) {  // no waiting: all there
    for (int i = 0; i < got; ++i) {
      EXPECT_TRUE(c[i].status == SECTORCRYPT_OK || c[i].status == SECTORCRYPT_ESHUTDOWN) << c[i].status;
      ++seen.at(index_of(c[i]));
      if (c[i].status == SECTORCRYPT_OK) {
        EXPECT_EQ(jobs[index_of(c[i])]->out, want[index_of(c[i])]);
      }
    }
    total += static_cast<std::size_t>(got);
  }
  EXPECT_EQ(total, kN);
  for (std::size_t i = 0; i < kN; ++i) EXPECT_EQ(seen[i], 1) << i;
  EXPECT_EQ(sectorcrypt_channel_close(e.get(), ch), SECTORCRYPT_OK);
}

// sectorcrypt_destroy with a channel's requests unreaped: the engine and its open
// channels go, and those requests' callbacks are not called (they run only in poll).
TEST(CApiChannelEdge, DestroyDropsUnreapedChannelCompletionsUncalled) {
  sectorcrypt_config cfg = cpu_config(2);
  sectorcrypt_engine* raw = nullptr;
  ASSERT_EQ(sectorcrypt_create(&cfg, &raw), SECTORCRYPT_OK);
  const sectorcrypt_key k = add_random_key(raw);
  sectorcrypt_channel* ch = open_channel(raw);
  ASSERT_NE(ch, nullptr);
  std::atomic<int> calls{0};
  auto cb = [](int, const char*, void* p) { static_cast<std::atomic<int>*>(p)->fetch_add(1); };
  Job small(512, 1), large(262144, 2);
  sectorcrypt_request r[2] = {small.request(k, &calls), large.request(k, &calls)};
  r[0].callback = r[1].callback = +cb;
  std::size_t accepted = 0;
  ASSERT_EQ(sectorcrypt_channel_submit(ch, r, 2, &accepted), SECTORCRYPT_OK);
  sectorcrypt_destroy(raw);  // the channel still open, nothing reaped
  EXPECT_EQ(calls.load(), 0);
}

// ---- sizes ----

using sectorcrypt::capitest::Guarded;

TEST(CApiChannelEdge, OptionsSizeMember) {
  sectorcrypt_channel_options o;
  std::memset(&o, 0xff, sizeof o);
  sectorcrypt_channel_options_init(&o);
  EXPECT_EQ(o.size, sizeof o);
  EXPECT_EQ(o.ordered, 0);
  EXPECT_EQ(o.completion_fd, 0);
  Guarded<sectorcrypt_channel_options> g(sizeof(sectorcrypt_channel_options));
  sectorcrypt_channel_options_init_sized(g.get(), g.size);
  EXPECT_TRUE(g.guard_intact());
  Guarded<sectorcrypt_channel_options> tiny(4);  // smaller than the size member: 4 bytes
  sectorcrypt_channel_options_init_sized(tiny.get(), tiny.size);
  EXPECT_TRUE(tiny.guard_intact());

  EnginePtr e = make_engine(cpu_config(2));
  sectorcrypt_channel* ch = nullptr;
  sectorcrypt_channel_options zero{};  // never initialised
  EXPECT_EQ(sectorcrypt_channel_open(e.get(), &zero, &ch), SECTORCRYPT_EINVAL);
  EXPECT_NE(std::string(sectorcrypt_last_error()).find("init"), std::string::npos);
  sectorcrypt_channel_options small = o;
  small.size = offsetof(sectorcrypt_channel_options, completion_fd);
  EXPECT_EQ(sectorcrypt_channel_open(e.get(), &small, &ch), SECTORCRYPT_EINVAL);
  EXPECT_NE(std::string(sectorcrypt_last_error()).find("smaller"), std::string::npos);
  EXPECT_EQ(ch, nullptr);

  struct Newer {
    sectorcrypt_channel_options known;
    uint64_t future_member;
  } newer;
  sectorcrypt_channel_options_init_sized(&newer.known, sizeof newer);
  EXPECT_EQ(newer.future_member, 0u);  // zero-filled by init
  newer.future_member = 1;
  EXPECT_EQ(sectorcrypt_channel_open(e.get(), &newer.known, &ch), SECTORCRYPT_EINVAL);
  EXPECT_NE(std::string(sectorcrypt_last_error()).find("does not know"), std::string::npos);
  EXPECT_EQ(ch, nullptr);
  newer.future_member = 0;
  newer.known.ordered = 1;
  EXPECT_EQ(sectorcrypt_channel_open(e.get(), &newer.known, &ch), SECTORCRYPT_OK);
  EXPECT_NE(ch, nullptr);

  // Completions into larger elements: stepped by their size, the rest zeroed.
  const sectorcrypt_key k = add_random_key(e.get());
  std::vector<std::unique_ptr<Job>> jobs;
  std::vector<sectorcrypt_request> reqs;
  for (std::size_t i = 0; i < 3; ++i) {
    jobs.push_back(std::make_unique<Job>(512, i));
    reqs.push_back(jobs.back()->request(k, as_user_data(i)));
  }
  std::size_t accepted = 0;
  ASSERT_EQ(sectorcrypt_channel_submit(ch, reqs.data(), 3, &accepted), SECTORCRYPT_OK);
  struct NewerCompletion {
    sectorcrypt_completion known;
    uint64_t future_member;
  } nc[4];
  std::memset(nc, 0xee, sizeof nc);
  ASSERT_EQ(sectorcrypt_channel_wait_sized(ch, &nc[0].known, 4, sizeof nc[0], 3, 10'000'000), 3);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(index_of(nc[i].known), i);  // ordered
    EXPECT_EQ(nc[i].known.bytes, 512u);
    EXPECT_EQ(nc[i].future_member, 0u);
  }
  EXPECT_EQ(nc[3].future_member, 0xeeeeeeeeeeeeeeeeull);  // not filled
}

// A caller built before channels: its config and stats end before the channel members.
// It gets their defaults and is never written past.
TEST(CApiChannelEdge, PreChannelConfigAndStatsLayouts) {
  constexpr std::size_t kOldConfig = offsetof(sectorcrypt_config, channel_count);
  constexpr std::size_t kOldStats = offsetof(sectorcrypt_stats, channel_requests);
  static_assert(kOldConfig % alignof(sectorcrypt_config) == 0);
  Guarded<sectorcrypt_config> old(kOldConfig);
  sectorcrypt_config_init_sized(old.get(), old.size);
  EXPECT_TRUE(old.guard_intact());
  old.get()->backend = SECTORCRYPT_BACKEND_CPU;
  old.get()->threads = 1;
  sectorcrypt_engine* raw = nullptr;
  ASSERT_EQ(sectorcrypt_create(old.get(), &raw), SECTORCRYPT_OK) << sectorcrypt_last_error();
  EnginePtr e(raw);
  sectorcrypt_config full;
  ASSERT_EQ(sectorcrypt_get_config(e.get(), &full), SECTORCRYPT_OK);
  EXPECT_EQ(full.channel_count, 8u);
  EXPECT_EQ(full.channel_depth, 64u);
  EXPECT_EQ(full.inline_max_bytes, 65536u);
  Guarded<sectorcrypt_config> got(kOldConfig);
  ASSERT_EQ(sectorcrypt_get_config_sized(e.get(), got.get(), got.size), SECTORCRYPT_OK);
  EXPECT_TRUE(got.guard_intact());

  sectorcrypt_config cfg = cpu_config(3, 5, 1024);
  sectorcrypt_engine* raw2 = nullptr;
  ASSERT_EQ(sectorcrypt_create(&cfg, &raw2), SECTORCRYPT_OK) << sectorcrypt_last_error();
  EnginePtr e2(raw2);
  ASSERT_EQ(sectorcrypt_get_config(e2.get(), &full), SECTORCRYPT_OK);
  EXPECT_EQ(full.channel_count, 3u);
  EXPECT_EQ(full.channel_depth, 5u);
  EXPECT_EQ(full.inline_max_bytes, 1024u);

  const sectorcrypt_key k = add_random_key(e.get());
  sectorcrypt_channel* ch = open_channel(e.get());
  ASSERT_NE(ch, nullptr);
  Job j(512, 3);
  sectorcrypt_request r = j.request(k, nullptr);
  std::size_t accepted = 0;
  ASSERT_EQ(sectorcrypt_channel_submit(ch, &r, 1, &accepted), SECTORCRYPT_OK);
  EXPECT_EQ(reap(ch, 1).size(), 1u);
  Guarded<sectorcrypt_stats> st(kOldStats);
  ASSERT_EQ(sectorcrypt_get_stats_sized(e.get(), st.get(), st.size), SECTORCRYPT_OK);
  EXPECT_TRUE(st.guard_intact());
  EXPECT_EQ(st.get()->requests, 1u);
  sectorcrypt_stats now{};
  ASSERT_EQ(sectorcrypt_get_stats(e.get(), &now), SECTORCRYPT_OK);
  EXPECT_EQ(now.channel_requests, 1u);
}

}  // namespace
