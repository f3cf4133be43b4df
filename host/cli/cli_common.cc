// Shared option parsing, key loading, formatting and the interrupt flag of the CLI.
#include "host/cli/cli_common.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "kernels/secure_zero.h"

namespace sectorcrypt::cli {

const char* version() { return SECTORCRYPT_VERSION; }

void check(const Status& s, const std::string& what) {
  if (!s.ok()) throw Error(fmt::format("{}: {}", what, s.message()));
}

IvMode parse_cipher(const std::string& name) {
  if (name == "aes-xts-plain64") return IvMode::plain64;
  if (name == "aes-xts-plain") return IvMode::plain;
  if (name == "aes-xts-plain64be") return IvMode::plain64be;
  fail("unsupported cipher '{}' (supported: aes-xts-plain64, aes-xts-plain, aes-xts-plain64be)",
       name);
}

std::string cipher_name(IvMode mode) { return std::string("aes-xts-") + iv_mode_name(mode); }

BackendKind parse_backend(const std::string& name) {
  if (name == "cpu") return BackendKind::cpu;
  if (name == "cuda" || name == "gpu") return BackendKind::cuda;
  if (name == "hybrid") return BackendKind::hybrid;
  if (name == "auto") return BackendKind::automatic;
  fail("unknown backend '{}' (cpu, cuda, hybrid, auto)", name);
}

void apply_gpus(const std::string& gpus, EngineConfig* cfg) {
  cfg->gpu_ordinals.clear();
  if (gpus.empty()) return;
  if (gpus == "all") {
    cfg->gpu_ordinal = -1;
    return;
  }
  std::size_t at = 0;
  for (;;) {
    const std::size_t comma = gpus.find(',', at);
    const std::string item = gpus.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    const bool digits = !item.empty() && item.size() <= 4 &&
                        item.find_first_not_of("0123456789") == std::string::npos;
    if (!digits) fail("--gpus {}: '{}' is not a GPU ordinal (use e.g. 0,1 or all)", gpus, item);
    if (cfg->gpu_ordinals.size() == kMaxGpus) fail("--gpus {}: at most {} GPUs", gpus, kMaxGpus);
    cfg->gpu_ordinals.push_back(std::stoi(item));
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
}

uint64_t parse_size(const std::string& text) {
  std::size_t pos = 0;
  unsigned long long value = 0;
  try {
    value = std::stoull(text, &pos, 10);
  } catch (const std::exception&) {
    fail("'{}' is not a size (e.g. 4096, 4K, 16M)", text);
  }
  std::string unit = text.substr(pos);
  if (unit.ends_with("iB")) unit.resize(unit.size() - 2);
  else if (unit.size() == 2 && unit[1] == 'B') unit.resize(1);
  int shift = 0;
  if (unit.empty() || unit == "B") shift = 0;
  else if (unit == "K" || unit == "k") shift = 10;
  else if (unit == "M") shift = 20;
  else if (unit == "G") shift = 30;
  else if (unit == "T") shift = 40;
  else fail("'{}' is not a size (units: K, M, G, T; binary)", text);
  if (shift > 0 && value > (~0ull >> shift)) fail("size '{}' is too large", text);
  return static_cast<uint64_t>(value) << shift;
}

uint64_t parse_cryptsetup_size(const std::string& text, const char* option) {
  auto bad = [&] {
    fail("{} '{}' is not a size (bytes, or a suffix: S for 512-byte sectors, K, M, G, T "
         "or KiB... binary, KB... decimal)", option, text);
  };
  if (text.empty() || text[0] < '0' || text[0] > '9') bad();
  std::size_t pos = 0;
  unsigned long long value = 0;
  try {
    value = std::stoull(text, &pos, 10);
  } catch (const std::exception&) {
    bad();
  }
  const std::string unit = text.substr(pos);
  if (unit.empty()) return value;
  // As cryptsetup: one letter or "iB" after it is binary, "B" after it decimal.
  uint64_t base = 0;
  if (unit.size() == 1 || (unit.size() == 3 && unit[1] == 'i' && unit[2] == 'B')) base = 1024;
  else if (unit.size() == 2 && unit[1] == 'B') base = 1000;
  else bad();
  uint64_t mult = 1;
  switch (unit[0]) {
    case 's': case 'S': mult = 512; break;
    case 't': case 'T': mult *= base; [[fallthrough]];
    case 'g': case 'G': mult *= base; [[fallthrough]];
    case 'm': case 'M': mult *= base; [[fallthrough]];
    case 'k': case 'K': mult *= base; break;
    default: bad();
  }
  if (value != 0 && mult > ~0ull / value) fail("{} '{}' is too large", option, text);
  return static_cast<uint64_t>(value) * mult;
}

std::string format_bytes(uint64_t bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  double v = static_cast<double>(bytes);
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  if (u == 0) return fmt::format("{} B", bytes);
  if (bytes % (1ull << (10 * u)) == 0) return fmt::format("{} {}", bytes >> (10 * u), units[u]);
  return fmt::format("{:.1f} {}", v, units[u]);
}

std::string format_size_short(uint64_t bytes) {
  static const char* units[] = {"", "K", "M", "G", "T"};
  int u = 0;
  while (u < 4 && bytes >= 1024 && bytes % 1024 == 0) {
    bytes /= 1024;
    ++u;
  }
  return fmt::format("{}{}", bytes, units[u]);
}

KeyBytes::~KeyBytes() {
  if (!bytes_.empty()) secure_zero(bytes_.data(), bytes_.size());
}

void check_idle_spin(uint32_t us) {
  if (us > 1'000'000) {
    fail("--idle-spin-us {} is out of range: at most 1000000 (one second)", us);
  }
}

void check_measure_seconds(double seconds) {
  if (!(seconds > 0 && seconds <= 3600)) {
    fail("--time {} is out of range: use seconds, more than 0 and at most 3600", seconds);
  }
}

void check_key_bits(unsigned key_bits) {
  if (key_bits != 0 && key_bits != 256 && key_bits != 512) {
    fail("--key-size {} is not supported (256 or 512 bits: XTS-AES-128 or XTS-AES-256)",
         key_bits);
  }
}

void read_key_file(const std::string& path, unsigned key_bits, KeyBytes* out) {
  check_key_bits(key_bits);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open key file '{}': {}", path, std::strerror(errno));
  // At most 65 bytes: enough to tell a 64-byte key from a longer file.
  uint8_t buf[65];
  std::size_t got = 0;
  while (got < sizeof buf) {
    const ssize_t n = ::read(fd, buf + got, sizeof buf - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      secure_zero(buf, sizeof buf);
      fail("cannot read key file '{}': {}", path, std::strerror(e));
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  auto reject = [&](const std::string& why) {
    secure_zero(buf, sizeof buf);
    throw Error(why);
  };
  if (key_bits != 0 && got != key_bits / 8) {
    reject(fmt::format("key file '{}' holds {}{} bytes but --key-size {} needs {} bytes", path,
                       got, got == sizeof buf ? "+" : "", key_bits, key_bits / 8));
  }
  if (got != 32 && got != 64) {
    reject(fmt::format(
        "key file '{}' holds {}{} bytes; a raw aes-xts volume key is 32 bytes (--key-size 256) "
        "or 64 bytes (--key-size 512)",
        path, got, got == sizeof buf ? "+" : ""));
  }
  out->bytes().assign(buf, buf + got);
  secure_zero(buf, sizeof buf);
}

void make_bench_key(std::size_t bytes, KeyBytes* out) {
  std::mt19937 gen(0x5ec7c0de);
  out->bytes().resize(bytes);
  for (auto& b : out->bytes()) b = static_cast<uint8_t>(gen());
}

namespace {
std::atomic<int> g_interrupt{0};
void on_interrupt(int sig) { g_interrupt.store(sig, std::memory_order_relaxed); }

void set_mask(int how) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(how, &set, nullptr);
}
}  // namespace

std::atomic<int>& interrupt_signal() { return g_interrupt; }

void install_interrupt_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocked read() on a pipe returns EINTR
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

void block_interrupts() { set_mask(SIG_BLOCK); }
void unblock_interrupts() { set_mask(SIG_UNBLOCK); }

std::unique_ptr<Engine> start_command_engine(const std::string& backend, const std::string& gpus,
                                             unsigned threads, uint32_t idle_spin_us,
                                             std::size_t slots) {
  EngineConfig cfg;
  cfg.backend = parse_backend(backend);
  apply_gpus(gpus, &cfg);
  cfg.threads = threads;
  cfg.idle_spin_us = idle_spin_us;
  cfg.slot_count = slots;
  std::unique_ptr<Engine> engine;
  block_interrupts();
  const Status created = Engine::create(cfg, &engine);
  unblock_interrupts();
  if (created.code() == Errc::unavailable) {
    if (!gpus.empty()) fail("--backend {} --gpus {}: {}", backend, gpus, created.message());
    fail("--backend {}: {}", backend, created.message());
  }
  check(created, "cannot start the engine");
  return engine;
}

}  // namespace sectorcrypt::cli
