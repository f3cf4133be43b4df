// CPU AES-XTS kernels against OpenSSL EVP and libgcrypt, one thread, in one process so
// that every figure can be read as a ratio taken in the same run.
//
// Names: xts/<impl>/<aes128|aes256>/<512|4096>/<enc|dec>/<cache|stream>, and
// copy/memcpy/stream as the memory-bandwidth ceiling.
//   impl  sectorcrypt              the public, dispatched cpu::xts_crypt_sectors
//         sectorcrypt-vaes-avx2    the VAES-AVX2 path called directly (where available)
//         sectorcrypt-hwy-<TARGET> each Highway target this CPU runs, forced in turn
//         openssl, libgcrypt       the peers, IV set per sector as dm-crypt does
//   cache   a 128 KiB buffer processed in place (stays in L2)
//   stream  64 MiB out of place (memory-bound; compare with copy/memcpy/stream)
// Sectors are numbered aes-xts-plain64 style in 512-byte units (LUKS2 default). One thread;
// rates are per CPU second, which a busy shared machine distorts less than wall time.
#include <benchmark/benchmark.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "host/peer_ciphers.h"
#include "kernels/cpu/xts_batch_args.h"
#include "kernels/cpu/xts_cpu.h"
#include "kernels/cpu/xts_vaes_avx2.h"
#include "kernels/xts_key.h"

// The Highway kernels land separately; compare against each target once they exist.
#if __has_include("kernels/cpu/xts_highway.h")
#include "hwy/targets.h"
#include "kernels/cpu/xts_highway.h"
#define SECTORCRYPT_BENCH_HIGHWAY 1
#endif

namespace sectorcrypt {
namespace {

constexpr std::size_t kCacheBytes = 128 << 10;
constexpr std::size_t kStreamBytes = 64 << 20;
constexpr uint64_t kStartSector = 0x1234560;  // arbitrary, 4096-aligned

struct FreeDeleter {
  void operator()(uint8_t* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<uint8_t[], FreeDeleter>;

// Page-aligned, every page touched (so no first-touch faults are timed).
Buffer make_buffer(std::size_t bytes, uint64_t seed) {
  Buffer b(static_cast<uint8_t*>(std::aligned_alloc(4096, bytes)));
  if (!b) std::abort();
  std::mt19937_64 gen(seed);
  for (std::size_t i = 0; i < bytes; i += 8) {
    const uint64_t v = gen();
    std::memcpy(b.get() + i, &v, 8);
  }
  return b;
}

std::vector<uint8_t> raw_key(std::size_t len) {
  std::vector<uint8_t> k(len);
  for (std::size_t i = 0; i < len; ++i) k[i] = static_cast<uint8_t>(0x11 * i + 7);
  return k;
}

struct Case {
  std::size_t key_len;  // 32 (AES-128) or 64 (AES-256)
  uint32_t sector_size;
  Direction dir;
  bool stream;

  std::size_t bytes() const { return stream ? kStreamBytes : kCacheBytes; }
  std::string suffix() const {
    return std::string(key_len == 32 ? "aes128" : "aes256") + "/" +
           std::to_string(sector_size) + "/" + (dir == Direction::encrypt ? "enc" : "dec") +
           "/" + (stream ? "stream" : "cache");
  }
};

// Input and output buffers of one case: the same buffer in cache (in place).
struct Buffers {
  Buffer in, out_storage;
  uint8_t* out;
  explicit Buffers(const Case& c)
      : in(make_buffer(c.bytes(), 1)),
        out_storage(c.stream ? make_buffer(c.bytes(), 2) : nullptr),
        out(c.stream ? out_storage.get() : in.get()) {}
};

void finish(benchmark::State& state, const Case& c) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(c.bytes()));
}

void bm_sectorcrypt(benchmark::State& state, Case c) {
  const auto raw = raw_key(c.key_len);
  XtsKey key;
  if (!XtsKey::create(raw.data(), raw.size(), &key)) {
    state.SkipWithError("key refused");
    return;
  }
  Buffers buf(c);
  const SectorFormat format{c.sector_size, IvMode::plain64, false};
  for (auto _ : state) {
    Status s = cpu::xts_crypt_sectors(key, c.dir, format, kStartSector, buf.in.get(), buf.out,
                                      c.bytes());
    if (!s) {
      state.SkipWithError("xts_crypt_sectors failed");
      return;
    }
    benchmark::ClobberMemory();
  }
  state.SetLabel(cpu::selected_implementation());
  finish(state, c);
}

// One implementation's batch function called directly: no validation, no dispatch.
void time_batch_fn(benchmark::State& state, const Case& c, cpu::BatchFn fn) {
  const auto raw = raw_key(c.key_len);
  XtsKey key;
  if (!XtsKey::create(raw.data(), raw.size(), &key)) {
    state.SkipWithError("key refused");
    return;
  }
  Buffers buf(c);
  const cpu::BatchArgs a{&key,    c.dir,   IvMode::plain64, c.sector_size,
                         c.bytes() / c.sector_size, buf.in.get(), nullptr, buf.out, nullptr,
                         kStartSector, c.sector_size / 512, nullptr};
  for (auto _ : state) {
    fn(a);
    benchmark::ClobberMemory();
  }
  finish(state, c);
}

void bm_vaes_avx2(benchmark::State& state, Case c) {
  time_batch_fn(state, c, cpu::vaes_avx2::crypt_batch);
}

#ifdef SECTORCRYPT_BENCH_HIGHWAY
// One Highway target, forced for the duration of the benchmark.
void bm_highway(benchmark::State& state, Case c, int64_t target) {
  hwy::SetSupportedTargetsForTest(target);
  time_batch_fn(state, c, cpu::highway::crypt_batch);
  hwy::SetSupportedTargetsForTest(0);
}
#endif

// A peer one sector at a time, with the IV set per sector as dm-crypt does.
void bm_peer(benchmark::State& state, Case c, bool openssl) {
  const auto raw = raw_key(c.key_len);
  auto peer = openssl ? peers::make_openssl_xts(raw.data(), raw.size(), c.dir)
                      : peers::make_libgcrypt_xts(raw.data(), raw.size(), c.dir);
  Buffers buf(c);
  const std::size_t count = c.bytes() / c.sector_size;
  const uint64_t step = c.sector_size / 512;
  std::string error;
  for (auto _ : state) {
    for (std::size_t i = 0; i < count; ++i) {
      uint8_t iv[16];
      make_iv(IvMode::plain64, kStartSector + i * step, iv);
      const std::size_t off = i * c.sector_size;
      if (!peer->crypt_unit(iv, buf.in.get() + off, buf.out + off, c.sector_size, &error)) {
        state.SkipWithError(error.c_str());
        return;
      }
    }
    benchmark::ClobberMemory();
  }
  finish(state, c);
}

void bm_memcpy_stream(benchmark::State& state) {
  Buffer in = make_buffer(kStreamBytes, 1), out = make_buffer(kStreamBytes, 2);
  for (auto _ : state) {
    std::memcpy(out.get(), in.get(), kStreamBytes);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * int64_t{kStreamBytes});
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  for (std::string line; std::getline(f, line);) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      return colon == std::string::npos ? line : line.substr(colon + 2);
    }
  }
  return "unknown";
}

