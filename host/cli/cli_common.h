// What every `sectorcrypt` command shares: the error type that becomes the one-line
// "sectorcrypt: error: ..." message, cryptsetup-style option parsing (cipher names,
// backends, sizes), the key-file reader, byte and rate formatting, and the interrupt flag.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "engine/engine.h"
#include "kernels/sector_format.h"

namespace sectorcrypt::cli {

// Project version from CMake.
const char* version();

// Exit statuses (also in README.md, EXIT STATUS).
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;        // a run-time error, one line on stderr
inline constexpr int kExitUsage = 2;        // bad command line (CLI11's own message)
inline constexpr int kExitMismatch = 3;     // compare: backends disagree byte for byte
inline constexpr int kExitInterrupted = 130;  // SIGINT/SIGTERM, like a shell

// Thrown for anything the user should read as one line; main() prints it and exits 1.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what, int exit_code = kExitError)
      : std::runtime_error(what), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

// Throws Error with `what` and the Status message when `s` is not ok.
void check(const Status& s, const std::string& what);

// "aes-xts-plain64" (default), "aes-xts-plain", "aes-xts-plain64be" -> the IV generator.
IvMode parse_cipher(const std::string& name);
std::string cipher_name(IvMode mode);
// "cpu", "cuda", "auto".
BackendKind parse_backend(const std::string& name);

// --gpus: "" (not given: the engine's default, GPU 0), "all" (every usable GPU), or a
// comma-separated list of CUDA ordinals ("0,1"; "0,0" opens GPU 0 as two devices, a test
// mode) -> cfg->gpu_ordinal / gpu_ordinals. Throws Error naming --gpus on anything else.
void apply_gpus(const std::string& gpus, EngineConfig* cfg);
inline constexpr const char* kGpusHelp =
    "CUDA devices: a list of ordinals (0,1) or all (every usable GPU); default GPU 0. "
    "Each gets its own slots, so --slots must be at least their number";

// "4096", "4K", "16KiB", "1M", "2G" (binary units) -> bytes.
uint64_t parse_size(const std::string& text);
// A size as cryptsetup's options take it (--reduce-device-size): bytes, or a suffix
// S (512-byte sectors), K/M/G/T or KiB/MiB/GiB/TiB (binary), KB/MB/GB/TB (decimal);
// either case. Throws Error naming `option` on anything else.
uint64_t parse_cryptsetup_size(const std::string& text, const char* option);
// "4 KiB", "16 MiB", "1.5 GiB"; exact units where whole ("4 KiB", not "4.0 KiB").
std::string format_bytes(uint64_t bytes);
std::string format_size_short(uint64_t bytes);  // "4K", "16M": for tables and plots

// A raw volume key, zeroed when it goes away.
class KeyBytes {
 public:
  KeyBytes() = default;
  KeyBytes(const KeyBytes&) = delete;
  KeyBytes& operator=(const KeyBytes&) = delete;
  ~KeyBytes();
  std::vector<uint8_t>& bytes() { return bytes_; }
  const uint8_t* data() const { return bytes_.data(); }
  std::size_t size() const { return bytes_.size(); }

 private:
  std::vector<uint8_t> bytes_;
};

// --key-size: 0 (take the key file's size), 256 or 512 bits; anything else throws Error.
void check_key_bits(unsigned key_bits);

// --idle-spin-us (EngineConfig::idle_spin_us) of the engine commands: how long an idle
// engine thread polls before it sleeps. At most one second: more is a typo that would
// keep idle threads spinning.
inline constexpr const char* kIdleSpinHelp =
    "Microseconds an idle engine thread polls for work before it sleeps; 0 where other "
    "busy processes share the CPUs (polling then costs more than it saves)";
void check_idle_spin(uint32_t us);

// --time of bench and compare: seconds per measurement, more than 0 and at most 3600.
// NaN, infinity and days-long values are typos, not measurements (inf never ends).
void check_measure_seconds(double seconds);

// Reads a raw 32- or 64-byte key from `path`; `key_bits` (0: take the file's size) must
// match the file (check_key_bits first). Errors name the file and the sizes, never the bytes.
void read_key_file(const std::string& path, unsigned key_bits, KeyBytes* out);

// A deterministic test key of `bytes` bytes with distinct halves (bench, compare).
void make_bench_key(std::size_t bytes, KeyBytes* out);

// SIGINT/SIGTERM set this flag instead of killing the process (crypt commands).
std::atomic<int>& interrupt_signal();  // 0, or the signal number
void install_interrupt_handlers();
// Blocks SIGINT/SIGTERM in the calling thread (do it before the engine starts its
// threads, so the signal interrupts the main thread's read()), and unblocks it again.
void block_interrupts();
void unblock_interrupts();

// The engine of a crypt or rewrite command, from its --backend, --gpus, --threads,
// --idle-spin-us and --slots, started with SIGINT/SIGTERM blocked in its threads (block_interrupts). A
// backend that is not usable here fails naming --backend; anything else, the engine.
std::unique_ptr<Engine> start_command_engine(const std::string& backend, const std::string& gpus,
                                             unsigned threads, uint32_t idle_spin_us,
                                             std::size_t slots);

}  // namespace sectorcrypt::cli
