// Channels (engine.h, class Channel): results against the reference on both ways a
// request can take (inline on the submitting thread, through the workers), batch submit
// and its prefix rule, "full" against "invalid", the channel limit, close, ordered and
// unordered completion, callbacks on the owner, the eventfd, many producers, shutdown in
// the middle.
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "tests/engine/engine_test_support.h"

namespace sectorcrypt::testing {
namespace {

constexpr SectorFormat kFmt{512, IvMode::plain64, false};

EngineConfig channel_config(std::size_t inline_max = 4096) {
  EngineConfig c = small_config();
  c.channel_count = 4;
  c.channel_depth = 16;
  c.inline_max_bytes = inline_max;
  return c;
}

// One request with its buffers and the reference result.
struct Job {
  std::vector<uint8_t> input, work, out, want;
  iovec sv[2] = {}, dv[1] = {};
  uint64_t start = 0;
  bool in_place = false;
  bool split = false;  // the source in two segments, one boundary inside a sector

  Job(const TestKey& k, std::size_t bytes, uint64_t seed, bool in_place_, bool split_)
      : in_place(in_place_), split(split_) {
    input = bytes_of(bytes, seed);
    work = input;
    out.assign(bytes, 0);
    start = seed * 97 % 100000;
    want = reference(k.ref, Direction::encrypt, kFmt, start, input);
  }
  Request request(const TestKey& k, void* ctx) {
    Request r;
    r.key = k.handle;
    r.format = kFmt;
    r.start_sector = start;
    const std::size_t cut = split ? std::min<std::size_t>(work.size() - 1, 300) : work.size();
    sv[0] = {work.data(), cut};
    sv[1] = {work.data() + cut, work.size() - cut};
    r.src = sv;
    r.src_count = split ? 2 : 1;
    if (!in_place) {
      dv[0] = {out.data(), out.size()};
      r.dst = dv;
      r.dst_count = 1;
    }
    r.user_context = ctx;
    return r;
  }
  bool correct() const { return (in_place ? work : out) == want; }
};

std::size_t reap_all(Channel& ch, std::vector<Completion>* got, std::size_t n) {
  Completion buf[16];
  while (got->size() < n) {
    const std::size_t k = ch.wait(buf, 16, 1, 5'000'000);
    if (k == 0 && ch.in_flight() == 0) break;
    got->insert(got->end(), buf, buf + k);
  }
  return got->size();
}

TEST(EngineChannel, InlineAndWorkerPathsMatchTheReference) {
  Watchdog dog(std::chrono::seconds(60), "channel round trip");
  auto e = make_engine(channel_config(4096));
  TestKey k = add_test_key(*e, 64, 1);
  Channel* ch = nullptr;
  ASSERT_TRUE(e->open_channel({}, &ch).ok());
  // 512 B..4 KiB go inline, 8..128 KiB (two slots and more) to the workers; half in
  // place, some with a sector split across segments (staged inline, gathered by workers).
  const std::size_t sizes[] = {512, 4096, 1024, 8192, 65536, 131072, 3584, 512 * 5};
  std::vector<std::unique_ptr<Job>> jobs;
  std::vector<Request> reqs;
  for (std::size_t i = 0; i < 16; ++i) {
    jobs.push_back(std::make_unique<Job>(k, sizes[i % 8], i + 1, i % 2 == 0, i % 3 == 0));
    reqs.push_back(jobs.back()->request(k, reinterpret_cast<void*>(i)));
  }
  std::size_t accepted = 0;
  const Status s = ch->submit(reqs.data(), reqs.size(), &accepted);
  ASSERT_TRUE(s.ok()) << s.message();
  ASSERT_EQ(accepted, reqs.size());
  std::vector<Completion> got;
  ASSERT_EQ(reap_all(*ch, &got, reqs.size()), reqs.size());
  std::set<std::size_t> seen;
  for (const Completion& c : got) {
    EXPECT_TRUE(c.status.ok()) << c.status.message();
    const auto i = reinterpret_cast<std::size_t>(c.user_context);
    EXPECT_TRUE(seen.insert(i).second) << "request " << i << " completed twice";
    EXPECT_EQ(c.bytes, jobs[i]->input.size());
    EXPECT_EQ(c.slot, UINT32_MAX);
  }
  for (std::size_t i = 0; i < jobs.size(); ++i) EXPECT_TRUE(jobs[i]->correct()) << "request " << i;
  const EngineStats st = e->stats();
  EXPECT_EQ(st.channel_requests, reqs.size());
  EXPECT_GT(st.inline_requests, 0u);
  EXPECT_LT(st.inline_requests, reqs.size()) << "the large ones must go to the workers";
  EXPECT_EQ(st.requests, reqs.size());
  EXPECT_EQ(ch->in_flight(), 0u);
  EXPECT_TRUE(e->close_channel(ch).ok());
}

TEST(EngineChannel, InlineOffSendsEverythingToTheWorkers) {
  auto e = make_engine(channel_config(0));
  TestKey k = add_test_key(*e, 32, 2);
  Channel* ch = nullptr;
  ASSERT_TRUE(e->open_channel({}, &ch).ok());
  Job j(k, 4096, 3, false, false);
  Request r = j.request(k, nullptr);
  ASSERT_TRUE(ch->submit(r).ok());
  std::vector<Completion> got;
  ASSERT_EQ(reap_all(*ch, &got, 1), 1u);
  EXPECT_TRUE(got[0].status.ok());
  EXPECT_TRUE(j.correct());
  EXPECT_EQ(e->stats().inline_requests, 0u);
  EXPECT_EQ(e->stats().batches, 1u);
}

TEST(EngineChannel, FullChannelStopsTheBatchAndRefusesWithWouldBlock) {
  auto e = make_engine(channel_config(0));  // workers: requests stay in flight a while
  TestKey k = add_test_key(*e, 64, 4);
  Channel* ch = nullptr;
  ASSERT_TRUE(e->open_channel({}, &ch).ok());
  std::vector<std::unique_ptr<Job>> jobs;
  std::vector<Request> reqs;
  for (std::size_t i = 0; i < 20; ++i) {
    jobs.push_back(std::make_unique<Job>(k, 512, 100 + i, true, false));
    reqs.push_back(jobs.back()->request(k, reinterpret_cast<void*>(i)));
  }
  std::size_t accepted = 0;
  Status s = ch->submit(reqs.data(), reqs.size(), &accepted);
  EXPECT_EQ(s.code(), Errc::would_block) << s.message();
  EXPECT_EQ(accepted, ch->depth());
  EXPECT_NE(std::string(s.message()).find("poll()"), std::string::npos) << s.message();
  EXPECT_EQ(ch->in_flight(), ch->depth());
  // Nothing reaped yet: still full, however long the workers have had.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::size_t again = 0;
  EXPECT_EQ(ch->submit(&reqs[accepted], 1, &again).code(), Errc::would_block);
  EXPECT_EQ(again, 0u);
  // Reap, then the rest goes in.
  std::vector<Completion> got;
  ASSERT_EQ(reap_all(*ch, &got, accepted), accepted);
  s = ch->submit(&reqs[accepted], reqs.size() - accepted, &again);
  EXPECT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(again, reqs.size() - accepted);
  ASSERT_EQ(reap_all(*ch, &got, reqs.size()), reqs.size());
  for (auto& j : jobs) EXPECT_TRUE(j->correct());
  EXPECT_GE(e->stats().would_block, 2u);
}

TEST(EngineChannel, InvalidRequestStopsTheBatchWithItsOwnError) {
  auto e = make_engine(channel_config(4096));
  TestKey k = add_test_key(*e, 64, 5);
  Channel* ch = nullptr;
  ASSERT_TRUE(e->open_channel({}, &ch).ok());
  std::vector<std::unique_ptr<Job>> jobs;
  std::vector<Request> reqs;
  for (std::size_t i = 0; i < 5; ++i) {
    jobs.push_back(std::make_unique<Job>(k, i == 1 ? 65536 : 1024, 200 + i, false, false));
    reqs.push_back(jobs.back()->request(k, reinterpret_cast<void*>(i)));
  }
  iovec bad{jobs[2]->work.data(), 700};  // not whole sectors
  reqs[2].src = &bad;
  reqs[2].src_count = 1;
  std::size_t accepted = 99;
  const Status s = ch->submit(reqs.data(), reqs.size(), &accepted);
  EXPECT_EQ(s.code(), Errc::invalid_length) << s.message();
  EXPECT_EQ(accepted, 2u);
  std::vector<Completion> got;
  ASSERT_EQ(reap_all(*ch, &got, 2), 2u);
  Completion extra[4];
  EXPECT_EQ(ch->wait(extra, 4, 1, 20'000), 0u) << "the refused request must not complete";
  EXPECT_TRUE(jobs[0]->correct());
  EXPECT_TRUE(jobs[1]->correct());
  EXPECT_EQ(jobs[2]->out, std::vector<uint8_t>(jobs[2]->out.size(), 0)) << "refused: untouched";
  EXPECT_EQ(jobs[3]->out, std::vector<uint8_t>(jobs[3]->out.size(), 0)) << "after the refusal";
  // A stale key and null arguments are refused the same way, with nothing taken.
  Request r = jobs[3]->request(k, nullptr);
  r.key = KeyHandle{12345};
  EXPECT_EQ(ch->submit(r).code(), Errc::invalid_key);
  EXPECT_EQ(ch->submit(&r, 1, nullptr).code(), Errc::invalid_buffer);
  EXPECT_EQ(ch->in_flight(), 0u);
}

TEST(EngineChannel, OpeningMoreThanConfiguredFailsClearly) {
  EngineConfig c = channel_config();
  c.channel_count = 2;
  auto e = make_engine(c);
  Channel *a = nullptr, *b = nullptr, *x = nullptr;
  ASSERT_TRUE(e->open_channel({}, &a).ok());
  ASSERT_TRUE(e->open_channel({}, &b).ok());
  EXPECT_NE(a, b);
  const Status s = e->open_channel({}, &x);
  EXPECT_EQ(s.code(), Errc::resource_exhausted);
  EXPECT_NE(std::string(s.message()).find("channel_count"), std::string::npos) << s.message();
  EXPECT_EQ(x, nullptr);
  ASSERT_TRUE(e->close_channel(a).ok());
  EXPECT_EQ(e->close_channel(a).code(), Errc::invalid_buffer) << "closed twice";
  ASSERT_TRUE(e->open_channel({}, &x).ok());
  EXPECT_EQ(x, a) << "the closed channel is lent again";
  Channel* none = nullptr;
  EngineConfig zero = channel_config();
  zero.channel_count = 0;
  auto e0 = make_engine(zero);
  EXPECT_EQ(e0->open_channel({}, &none).code(), Errc::resource_exhausted);
  EXPECT_EQ(e->close_channel(nullptr).code(), Errc::invalid_buffer);
  EngineConfig bad = channel_config();
  bad.channel_depth = 0;
  std::unique_ptr<Engine> eb;
  EXPECT_EQ(Engine::create(bad, &eb).code(), Errc::invalid_length);
  bad = channel_config();
  bad.inline_max_bytes = 1000;
  EXPECT_EQ(Engine::create(bad, &eb).code(), Errc::invalid_length);
}

TEST(EngineChannel, CloseWithUnreapedRequestsIsRefused) {
  auto e = make_engine(channel_config(4096));
  TestKey k = add_test_key(*e, 64, 6);
  Channel* ch = nullptr;
  ASSERT_TRUE(e->open_channel({}, &ch).ok());
  Job j(k, 512, 7, true, false);
  Request r = j.request(k, nullptr);
  ASSERT_TRUE(ch->submit(r).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(e->close_channel(ch).code(), Errc::would_block);
  std::vector<Completion> got;
  ASSERT_EQ(reap_all(*ch, &got, 1), 1u);
  EXPECT_TRUE(e->close_channel(ch).ok());
  EXPECT_EQ(ch->submit(r).code(), Errc::invalid_buffer) << "submit on a closed channel";
}

// Ordered: completions in submission order though small ones finish inline at once and
// large ones later on the workers. Unordered: the small ones overtake.
void run_order(bool ordered) {
  auto e = make_engine(channel_config(4096));
  TestKey k = add_test_key(*e, 64, 8);
  Channel* ch = nullptr;
  ChannelOptions o;
  o.ordered = ordered;
  ASSERT_TRUE(e->open_channel(o, &ch).ok());
  std::vector<std::unique_ptr<Job>> jobs;
  std::vector<Request> reqs;
  for (std::size_t i = 0; i < 16; ++i) {
    jobs.push_back(std::make_unique<Job>(k, i % 4 == 0 ? 262144 : 512, 300 + i, i % 2, false));
    reqs.push_back(jobs.back()->request(k, reinterpret_cast<void*>(i)));
  }
  std::size_t accepted = 0;
  ASSERT_TRUE(ch->submit(reqs.data(), reqs.size(), &accepted).ok());
  std::vector<Completion> got;
  ASSERT_EQ(reap_all(*ch, &got, reqs.size()), reqs.size());
  std::vector<std::size_t> order;
  for (const Completion& c : got) order.push_back(reinterpret_cast<std::size_t>(c.user_context));
  std::vector<std::size_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < sorted.size(); ++i) ASSERT_EQ(sorted[i], i) << "each exactly once";
  if (ordered) {
    EXPECT_EQ(order, sorted) << "ordered channel out of submission order";
  } else {
    EXPECT_NE(order, sorted) << "the inline 512 B requests should overtake 256 KiB ones";
  }
  for (auto& j : jobs) EXPECT_TRUE(j->correct());
}

TEST(EngineChannel, OrderedChannelCompletesInSubmissionOrder) { run_order(true); }
TEST(EngineChannel, UnorderedChannelCompletesAsRequestsFinish) { run_order(false); }

struct CallbackLog {
  std::vector<std::pair<std::size_t, std::thread::id>> calls;
  Channel* ch = nullptr;
  Request resubmit;
  bool resubmitted = false;
  Status resubmit_status;
};

void on_channel_done(const Status& s, void* ctx) {
  auto* log = static_cast<CallbackLog*>(ctx);
  EXPECT_TRUE(s.ok()) << s.message();
  log->calls.emplace_back(log->calls.size(), std::this_thread::get_id());
  if (!log->resubmitted) {  // a callback may submit on its channel
    log->resubmitted = true;
    log->resubmit_status = log->ch->submit(log->resubmit);
  }
}

TEST(EngineChannel, CallbacksRunOnTheOwnerInsidePoll) {
  auto e = make_engine(channel_config(4096));
  TestKey k = add_test_key(*e, 64, 9);
  Channel* ch = nullptr;
  ASSERT_TRUE(e->open_channel({}, &ch).ok());
  CallbackLog log;
  log.ch = ch;
  Job a(k, 512, 10, true, false), b(k, 65536, 11, false, false), c(k, 1024, 12, false, false);
  Request ra = a.request(k, &log), rb = b.request(k, &log);
  ra.callback = rb.callback = &on_channel_done;
  log.resubmit = c.request(k, nullptr);  // no callback: a Completion
  Request both[] = {ra, rb};
  std::size_t accepted = 0;
  ASSERT_TRUE(ch->submit(both, 2, &accepted).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(log.calls.empty()) << "a channel's callbacks run only inside poll/wait";
  Completion out[4];
  std::size_t completions = 0;
  Watchdog dog(std::chrono::seconds(30), "callbacks");
  while (ch->in_flight() != 0) completions += ch->wait(out, 4, 1, 1'000'000);
  ASSERT_EQ(log.calls.size(), 2u);
  for (auto& [i, tid] : log.calls) EXPECT_EQ(tid, std::this_thread::get_id());
  EXPECT_TRUE(log.resubmit_status.ok()) << log.resubmit_status.message();
  EXPECT_EQ(completions, 1u) << "the resubmitted request, which has no callback";
  EXPECT_TRUE(a.correct());
  EXPECT_TRUE(b.correct());
  EXPECT_TRUE(c.correct());
}

TEST(EngineChannel, CompletionFdBecomesReadable) {
  auto e = make_engine(channel_config(0));  // through the workers
  TestKey k = add_test_key(*e, 64, 13);
  Channel* ch = nullptr;
  ChannelOptions o;
  o.completion_fd = true;
  ASSERT_TRUE(e->open_channel(o, &ch).ok());
  const int fd = ch->completion_fd();
  ASSERT_GE(fd, 0);
  pollfd p{fd, POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0) << "readable before anything was submitted";
  Job j(k, 4096, 14, false, false);
  Request r = j.request(k, nullptr);
  ASSERT_TRUE(ch->submit(r).ok());
  ASSERT_EQ(::poll(&p, 1, 10'000), 1) << "no wake-up within 10 s";
  uint64_t v = 0;
  EXPECT_EQ(::read(fd, &v, sizeof(v)), static_cast<ssize_t>(sizeof(v)));
  Completion c[2];
  EXPECT_EQ(ch->poll(c, 2), 1u);
  EXPECT_TRUE(j.correct());
  // Inline completions signal too (once per submit call).
  auto e2 = make_engine(channel_config(4096));
  TestKey k2 = add_test_key(*e2, 64, 15);
  Channel* ch2 = nullptr;
  ASSERT_TRUE(e2->open_channel(o, &ch2).ok());
  Job j2(k2, 512, 16, true, false);
  Request r2 = j2.request(k2, nullptr);
  ASSERT_TRUE(ch2->submit(r2).ok());
  pollfd p2{ch2->completion_fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&p2, 1, 10'000), 1);
}

// Producers on their own channels, each checking every result and that every accepted
// request completes exactly once. inline_max 0: every request through the workers'
// lock-free intake (channel_intake.cc), as on a GPU.
void run_many_producers(int producers, std::size_t inline_max, std::size_t slots = 4,
                        uint32_t idle_spin_us = EngineConfig{}.idle_spin_us) {
  Watchdog dog(std::chrono::seconds(120), "many producers");
  EngineConfig c = channel_config(inline_max);
  c.channel_count = static_cast<std::size_t>(producers);
  c.slot_count = slots;
  c.idle_spin_us = idle_spin_us;
  auto e = make_engine(c);
  TestKey keys[3] = {add_test_key(*e, 64, 20), add_test_key(*e, 32, 21), add_test_key(*e, 64, 22)};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < producers; ++t) {
    threads.emplace_back([&, t] {
      Channel* ch = nullptr;
      if (!e->open_channel({}, &ch).ok()) {
        ++failures;
        return;
      }
      std::mt19937_64 g(t);
      std::vector<std::unique_ptr<Job>> jobs;
      for (int i = 0; i < 24; ++i) {
        const TestKey& k = keys[i % 3];
        const std::size_t size = (g() % 2 ? 1 + g() % 8 : 1 + g() % 64) * 512;
        jobs.push_back(std::make_unique<Job>(k, size, t * 1000 + i, g() % 2, g() % 4 == 0));
      }
      std::vector<int> count(jobs.size());
      for (int round = 0; round < 20; ++round) {
        std::vector<Request> reqs;
        for (std::size_t i = 0; i < jobs.size(); ++i) {
          Job& j = *jobs[i];
          j.work = j.input;
          std::fill(j.out.begin(), j.out.end(), 0);
          reqs.push_back(j.request(keys[i % 3], reinterpret_cast<void*>(i)));
        }
        std::fill(count.begin(), count.end(), 0);
        std::size_t next = 0;
        std::vector<Completion> got;
        while (got.size() < reqs.size()) {
          if (next < reqs.size()) {
            std::size_t acc = 0;
            const Status s = ch->submit(&reqs[next], reqs.size() - next, &acc);
            if (!s.ok() && s.code() != Errc::would_block) ++failures;
            next += acc;
          }
          Completion buf[16];
          const std::size_t n = ch->wait(buf, 16, 1, 1'000'000);
          got.insert(got.end(), buf, buf + n);
        }
        for (const Completion& cpl : got) {
          if (!cpl.status.ok()) ++failures;
          ++count[reinterpret_cast<std::size_t>(cpl.user_context)];
        }
        for (std::size_t i = 0; i < jobs.size(); ++i) {
          if (count[i] != 1 || !jobs[i]->correct()) ++failures;
        }
      }
      if (!e->close_channel(ch).ok()) ++failures;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  const EngineStats st = e->stats();
  EXPECT_EQ(st.channel_requests, static_cast<uint64_t>(producers) * 24 * 20);
  EXPECT_EQ(st.requests, st.channel_requests);
  EXPECT_EQ(st.latency.count(), st.requests);
  if (inline_max == 0) {
    EXPECT_EQ(st.inline_requests, 0u);
  }
}

TEST(EngineChannel, ManyProducersEachOnItsOwnChannel) { run_many_producers(8, 4096); }
TEST(EngineChannel, ManyProducersAllThroughTheWorkers) { run_many_producers(32, 0); }
// One slot and no polling: a worker often finds channel work waiting and no slot free.
// It must sleep until a slot comes back, not loop under the engine mutex, which would keep
// the completing worker from returning the slot (that livelock hung the test).
TEST(EngineChannel, ChannelWorkButNoFreeSlotSleepsForTheSlot) {
  for (int round = 0; round < 3; ++round) run_many_producers(8, 0, 1, 0);
}

// Shutdown while producers submit: every request a submit accepted completes exactly
// once (ok or shut_down), later submits are refused with shut_down, nothing hangs. With
// inline_max 0, requests are still on the channels' submission rings when the workers
// stop: shutdown must find and cancel them.
void run_shutdown_in_the_middle(std::size_t inline_max) {
  Watchdog dog(std::chrono::seconds(120), "shutdown with channels");
  EngineConfig c = channel_config(inline_max);
  c.channel_count = 4;
  auto e = make_engine(c);
  TestKey k = add_test_key(*e, 64, 30);
  std::atomic<bool> stop_seen[4] = {};
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Channel* ch = nullptr;
      if (!e->open_channel({}, &ch).ok()) {
        ++bad;
        return;
      }
      std::vector<std::vector<uint8_t>> bufs(16);
      std::vector<int> count(1 << 16, 0);
      std::vector<Request> reqs;
      std::vector<iovec> vs(16);
      std::size_t accepted_total = 0, completed = 0, id = 0;
      for (;;) {
        reqs.clear();
        if (ch->in_flight() == 0) {
          for (std::size_t i = 0; i < 16; ++i) {
            bufs[i].assign(i % 4 == 0 ? 65536 : 512, static_cast<uint8_t>(i));
            vs[i] = {bufs[i].data(), bufs[i].size()};
            Request r;
            r.key = k.handle;
            r.format = kFmt;
            r.src = &vs[i];
            r.src_count = 1;
            r.user_context = reinterpret_cast<void*>(id++ % count.size());
            reqs.push_back(r);
          }
          std::size_t acc = 0;
          const Status s = ch->submit(reqs.data(), reqs.size(), &acc);
          accepted_total += acc;
          if (!s.ok()) {
            if (s.code() != Errc::shut_down) ++bad;
            stop_seen[t] = true;
          }
        }
        Completion buf[16];
        const std::size_t n = ch->wait(buf, 16, 16, 2'000'000);
        for (std::size_t i = 0; i < n; ++i) {
          if (!buf[i].status.ok() && buf[i].status.code() != Errc::shut_down) ++bad;
          if (++count[reinterpret_cast<std::size_t>(buf[i].user_context)] > 1) ++bad;
        }
        completed += n;
        if (stop_seen[t] && ch->in_flight() == 0) break;
        // Keep the counts per round trip: reset those reaped in this round.
        if (ch->in_flight() == 0) std::fill(count.begin(), count.end(), 0);
      }
      if (completed != accepted_total) ++bad;
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  e->shutdown();
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  Channel* ch = nullptr;
  EXPECT_EQ(e->open_channel({}, &ch).code(), Errc::shut_down);
}

TEST(EngineChannel, ShutdownInTheMiddleCompletesEveryAcceptedRequestOnce) {
  run_shutdown_in_the_middle(4096);
}
TEST(EngineChannel, ShutdownInTheMiddleWithEverythingOnTheWorkers) {
  for (int round = 0; round < 5; ++round) run_shutdown_in_the_middle(0);
}

// The admit stage takes channels in turns (kIntakeBurst records, then the next channel):
// one request on a quiet channel is not queued behind a flood on another. The engine's
// only worker is held in an any-thread request's callback while both channels publish,
// so what it finds is the same every run; the flood's last request and the quiet one
// write the same destination, and what is left there says which the worker did last.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false, open = false;
  static void hold(const Status&, void* self) {
    Gate& g = *static_cast<Gate*>(self);
    std::unique_lock lk(g.mu);
    g.entered = true;
    g.cv.notify_all();
    g.cv.wait(lk, [&] { return g.open; });
  }
  // Submits r with hold as its callback; returns once a worker is held inside it.
  void hold_a_worker(Engine& e, Request r) {
    r.callback = &Gate::hold;
    r.user_context = this;
    r.flush = true;
    ASSERT_TRUE(e.submit(r).ok());
    std::unique_lock lk(mu);
    cv.wait(lk, [&] { return entered; });
  }
  void release() {
    {
      std::lock_guard lk(mu);
      open = true;
    }
    cv.notify_all();
  }
};

TEST(EngineChannel, AFloodingChannelDoesNotStarveAnother) {
  Watchdog dog(std::chrono::seconds(60), "fair intake");
  EngineConfig c = channel_config(0);
  c.threads = 1;
  c.channel_count = 2;
  c.channel_depth = 64;
  auto e = make_engine(c);
  TestKey k = add_test_key(*e, 64, 40);

  Gate gate;
  Job blocker(k, 512, 98, true, false);
  gate.hold_a_worker(*e, blocker.request(k, nullptr));

  Channel* flood = nullptr;
  Channel* quiet = nullptr;
  ASSERT_TRUE(e->open_channel({}, &flood).ok());
  ASSERT_TRUE(e->open_channel({}, &quiet).ok());
  std::vector<uint8_t> shared(4096, 0);
  iovec shared_v[2] = {{shared.data(), shared.size()}, {shared.data(), shared.size()}};
  std::vector<std::unique_ptr<Job>> jobs;
  std::vector<Request> reqs;
  for (int i = 0; i < 64; ++i) {
    jobs.push_back(std::make_unique<Job>(k, i == 63 ? 4096 : 8192, 100 + i, false, false));
    reqs.push_back(jobs.back()->request(k, nullptr));
  }
  reqs[63].dst = &shared_v[0];
  Job one(k, 4096, 99, false, false);
  Request r = one.request(k, nullptr);
  r.dst = &shared_v[1];
  std::size_t acc = 0;
  ASSERT_TRUE(flood->submit(reqs.data(), reqs.size(), &acc).ok());
  ASSERT_EQ(acc, 64u);
  ASSERT_TRUE(quiet->submit(r).ok());
  gate.release();

  std::vector<Completion> got;
  ASSERT_EQ(reap_all(*flood, &got, 64), 64u);
  ASSERT_EQ(reap_all(*quiet, &got, 65), 65u);
  for (const Completion& cpl : got) EXPECT_TRUE(cpl.status.ok());
  for (int i = 0; i < 63; ++i) EXPECT_TRUE(jobs[i]->correct()) << i;
  EXPECT_EQ(shared, jobs[63]->want) << "the quiet channel's request was crypted after the flood";
  EXPECT_NE(shared, one.want);
  ASSERT_TRUE(e->drain().ok());  // the blocker's completion, with its callback, is done
}

// A batch of whole channel requests completes on the worker that crypted it, whatever
// older batch is still completing: one worker is held inside a submit() request's
// callback (an ordered batch, mid-completion), and channel requests still come back
// through the other. A submit() request accepted after the held one waits for it.
TEST(EngineChannel, ChannelBatchesCompleteWhileAnOlderBatchIsHeld) {
  Watchdog dog(std::chrono::seconds(60), "unordered channel batches");
  EngineConfig c = channel_config(0);
  c.threads = 2;
  auto e = make_engine(c);
  TestKey k = add_test_key(*e, 64, 42);

  Gate gate;
  Job blocker(k, 512, 120, true, false);
  gate.hold_a_worker(*e, blocker.request(k, nullptr));

  Channel* ch = nullptr;
  ASSERT_TRUE(e->open_channel({}, &ch).ok());
  std::vector<std::unique_ptr<Job>> jobs;  // alive until reaped, whatever fails
  for (int round = 0; round < 8; ++round) {
    jobs.push_back(std::make_unique<Job>(k, 4096, 130 + round, round % 2 == 0, false));
    Request r = jobs.back()->request(k, nullptr);
    ASSERT_TRUE(ch->submit(r).ok());
    Completion got;
    const std::size_t n = ch->wait(&got, 1, 1, 5'000'000);
    EXPECT_EQ(n, 1u) << "round " << round
                     << ": a channel request waited for an older batch's completion";
    if (n != 1) break;  // reaped after the gate opens
    EXPECT_TRUE(got.status.ok()) << got.status.message();
    EXPECT_TRUE(jobs.back()->correct()) << "round " << round;
  }

  std::atomic<bool> later_done{false};
  Job later(k, 4096, 140, false, false);
  Request l = later.request(k, &later_done);
  l.callback = [](const Status&, void* p) { static_cast<std::atomic<bool>*>(p)->store(true); };
  l.flush = true;
  ASSERT_TRUE(e->submit(l).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(later_done.load()) << "a submit() request completed before an older one";
  gate.release();
  ASSERT_TRUE(e->drain().ok());
  EXPECT_TRUE(later_done.load());
  EXPECT_TRUE(later.correct());
  Completion rest[8];
  while (ch->in_flight() != 0) ch->wait(rest, 8, 1, 1'000'000);
}

// drain() waits for requests a channel handed to the workers, though no lock saw them.
TEST(EngineChannel, DrainWaitsForChannelRequestsOnTheWorkers) {
  EngineConfig c = channel_config(0);
  c.channel_depth = 32;
  auto e = make_engine(c);
  TestKey k = add_test_key(*e, 32, 41);
  Channel* ch = nullptr;
  ASSERT_TRUE(e->open_channel({}, &ch).ok());
  for (int round = 0; round < 10; ++round) {
    std::vector<std::unique_ptr<Job>> jobs;
    std::vector<Request> reqs;
    for (int i = 0; i < 32; ++i) {
      jobs.push_back(std::make_unique<Job>(k, 512u << (i % 6), round * 100 + i, i % 2, false));
      reqs.push_back(jobs.back()->request(k, nullptr));
    }
    std::size_t acc = 0;
    ASSERT_TRUE(ch->submit(reqs.data(), reqs.size(), &acc).ok());
    ASSERT_EQ(acc, 32u);
    ASSERT_TRUE(e->drain().ok());
    std::vector<Completion> got(32);
    EXPECT_EQ(ch->poll(got.data(), got.size()), 32u) << "round " << round;
    for (const auto& j : jobs) EXPECT_TRUE(j->correct());
  }
}

TEST(EngineChannel, KeyInUseOnAChannelCannotBeRemoved) {
  auto e = make_engine(channel_config(0));
  TestKey k = add_test_key(*e, 64, 40);
  Channel* ch = nullptr;
  ASSERT_TRUE(e->open_channel({}, &ch).ok());
  SlotHandle held[4];  // every slot lent: the request stays queued
  for (auto& h : held) ASSERT_TRUE(e->acquire_slot(&h).ok());
  Job j(k, 512, 41, true, false);
  Request r = j.request(k, nullptr);
  ASSERT_TRUE(ch->submit(r).ok());
  EXPECT_EQ(e->remove_key(k.handle).code(), Errc::would_block);
  for (auto& h : held) ASSERT_TRUE(e->release_slot(h).ok());
  std::vector<Completion> got;
  ASSERT_EQ(reap_all(*ch, &got, 1), 1u);
  EXPECT_TRUE(j.correct());
  EXPECT_TRUE(e->remove_key(k.handle).ok());
}

TEST(EngineChannel, RegisteredMemoryIsHeldUntilTheRequestCompletes) {
  auto e = make_engine(channel_config(4096));
  TestKey k = add_test_key(*e, 64, 50);
  Job j(k, 65536, 51, true, false);
  ASSERT_TRUE(e->register_memory(j.work.data(), j.work.size()).ok());
  Channel* ch = nullptr;
  ASSERT_TRUE(e->open_channel({}, &ch).ok());
  SlotHandle held[4];  // the 64 KiB request goes to the workers and waits for a slot
  for (auto& h : held) ASSERT_TRUE(e->acquire_slot(&h).ok());
  Request r = j.request(k, nullptr);
  ASSERT_TRUE(ch->submit(r).ok());
  EXPECT_EQ(e->unregister_memory(j.work.data()).code(), Errc::would_block);
  for (auto& h : held) ASSERT_TRUE(e->release_slot(h).ok());
  std::vector<Completion> got;
  ASSERT_EQ(reap_all(*ch, &got, 1), 1u);
  EXPECT_TRUE(j.correct());
  EXPECT_TRUE(e->unregister_memory(j.work.data()).ok());
  EXPECT_EQ(e->stats().registered_requests, 1u);
}

// A callback that always submits the next request (crypted inline at once) must not keep
// poll() from returning; and it may not close the channel it is being reaped from.
struct Chain {
  Channel* ch = nullptr;
  Engine* e = nullptr;
  Request next;
  int calls = 0;
  Status close_status;
};

void resubmit_forever(const Status&, void* ctx) {
  auto* chain = static_cast<Chain*>(ctx);
  ++chain->calls;
  if (chain->calls == 1) chain->close_status = chain->e->close_channel(chain->ch);
  (void)chain->ch->submit(chain->next);
}

TEST(EngineChannel, PollReturnsThoughCallbacksKeepSubmitting) {
  Watchdog dog(std::chrono::seconds(30), "poll with a resubmitting callback");
  auto e = make_engine(channel_config(4096));
  TestKey k = add_test_key(*e, 64, 60);
  Channel* ch = nullptr;
  ASSERT_TRUE(e->open_channel({}, &ch).ok());
  Chain chain;
  chain.ch = ch;
  chain.e = e.get();
  Job j(k, 512, 61, true, false);
  chain.next = j.request(k, &chain);
  chain.next.callback = &resubmit_forever;
  ASSERT_TRUE(ch->submit(chain.next).ok());
  Completion out[4];
  for (int round = 1; round <= 3; ++round) {
    EXPECT_EQ(ch->poll(out, 4), 0u);
    EXPECT_EQ(chain.calls, round) << "one callback per poll: the resubmitted one waits";
  }
  EXPECT_EQ(chain.close_status.code(), Errc::unavailable) << chain.close_status.message();
  EXPECT_EQ(ch->in_flight(), 1u);
  chain.next.callback = nullptr;  // the last one: reaped as a Completion
  chain.next.user_context = nullptr;
  EXPECT_EQ(ch->poll(out, 4), 0u);  // runs the pending callback, which submits once more
  EXPECT_EQ(ch->poll(out, 4), 1u);
  EXPECT_TRUE(e->close_channel(ch).ok());
}

}  // namespace
}  // namespace sectorcrypt::testing
