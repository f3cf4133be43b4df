// The C API's channels: batch submit and its prefix rule, "full" against "invalid", the
// channel limit, close, ordered completion, callbacks on the owner inside poll, the
// eventfd, many threads each on its own channel, shutdown, the new config and stats
// members. Results are checked against sectorcrypt_crypt() on the same engine, which
// the other C API tests hold to the known answers.
#include <sectorcrypt.h>

#include <gtest/gtest.h>

#include <poll.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Engine {
  sectorcrypt_engine* e = nullptr;
  sectorcrypt_key key = 0;
  ~Engine() { sectorcrypt_destroy(e); }
};

void create(Engine* out, size_t channels = 4, size_t depth = 16, size_t inline_max = 4096) {
  sectorcrypt_config cfg;
  sectorcrypt_config_init(&cfg);
  cfg.backend = SECTORCRYPT_BACKEND_CPU;
  cfg.threads = 2;
  cfg.slot_count = 4;
  cfg.slot_bytes = 65536;
  cfg.channel_count = channels;
  cfg.channel_depth = depth;
  cfg.inline_max_bytes = inline_max;
  ASSERT_EQ(sectorcrypt_create(&cfg, &out->e), SECTORCRYPT_OK) << sectorcrypt_last_error();
  uint8_t k[64];
  for (int i = 0; i < 64; ++i) k[i] = static_cast<uint8_t>(i * 13 + 5);
  ASSERT_EQ(sectorcrypt_add_key(out->e, k, sizeof k, 0, &out->key), SECTORCRYPT_OK);
}

// A request's buffers and the result sectorcrypt_crypt() gives for them.
struct Job {
  std::vector<uint8_t> input, work, out, want;
  struct iovec src{}, dst{};
  uint64_t start = 0;
  bool in_place = false;

  Job(Engine& e, size_t bytes, uint64_t seed, bool in_place_) : in_place(in_place_) {
    std::mt19937_64 g(seed);
    input.resize(bytes);
    for (auto& b : input) b = static_cast<uint8_t>(g());
    work = input;
    out.assign(bytes, 0);
    want.assign(bytes, 0);
    start = seed % 100000;
    sectorcrypt_format f;
    sectorcrypt_format_init(&f);
    EXPECT_EQ(sectorcrypt_crypt(e.e, e.key, SECTORCRYPT_ENCRYPT, &f, start, input.data(),
                                want.data(), bytes),
              SECTORCRYPT_OK);
  }
  sectorcrypt_request request(const Engine& e, void* user) {
    sectorcrypt_request r;
    sectorcrypt_request_init(&r);
    r.key = e.key;
    r.start_sector = start;
    src = {work.data(), work.size()};
    r.src = &src;
    r.src_count = 1;
    if (!in_place) {
      dst = {out.data(), out.size()};
      r.dst = &dst;
      r.dst_count = 1;
    }
    r.user_data = user;
    return r;
  }
  bool correct() const { return (in_place ? work : out) == want; }
};

size_t reap(sectorcrypt_channel* ch, std::vector<sectorcrypt_completion>* got, size_t n) {
  sectorcrypt_completion buf[8];
  for (int tries = 0; got->size() < n && tries < 1000; ++tries) {
    const int k = sectorcrypt_channel_wait(ch, buf, 8, 1, 100000);
    EXPECT_GE(k, 0);
    for (int i = 0; i < k; ++i) got->push_back(buf[i]);
  }
  return got->size();
}

