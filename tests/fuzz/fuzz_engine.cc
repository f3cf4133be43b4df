// libFuzzer: the engine's C++ API fed random request sequences (small CPU engine, faults
// injectable through sectorcrypt_fi). Invariants checked after each input: every
// accepted request completes exactly once; every ok result equals the CPU kernels; a
// refused request gets no completion and its output is untouched.
#include <sys/uio.h>

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
  static void on_done(const Status& s, void* p) {
    auto* j = static_cast<Job*>(p);
    j->code = s.code();
    j->done.fetch_add(1);
  }
};

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
    std::unique_ptr<Engine> p;
    if (!Engine::create(c, &p)) std::abort();
    engine::fault::set_hook(&hook, nullptr);
    return p;
  }();
  return *e;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  Engine& e = the_engine();
  Reader r{data, size};
  struct KeyPair {
    KeyHandle h;
    XtsKey ref;
  };
  std::vector<std::unique_ptr<KeyPair>> keys;
  std::vector<std::unique_ptr<Job>> jobs;
  static const uint32_t kSizes[] = {512, 1024, 2048, 4096, 520, 0};
  for (int op = 0; op < 24 && r.n > 0; ++op) {
    switch (r.u8() % 6) {
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
        Request q;
        q.key = h;
        q.dir = j->dir;
        q.format = j->f;
        q.start_sector = j->start;
        q.src = j->sv;
        q.src_count = sc;
        q.dst = j->in_place ? nullptr : j->dv;
        q.dst_count = j->in_place ? 0 : dc;
        q.callback = &Job::on_done;
        q.user_context = j.get();
        q.flush = r.u8() % 2;
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