// Family/model/stepping from CPUID: virtual machines often report only "AMD EPYC".
std::string cpu_signature() {
#if defined(__x86_64__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx)) {
    const unsigned base_family = (eax >> 8) & 0xf;
    const unsigned family = base_family == 0xf ? base_family + ((eax >> 20) & 0xff) : base_family;
    const unsigned model = base_family >= 0x6 ? ((eax >> 4) & 0xf) | (((eax >> 16) & 0xf) << 4)
                                              : (eax >> 4) & 0xf;
    char buf[64];
    std::snprintf(buf, sizeof(buf), "family 0x%x model 0x%x stepping %u", family, model,
                  eax & 0xf);
    return buf;
  }
#endif
  return "unknown";
}

void register_all() {
  const bool vaes = cpu::vaes_avx2::available();
  for (bool stream : {false, true}) {
    for (std::size_t key_len : {32u, 64u}) {
      for (uint32_t size : {512u, 4096u}) {
        for (Direction dir : {Direction::encrypt, Direction::decrypt}) {
          const Case c{key_len, size, dir, stream};
          const std::string s = c.suffix();
          benchmark::RegisterBenchmark(("xts/sectorcrypt/" + s).c_str(), bm_sectorcrypt, c);
          if (vaes) {
            benchmark::RegisterBenchmark(("xts/sectorcrypt-vaes-avx2/" + s).c_str(),
                                         bm_vaes_avx2, c);
          }
#ifdef SECTORCRYPT_BENCH_HIGHWAY
          // Targets without AES instructions (software rounds) would take minutes on stream.
          const int64_t targets = cpu::highway::compiled_targets() & hwy::SupportedTargets() &
                                  ~int64_t{HWY_EMU128 | HWY_SSE2 | HWY_SSSE3};
          for (int64_t rest = targets; rest != 0; rest &= rest - 1) {
            const int64_t target = rest & -rest;
            benchmark::RegisterBenchmark(
                ("xts/sectorcrypt-hwy-" + std::string(hwy::TargetName(target)) + "/" + s).c_str(),
                bm_highway, c, target);
          }
#endif
          benchmark::RegisterBenchmark(("xts/openssl/" + s).c_str(), bm_peer, c, true);
          benchmark::RegisterBenchmark(("xts/libgcrypt/" + s).c_str(), bm_peer, c, false);
        }
      }
    }
  }
  benchmark::RegisterBenchmark("copy/memcpy/stream", bm_memcpy_stream);
}

}  // namespace
}  // namespace sectorcrypt

int main(int argc, char** argv) {
  using namespace sectorcrypt;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("cpu_model", cpu_model());
  benchmark::AddCustomContext("cpu_signature", cpu_signature());
  benchmark::AddCustomContext("openssl", peers::openssl_version());
  benchmark::AddCustomContext("libgcrypt", peers::libgcrypt_version());
  benchmark::AddCustomContext("sectorcrypt_cpu_impl", cpu::selected_implementation());
  benchmark::AddCustomContext("compiler", __VERSION__);
  benchmark::AddCustomContext("vaes_avx2_available",
                              cpu::vaes_avx2::available() ? "yes" : "no");
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