TEST(CapiChannel, BatchSubmitMatchesSyncCrypt) {
  Engine e;
  create(&e);
  sectorcrypt_channel* ch = nullptr;
  ASSERT_EQ(sectorcrypt_channel_open(e.e, nullptr, &ch), SECTORCRYPT_OK) << sectorcrypt_last_error();
  std::vector<std::unique_ptr<Job>> jobs;
  std::vector<sectorcrypt_request> reqs;
  const size_t sizes[] = {512, 4096, 65536, 1024, 131072, 2048};
  for (size_t i = 0; i < 12; ++i) {
    jobs.push_back(std::make_unique<Job>(e, sizes[i % 6], i + 1, i % 2 == 0));
    reqs.push_back(jobs.back()->request(e, reinterpret_cast<void*>(i)));
  }
  size_t accepted = 99;
  ASSERT_EQ(sectorcrypt_channel_submit(ch, reqs.data(), reqs.size(), &accepted), SECTORCRYPT_OK)
      << sectorcrypt_last_error();
  EXPECT_EQ(accepted, reqs.size());
  std::vector<sectorcrypt_completion> got;
  ASSERT_EQ(reap(ch, &got, reqs.size()), reqs.size());
  std::vector<int> seen(reqs.size(), 0);
  for (const auto& c : got) {
    EXPECT_EQ(c.status, SECTORCRYPT_OK) << c.message;
    EXPECT_STREQ(c.message, "ok");
    EXPECT_EQ(c.slot, SECTORCRYPT_NO_SLOT);
    const auto i = reinterpret_cast<size_t>(c.user_data);
    ASSERT_LT(i, reqs.size());
    EXPECT_EQ(c.bytes, jobs[i]->input.size());
    ++seen[i];
  }
  for (size_t i = 0; i < jobs.size(); ++i) {
    EXPECT_EQ(seen[i], 1) << "request " << i;
    EXPECT_TRUE(jobs[i]->correct()) << "request " << i;
  }
  sectorcrypt_stats st;
  ASSERT_EQ(sectorcrypt_get_stats(e.e, &st), SECTORCRYPT_OK);
  EXPECT_EQ(st.channel_requests, reqs.size());
  EXPECT_GT(st.inline_requests, 0u);
  EXPECT_EQ(sectorcrypt_channel_close(e.e, ch), SECTORCRYPT_OK);
}

TEST(CapiChannel, FullIsWouldBlockAndInvalidStopsTheBatch) {
  Engine e;
  create(&e, 2, 4, 0);  // depth 4, everything through the workers
  sectorcrypt_channel* ch = nullptr;
  ASSERT_EQ(sectorcrypt_channel_open(e.e, nullptr, &ch), SECTORCRYPT_OK);
  std::vector<std::unique_ptr<Job>> jobs;
  std::vector<sectorcrypt_request> reqs;
  for (size_t i = 0; i < 6; ++i) {
    jobs.push_back(std::make_unique<Job>(e, 512, 50 + i, true));
    reqs.push_back(jobs.back()->request(e, reinterpret_cast<void*>(i)));
  }
  size_t accepted = 0;
  EXPECT_EQ(sectorcrypt_channel_submit(ch, reqs.data(), reqs.size(), &accepted), SECTORCRYPT_EWOULDBLOCK);
  EXPECT_EQ(accepted, 4u);
  EXPECT_NE(std::string(sectorcrypt_last_error()).find("poll"), std::string::npos)
      << sectorcrypt_last_error();
  EXPECT_EQ(sectorcrypt_channel_close(e.e, ch), SECTORCRYPT_EWOULDBLOCK) << "requests unreaped";
  std::vector<sectorcrypt_completion> got;
  ASSERT_EQ(reap(ch, &got, 4), 4u);
  // The rest, with an invalid request (a bad direction: refused by the C layer) and then
  // an engine refusal (not whole sectors) in the middle.
  sectorcrypt_request bad = reqs[5];
  bad.direction = 7;
  sectorcrypt_request rest[] = {reqs[4], bad, reqs[5]};
  EXPECT_EQ(sectorcrypt_channel_submit(ch, rest, 3, &accepted), SECTORCRYPT_EINVAL);
  EXPECT_EQ(accepted, 1u);
  struct iovec odd = {jobs[5]->work.data(), 700};
  sectorcrypt_request short_one = reqs[5];
  short_one.src = &odd;
  sectorcrypt_request again[] = {short_one, reqs[5]};
  EXPECT_EQ(sectorcrypt_channel_submit(ch, again, 2, &accepted), SECTORCRYPT_EINVAL_LENGTH);
  EXPECT_EQ(accepted, 0u);
  ASSERT_EQ(reap(ch, &got, 5), 5u);
  sectorcrypt_completion none[2];
  EXPECT_EQ(sectorcrypt_channel_wait(ch, none, 2, 1, 20000), 0) << "refused requests must not complete";
  for (size_t i = 0; i < 5; ++i) EXPECT_TRUE(jobs[i]->correct()) << i;
  EXPECT_EQ(jobs[5]->work, jobs[5]->input) << "refused: untouched";
  // Null arguments.
  EXPECT_EQ(sectorcrypt_channel_submit(ch, reqs.data(), 1, nullptr), SECTORCRYPT_EINVAL);
  EXPECT_EQ(sectorcrypt_channel_submit(nullptr, reqs.data(), 1, &accepted), SECTORCRYPT_EINVAL);
  EXPECT_EQ(sectorcrypt_channel_poll(nullptr, none, 2), SECTORCRYPT_EINVAL);
  EXPECT_EQ(sectorcrypt_channel_fd(nullptr), SECTORCRYPT_EINVAL);
  EXPECT_EQ(sectorcrypt_channel_close(e.e, ch), SECTORCRYPT_OK);
  EXPECT_EQ(sectorcrypt_channel_close(e.e, ch), SECTORCRYPT_EINVAL_BUFFER) << "closed twice";
}

