// Timed loops for bench and compare.
#include "host/cli/bench_measure.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <random>
#include <stdexcept>

#include "host/cli/cli_common.h"

namespace sectorcrypt::cli {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kMaxLatencySamples = 1 << 20;

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

void FreeDeleter::operator()(uint8_t* p) const { std::free(p); }

Buffer make_buffer(std::size_t bytes, uint64_t seed) {
  // Rounding up near SIZE_MAX would wrap to a tiny buffer that the caller then overruns
  // (bench --buffer-size / compare --batch-sizes 18446744073709551104 did).
  if (bytes > std::numeric_limits<std::size_t>::max() - 4095) throw std::bad_alloc();
  const std::size_t rounded = (std::max<std::size_t>(bytes, 1) + 4095) / 4096 * 4096;
  Buffer b(static_cast<uint8_t*>(std::aligned_alloc(4096, rounded)));
  if (!b) throw std::bad_alloc();
  std::mt19937_64 gen(seed);
  for (std::size_t i = 0; i < rounded; i += 8) {
    const uint64_t v = gen();
    std::memcpy(b.get() + i, &v, 8);
  }
  return b;
}

double Samples::mib_per_s() const {
  return seconds > 0 ? static_cast<double>(bytes) / (1024.0 * 1024.0) / seconds : 0.0;
}

double Samples::quantile_us(double q) const {
  if (latency_us.empty()) return 0.0;
  std::vector<double> v = latency_us;
  const auto k = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

Samples time_calls(double seconds, std::size_t bytes_per_call, const std::function<void()>& fn) {
  fn();  // warm-up: first-touch, lazy thread start
  Samples s;
  const auto t0 = Clock::now();
  do {
    const auto c0 = Clock::now();
    fn();
    const double us = std::chrono::duration<double, std::micro>(Clock::now() - c0).count();
    if (s.latency_us.size() < kMaxLatencySamples) s.latency_us.push_back(us);
    ++s.calls;
  } while (since(t0) < seconds || s.calls < 2);
  s.seconds = since(t0);
  s.bytes = s.calls * bytes_per_call;
  return s;
}

// The engine's own asynchronous interface: posted completions taken with
// wait_completions (which polls briefly before it sleeps), as a storage stack would use
// it. A callback that signals this thread through a condition variable would add a futex
// wake per request to every figure.
Samples time_engine_in_flight(Engine& engine, PathBuffers& buffers, KeyHandle key, Direction dir,
                              const SectorFormat& format, std::size_t batch, std::size_t depth,
                              double seconds) {
  Samples s;
  std::vector<Clock::time_point> started(depth);
  Status failed;
  auto submit = [&](std::size_t i) {
    started[i] = Clock::now();
    return buffers.submit(key, dir, format, i, batch);
  };
  const auto t0 = Clock::now();
  uint64_t submitted = 0, completed = 0;
  for (std::size_t i = 0; i < depth && failed.ok(); ++i) {
    if (Status st = submit(i); !st) {
      failed = st;
    } else {
      ++submitted;
    }
  }
  Completion done[64];
  while (completed < submitted) {
    const std::size_t got = engine.wait_completions(done, 64, 10'000'000);
    if (got == 0) {
      failed = Status::error(Errc::internal, "no completion within 10 s");
      break;
    }
    for (std::size_t k = 0; k < got; ++k) {
      ++completed;
      const auto i = reinterpret_cast<std::size_t>(done[k].user_context);
      const double us =
          std::chrono::duration<double, std::micro>(Clock::now() - started[i]).count();
      if (s.latency_us.size() < kMaxLatencySamples) s.latency_us.push_back(us);
      if (!done[k].status.ok() && failed.ok()) failed = done[k].status;
      // Keep the depth full until the time is up (and at least two rounds were made).
      if (failed.ok() && (since(t0) < seconds || submitted < 2 * depth)) {
        if (Status st = submit(i); !st) {
          failed = st;
        } else {
          ++submitted;
        }
      }
    }
  }
  s.seconds = since(t0);
  s.calls = completed;
  s.bytes = completed * batch;
  check(failed, "engine");
  return s;
}

void peer_crypt_sectors(peers::XtsPeer& peer, const SectorFormat& format, uint64_t start_sector,
                        const uint8_t* in, uint8_t* out, std::size_t bytes) {
  IvSequence seq{};
  check(iv_sequence_for(format, start_sector, &seq), "sector numbering");
  uint8_t iv[16];
  std::string error;
  for (std::size_t off = 0, i = 0; off < bytes; off += format.sector_size, ++i) {
    make_iv(format.iv_mode, seq.first + i * seq.step, iv);
    if (!peer.crypt_unit(iv, in + off, out + off, format.sector_size, &error)) {
      fail("{}: {}", peer.name(), error);
    }
  }
}

const char* peer_name(PeerKind kind) { return kind == PeerKind::openssl ? "openssl" : "libgcrypt"; }

std::unique_ptr<peers::XtsPeer> make_peer(PeerKind kind, const uint8_t* key, std::size_t len,
                                          Direction dir) {
  try {
    return kind == PeerKind::openssl ? peers::make_openssl_xts(key, len, dir)
                                     : peers::make_libgcrypt_xts(key, len, dir);
  } catch (const std::exception& e) {
    fail("{}: {}", peer_name(kind), e.what());
  }
}

}  // namespace sectorcrypt::cli
