// libFuzzer: the engine's C++ API fed random request sequences (small CPU engine, faults
// injectable through sectorcrypt_fi), through submit()/try_submit() and through two
// channels (issue 11: one ordered, one not; batch submits of valid and invalid requests,
// poll/wait, close and reopen). Invariants checked after each input: every accepted
// request completes exactly once; every ok result equals the CPU kernels; a refused
// request gets no completion and its output is untouched. On a channel also: a batch is
// accepted up to the first refused request and no further, a refusal for a bad request
// is repeated for it alone, would_block only when every record is taken, callbacks run on
// the owner inside poll()/wait(), and an ordered channel reaps in submission order.
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "engine/engine.h"
#include "engine/fault_injection.h"
#include "kernels/cpu/xts_cpu.h"

using namespace sectorcrypt;

namespace {

struct Reader {
  const uint8_t* d;
  std::size_t n;
  uint8_t u8() {
    if (n == 0) return 0;
    --n;
    return *d++;
  }
  uint32_t u16() { return u8() | (uint32_t{u8()} << 8); }
};

struct Job {
  std::vector<uint8_t> in, buf, out;
  XtsKey* key = nullptr;
  Direction dir = Direction::encrypt;
  SectorFormat f;
  uint64_t start = 0;
  bool in_place = false, accepted = false;
  std::atomic<int> done{0};
  Errc code = Errc::ok;
  iovec sv[4] = {}, dv[4] = {};
  int channel = -1;   // submitted on channel 0 or 1
  uint64_t seq = 0;   // its place in that channel's submission order
  static void on_done(const Status& s, void* p);
};

struct KeyPair {
  KeyHandle h;
  XtsKey ref;
};

// The channels' owner (the fuzzing thread) is inside poll()/wait() of this channel, and
// the channel requests reaped by that call, callbacks first (in the order they ran), then
// the Completions.
thread_local int tl_reaping = -1;
std::vector<Job*> g_reaped;

void Job::on_done(const Status& s, void* p) {
  auto* j = static_cast<Job*>(p);
  if (j->channel >= 0) {
    if (tl_reaping != j->channel) std::abort();  // only on the owner, inside its poll()
    g_reaped.push_back(j);
  }
  j->code = s.code();
  j->done.fetch_add(1);
}

std::atomic<int> g_fail_next{0};
bool hook(engine::fault::Point, void*) { return g_fail_next.exchange(0) != 0; }

Engine& the_engine() {
  static std::unique_ptr<Engine> e = [] {
    EngineConfig c;
    c.backend = BackendKind::cpu;
    c.threads = 1;
    c.slot_count = 2;
    c.slot_bytes = 8192;
    c.request_capacity = 8;
    c.key_capacity = 4;
    c.channel_count = 2;
    c.channel_depth = 4;
    c.inline_max_bytes = 1024;  // up to 2 sectors inline, larger through the workers
    std::unique_ptr<Engine> p;
    if (!Engine::create(c, &p)) std::abort();
    engine::fault::set_hook(&hook, nullptr);
    return p;
  }();
  return *e;
}

struct ChannelSlot {
  Channel* ch = nullptr;
  bool ordered = false;
  uint64_t next_seq = 0;   // given at acceptance
  uint64_t next_done = 0;  // ordered: the next sequence number to be reaped
};

ChannelSlot& channel(int i) {
  static std::array<ChannelSlot, 2> slots = [] {
    Engine& e = the_engine();
    ChannelSlot s[2];
    for (int k = 0; k < 2; ++k) {
      ChannelOptions o;
      o.ordered = s[k].ordered = k == 0;
      if (!e.open_channel(o, &s[k].ch).ok()) std::abort();
    }
    return std::to_array(s);
  }();
  return slots[i];
}

// A copy request from the input, valid or not (key, format, length, segments).
std::unique_ptr<Job> make_job(Reader& r, std::vector<std::unique_ptr<KeyPair>>& keys,
                              Request* q) {
  static const uint32_t kSizes[] = {512, 1024, 2048, 4096, 520, 0};
  auto j = std::make_unique<Job>();
  KeyHandle h{r.u8() % 16 == 0 ? uint64_t{r.u16()} : 0};
  if (!keys.empty() && h.value == 0) {
    KeyPair& k = *keys[r.u8() % keys.size()];
    h = k.h;
    j->key = &k.ref;
  }
  j->f.sector_size = kSizes[r.u8() % 6];
  j->f.iv_mode = static_cast<IvMode>(r.u8() % 4);
  j->f.iv_large_sectors = r.u8() % 4 == 0;
  j->dir = r.u8() % 2 ? Direction::encrypt : Direction::decrypt;
  j->start = r.u16();
  const std::size_t bytes = (r.u8() % 20) * 512 + (r.u8() % 8 == 0 ? r.u8() : 0);
  j->in.resize(bytes);
  for (auto& b : j->in) b = r.u8();
  j->buf = j->in;
  j->in_place = r.u8() % 2;
  j->out.assign(bytes, 0x5c);
  const std::size_t cut = bytes > 1 ? 1 + r.u16() % (bytes - 1) : 0;
  std::size_t sc = 0, dc = 0;
  if (cut > 0 && r.u8() % 2) {
    j->sv[sc++] = {j->buf.data(), cut};
    j->sv[sc++] = {j->buf.data() + cut, bytes - cut};
  } else {
    j->sv[sc++] = {j->buf.data(), bytes};
  }
  j->dv[dc++] = {j->out.data(), bytes};
  *q = Request{};
  q->key = h;
  q->dir = j->dir;
  q->format = j->f;
  q->start_sector = j->start;
  q->src = j->sv;
  q->src_count = sc;
  q->dst = j->in_place ? nullptr : j->dv;
  q->dst_count = j->in_place ? 0 : dc;
  q->callback = &Job::on_done;
  q->user_context = j.get();
  q->flush = r.u8() % 2;
  return j;
}

// Reaps channel i once (wait() when timeout_us != 0), checking who ran the callbacks and,
// on the ordered channel, that the call reaped the oldest requests in submission order.
void reap(int i, std::size_t max, std::size_t min_count, uint64_t timeout_us) {
  ChannelSlot& c = channel(i);
  Completion out[8];
  max = std::min<std::size_t>(max, 8);
  const std::size_t before = c.ch->in_flight();
  g_reaped.clear();
  tl_reaping = i;
  const std::size_t n = timeout_us != 0 ? c.ch->wait(out, max, min_count, timeout_us)
                                        : c.ch->poll(out, max);
  tl_reaping = -1;
  if (n > max) std::abort();
  const std::size_t callbacks = g_reaped.size();
  for (std::size_t k = 0; k < n; ++k) {
    auto* j = static_cast<Job*>(out[k].user_context);
    if (j == nullptr || j->channel != i || out[k].slot != UINT32_MAX) std::abort();
    if (out[k].bytes != j->in.size()) std::abort();
    g_reaped.push_back(j);
    j->code = out[k].status.code();
    j->done.fetch_add(1);
  }
  if (c.ch->in_flight() != before - g_reaped.size()) std::abort();  // each reaped once
  if (c.ordered) {
    for (std::size_t k = 1; k < g_reaped.size(); ++k) {
      if (k != callbacks && g_reaped[k]->seq <= g_reaped[k - 1]->seq) std::abort();
    }
    for (Job* j : g_reaped) {
      if (j->seq < c.next_done || j->seq >= c.next_done + g_reaped.size()) std::abort();
    }
    c.next_done += g_reaped.size();
  }
  g_reaped.clear();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  Engine& e = the_engine();
  Reader r{data, size};
  std::vector<std::unique_ptr<KeyPair>> keys;
  std::vector<std::unique_ptr<Job>> jobs;
  channel(0);  // opened once, with the engine
  for (int op = 0; op < 24 && r.n > 0; ++op) {
    switch (r.u8() % 9) {
      case 0: {  // add a key (length and halves from the input)
        uint8_t raw[64];
        const std::size_t len = (r.u8() % 3 == 0) ? r.u8() % 65 : (r.u8() % 2 ? 32 : 64);
        for (auto& b : raw) b = r.u8();
        if (r.u8() % 8 == 0) std::memcpy(raw + 32, raw, 32);
        auto k = std::make_unique<KeyPair>();
        const Status s = e.add_key(raw, len, {}, &k->h);
        if (s.ok()) {
          if (!XtsKey::create(raw, len, &k->ref)) std::abort();  // the engine took it: so must we
          keys.push_back(std::move(k));
        }
        break;
      }
      case 1: {  // remove a key (maybe twice)
        if (keys.empty()) break;
        const std::size_t i = r.u8() % keys.size();
        (void)e.remove_key(keys[i]->h);  // may be would_block while in use
        break;
      }
      case 2:
      case 3: {  // a copy request, valid or not
        Request q;
        auto j = make_job(r, keys, &q);
        if (r.u8() % 6 == 0) g_fail_next.store(1);
        const Status s = r.u8() % 2 ? e.try_submit(q) : e.submit(q);
        j->accepted = s.ok();
        if (s.ok() && j->key == nullptr) std::abort();  // accepted without a live key
        jobs.push_back(std::move(j));
        break;
      }
      case 4: {  // zero-copy round trip, with a double release
        SlotHandle sh;
        if (!e.try_acquire_slot(&sh).ok()) break;
        (void)e.release_slot(sh);
        if (e.release_slot(sh).ok()) std::abort();  // returned twice must be refused
        break;
      }
      case 5:
        (void)e.drain();
        break;
      case 6: {  // a batch of 1..4 requests on a channel, valid or not
        const int ci = r.u8() % 2;
        ChannelSlot& c = channel(ci);
        const std::size_t n = 1 + r.u8() % 4;
        Request q[4];
        std::unique_ptr<Job> batch[4];
        for (std::size_t k = 0; k < n; ++k) {
          batch[k] = make_job(r, keys, &q[k]);
          batch[k]->channel = ci;
          if (r.u8() % 2) q[k].callback = nullptr;  // reaped as a Completion
        }
        if (r.u8() % 6 == 0) g_fail_next.store(1);
        const std::size_t free_before = c.ch->depth() - c.ch->in_flight();
        std::size_t accepted = SIZE_MAX;
        const Status s = c.ch->submit(q, n, &accepted);
        if (accepted > n || s.ok() != (accepted == n)) std::abort();
        if (accepted > free_before) std::abort();
        for (std::size_t k = 0; k < accepted; ++k) {
          batch[k]->accepted = true;
          batch[k]->seq = c.next_seq++;
          if (batch[k]->key == nullptr) std::abort();  // accepted without a live key
        }
        if (!s.ok()) {
          if (s.code() == Errc::would_block) {
            if (c.ch->in_flight() != c.ch->depth()) std::abort();  // "full" means full
          } else {
            // The first refused request, alone: refused again, for the same reason.
            std::size_t again = SIZE_MAX;
            const Status s2 = c.ch->submit(&q[accepted], 1, &again);
            if (s2.code() != s.code() || again != 0) std::abort();
          }
        }
        for (auto& j : batch) {
          if (j) jobs.push_back(std::move(j));
        }
        break;
      }
      case 7: {  // reap a channel: poll, or wait for some
        const int ci = r.u8() % 2;
        const std::size_t max = r.u8() % 9;
        if (r.u8() % 2) {
          reap(ci, max, 0, 0);
        } else {
          reap(ci, max, r.u8() % 5, 1 + r.u8() % 200);
        }
        break;
      }
      case 8: {  // close a channel (refused while requests are unreaped) and reopen it
        const int ci = r.u8() % 2;
        ChannelSlot& c = channel(ci);
        const bool busy = c.ch->in_flight() != 0;
        const Status s = e.close_channel(c.ch);
        if (busy) {
          if (s.code() != Errc::would_block) std::abort();
          break;
        }
        if (!s.ok()) std::abort();
        std::size_t accepted = SIZE_MAX;
        Request q;  // refused for the closed channel before it is looked at
        if (c.ch->submit(&q, 1, &accepted).code() != Errc::invalid_buffer || accepted != 0) {
          std::abort();
        }
        if (e.close_channel(c.ch).code() != Errc::invalid_buffer) std::abort();
        ChannelOptions o;
        o.ordered = c.ordered;
        o.completion_fd = r.u8() % 2;
        if (!e.open_channel(o, &c.ch).ok()) std::abort();
        c.next_seq = c.next_done = 0;
        break;
      }
    }
  }
  // Reap both channels to the end (an accepted request must complete: bounded wait).
  for (int ci = 0; ci < 2; ++ci) {
    for (int tries = 0; channel(ci).ch->in_flight() != 0; ++tries) {
      if (tries == 1000) std::abort();  // 10 s without its completions: lost
      reap(ci, 8, 8, 10000);
    }
  }
  (void)e.drain();
  g_fail_next.store(0);
  for (auto& j : jobs) {
    if (!j->accepted) {
      if (j->done.load() != 0) std::abort();                             // refused: no completion
      if (j->buf != j->in) std::abort();                                 // input untouched
      if (!j->in_place && j->out != std::vector<uint8_t>(j->out.size(), 0x5c)) std::abort();
      continue;
    }
    if (j->done.load() != 1) std::abort();  // exactly once
    if (j->code != Errc::ok) continue;
    std::vector<uint8_t> want(j->in.size());
    if (!cpu::xts_crypt_sectors(*j->key, j->dir, j->f, j->start, j->in.data(), want.data(),
                                want.size())) {
      std::abort();
    }
    if ((j->in_place ? j->buf : j->out) != want) std::abort();  // wrong bytes reported ok
  }
  for (auto& k : keys) (void)e.remove_key(k->h);
  return 0;
}