TEST(CapiChannel, OpeningMoreThanConfiguredNamesTheLimit) {
  Engine e;
  create(&e, 2);
  sectorcrypt_channel *a = nullptr, *b = nullptr, *c = nullptr;
  ASSERT_EQ(sectorcrypt_channel_open(e.e, nullptr, &a), SECTORCRYPT_OK);
  ASSERT_EQ(sectorcrypt_channel_open(e.e, nullptr, &b), SECTORCRYPT_OK);
  EXPECT_EQ(sectorcrypt_channel_open(e.e, nullptr, &c), SECTORCRYPT_ENOMEM);
  EXPECT_NE(std::string(sectorcrypt_last_error()).find("channel_count"), std::string::npos)
      << sectorcrypt_last_error();
  EXPECT_EQ(sectorcrypt_channel_close(e.e, a), SECTORCRYPT_OK);
  EXPECT_EQ(sectorcrypt_channel_open(e.e, nullptr, &c), SECTORCRYPT_OK);
  sectorcrypt_config got;
  ASSERT_EQ(sectorcrypt_get_config(e.e, &got), SECTORCRYPT_OK);
  EXPECT_EQ(got.channel_count, 2u);
  EXPECT_EQ(got.channel_depth, 16u);
  EXPECT_EQ(got.inline_max_bytes, 4096u);
  // Options from a newer header with members this library does not know: refused.
  unsigned char bigger[sizeof(sectorcrypt_channel_options) + 8] = {};
  auto* o = reinterpret_cast<sectorcrypt_channel_options*>(bigger);
  sectorcrypt_channel_options_init_sized(o, sizeof bigger);
  EXPECT_EQ(o->size, sizeof bigger);
  bigger[sizeof(sectorcrypt_channel_options) + 3] = 1;
  EXPECT_EQ(sectorcrypt_channel_open(e.e, o, &a), SECTORCRYPT_EINVAL);
}

// Ordered: in submission order although the small ones finish inline at once and the
// large ones later on the workers.
TEST(CapiChannel, OrderedChannelKeepsSubmissionOrder) {
  Engine e;
  create(&e, 2, 16, 4096);
  sectorcrypt_channel_options o;
  sectorcrypt_channel_options_init(&o);
  o.ordered = 1;
  sectorcrypt_channel* ch = nullptr;
  ASSERT_EQ(sectorcrypt_channel_open(e.e, &o, &ch), SECTORCRYPT_OK);
  std::vector<std::unique_ptr<Job>> jobs;
  std::vector<sectorcrypt_request> reqs;
  for (size_t i = 0; i < 16; ++i) {
    jobs.push_back(std::make_unique<Job>(e, i % 4 == 0 ? 262144 : 512, 70 + i, i % 2 == 1));
    reqs.push_back(jobs.back()->request(e, reinterpret_cast<void*>(i)));
  }
  size_t accepted = 0;
  ASSERT_EQ(sectorcrypt_channel_submit(ch, reqs.data(), reqs.size(), &accepted), SECTORCRYPT_OK);
  std::vector<sectorcrypt_completion> got;
  ASSERT_EQ(reap(ch, &got, reqs.size()), reqs.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(reinterpret_cast<size_t>(got[i].user_data), i) << "position " << i;
    EXPECT_TRUE(jobs[i]->correct());
  }
}

struct CallbackLog {
  std::atomic<int> calls{0};
  std::thread::id thread;
  bool other_thread = false;
};

void on_done(int status, const char* message, void* user) {
  auto* log = static_cast<CallbackLog*>(user);
  EXPECT_EQ(status, SECTORCRYPT_OK) << message;
  if (std::this_thread::get_id() != log->thread) log->other_thread = true;
  ++log->calls;
}

TEST(CapiChannel, CallbacksRunOnTheOwnerInsidePoll) {
  Engine e;
  create(&e);
  sectorcrypt_channel* ch = nullptr;
  ASSERT_EQ(sectorcrypt_channel_open(e.e, nullptr, &ch), SECTORCRYPT_OK);
  CallbackLog log;
  log.thread = std::this_thread::get_id();
  Job a(e, 512, 90, true), b(e, 65536, 91, false);
  sectorcrypt_request r[2] = {a.request(e, &log), b.request(e, &log)};
  r[0].callback = r[1].callback = &on_done;
  size_t accepted = 0;
  ASSERT_EQ(sectorcrypt_channel_submit(ch, r, 2, &accepted), SECTORCRYPT_OK);
  usleep(20000);
  EXPECT_EQ(log.calls.load(), 0) << "callbacks run only when the owner reaps";
  for (int tries = 0; log.calls.load() < 2 && tries < 1000; ++tries) {
    EXPECT_EQ(sectorcrypt_channel_wait(ch, nullptr, 0, 1, 100000), 0);
  }
  EXPECT_EQ(log.calls.load(), 2);
  EXPECT_FALSE(log.other_thread);
  EXPECT_TRUE(a.correct());
  EXPECT_TRUE(b.correct());
}

TEST(CapiChannel, CompletionFdWakesAPollLoop) {
  Engine e;
  create(&e, 2, 16, 0);
  sectorcrypt_channel_options o;
  sectorcrypt_channel_options_init(&o);
  o.completion_fd = 1;
  sectorcrypt_channel* ch = nullptr;
  ASSERT_EQ(sectorcrypt_channel_open(e.e, &o, &ch), SECTORCRYPT_OK);
  const int fd = sectorcrypt_channel_fd(ch);
  ASSERT_GE(fd, 0);
  struct pollfd p = {fd, POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 0), 0);
  Job j(e, 4096, 95, false);
  sectorcrypt_request r = j.request(e, nullptr);
  size_t accepted = 0;
  ASSERT_EQ(sectorcrypt_channel_submit(ch, &r, 1, &accepted), SECTORCRYPT_OK);
  ASSERT_EQ(poll(&p, 1, 10000), 1);
  uint64_t v = 0;
  EXPECT_EQ(read(fd, &v, sizeof v), static_cast<ssize_t>(sizeof v));
  sectorcrypt_completion c;
  EXPECT_EQ(sectorcrypt_channel_poll(ch, &c, 1), 1);
  EXPECT_TRUE(j.correct());
}

// Eight threads, each on its own channel, each request checked and counted once.
TEST(CapiChannel, ManyThreadsOnTheirOwnChannels) {
  Engine e;
  create(&e, 8, 16, 4096);
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      sectorcrypt_channel* ch = nullptr;
      if (sectorcrypt_channel_open(e.e, nullptr, &ch) != SECTORCRYPT_OK) {
        ++bad;
        return;
      }
      std::vector<std::unique_ptr<Job>> jobs;
      for (int i = 0; i < 40; ++i) {
        jobs.push_back(std::make_unique<Job>(e, 512 * (1 + (i * 7 + t) % 24), t * 100 + i, i % 2));
      }
      std::vector<sectorcrypt_request> reqs;
      for (size_t i = 0; i < jobs.size(); ++i) reqs.push_back(jobs[i]->request(e, reinterpret_cast<void*>(i)));
      std::vector<int> count(jobs.size(), 0);
      size_t next = 0, done = 0;
      while (done < reqs.size()) {
        if (next < reqs.size()) {
          size_t acc = 0;
          const int rc = sectorcrypt_channel_submit(ch, &reqs[next], reqs.size() - next, &acc);
          if (rc != SECTORCRYPT_OK && rc != SECTORCRYPT_EWOULDBLOCK) ++bad;
          next += acc;
        }
        sectorcrypt_completion buf[8];
        const int k = sectorcrypt_channel_wait(ch, buf, 8, 1, 1000000);
        for (int i = 0; i < k; ++i) {
          if (buf[i].status != SECTORCRYPT_OK) ++bad;
          ++count[reinterpret_cast<size_t>(buf[i].user_data)];
        }
        done += k > 0 ? static_cast<size_t>(k) : 0;
      }
      for (size_t i = 0; i < jobs.size(); ++i) {
        if (count[i] != 1 || !jobs[i]->correct()) ++bad;
      }
      if (sectorcrypt_channel_close(e.e, ch) != SECTORCRYPT_OK) ++bad;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  sectorcrypt_stats st;
  ASSERT_EQ(sectorcrypt_get_stats(e.e, &st), SECTORCRYPT_OK);
  EXPECT_EQ(st.channel_requests, 8u * 40);
}

TEST(CapiChannel, ShutdownRefusesNewRequestsAndCompletesAcceptedOnes) {
  Engine e;
  create(&e, 2, 16, 0);
  sectorcrypt_channel* ch = nullptr;
  ASSERT_EQ(sectorcrypt_channel_open(e.e, nullptr, &ch), SECTORCRYPT_OK);
  std::vector<std::unique_ptr<Job>> jobs;
  std::vector<sectorcrypt_request> reqs;
  for (size_t i = 0; i < 3; ++i) {
    jobs.push_back(std::make_unique<Job>(e, 4096, 120 + i, true));
    reqs.push_back(jobs.back()->request(e, reinterpret_cast<void*>(i)));
  }
  // Every slot lent: the accepted requests stay queued until the shutdown cancels them.
  sectorcrypt_slot held[4];
  for (auto& h : held) ASSERT_EQ(sectorcrypt_acquire_slot(e.e, &h), SECTORCRYPT_OK);
  size_t accepted = 0;
  ASSERT_EQ(sectorcrypt_channel_submit(ch, reqs.data(), reqs.size(), &accepted), SECTORCRYPT_OK);
  ASSERT_EQ(sectorcrypt_shutdown(e.e), SECTORCRYPT_OK);
  EXPECT_EQ(sectorcrypt_channel_submit(ch, reqs.data(), 1, &accepted), SECTORCRYPT_ESHUTDOWN);
  EXPECT_EQ(accepted, 0u);
  std::vector<sectorcrypt_completion> got;
  ASSERT_EQ(reap(ch, &got, 3), 3u);
  for (const auto& c : got) {
    EXPECT_EQ(c.status, SECTORCRYPT_ESHUTDOWN) << c.message;
    EXPECT_EQ(jobs[reinterpret_cast<size_t>(c.user_data)]->work,
              jobs[reinterpret_cast<size_t>(c.user_data)]->input) << "cancelled: untouched";
  }
  for (auto& h : held) EXPECT_EQ(sectorcrypt_release_slot(e.e, &h), SECTORCRYPT_OK);
  EXPECT_EQ(sectorcrypt_channel_close(e.e, ch), SECTORCRYPT_OK);
}

}  // namespace
