// Progress bar drawing for encrypt/decrypt.
#include "host/cli/progress.h"

#include <unistd.h>

#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "host/cli/cli_common.h"

namespace sectorcrypt::cli {

Progress::Progress(bool enabled, std::optional<uint64_t> total)
    : enabled_(enabled), tty_(::isatty(STDERR_FILENO) == 1), total_(total), start_(std::chrono::steady_clock::now()), last_(start_) {}

void Progress::set_json(const std::string& device) {
  enabled_ = true;
  json_ = true;
  device_ = device;
}

void Progress::update(uint64_t done) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (drawn_ && now - last_ < std::chrono::milliseconds(json_ ? 1000 : 100)) return;
  last_ = now;
  draw(done, std::chrono::duration<double>(now - start_).count());
}

void Progress::finish(uint64_t done) {
  if (!enabled_) return;
  draw(done, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  if (json_) return;
  std::fputc('\n', stderr);
  std::fflush(stderr);
}

void Progress::draw(uint64_t done, double seconds) {
  drawn_ = true;
  const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0.0;
  if (json_) {
    // cryptsetup's names; the numbers as strings, as it prints them.
    const uint64_t total = total_.value_or(done);
    const uint64_t eta_ms = rate > 0 && total > done
        ? static_cast<uint64_t>(static_cast<double>(total - done) / rate * 1000.0) : 0;
    nlohmann::ordered_json j = {{"device", device_},
                        {"device_bytes", std::to_string(done)},
                        {"device_size", std::to_string(total)},
                        {"speed", std::to_string(static_cast<uint64_t>(rate))},
                        {"eta_ms", std::to_string(eta_ms)},
                        {"time_ms", std::to_string(static_cast<uint64_t>(seconds * 1000.0))}};
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
    return;
  }
  const std::string rate_text = format_bytes(static_cast<uint64_t>(rate)) + "/s";
  std::string line;
  if (total_ && *total_ > 0) {
    const double frac = static_cast<double>(done) / static_cast<double>(*total_);
    constexpr int kWidth = 24;
    const int filled = static_cast<int>(frac * kWidth);
    std::string bar(static_cast<std::size_t>(filled), '#');
    bar.resize(kWidth, '.');
    std::string eta = "--:--";
    if (rate > 0 && done < *total_) {
      const auto left = static_cast<uint64_t>(static_cast<double>(*total_ - done) / rate);
      eta = fmt::format("{}:{:02}", left / 60, left % 60);
    } else if (done >= *total_) {
      eta = "0:00";
    }
    line = fmt::format("[{}] {:3.0f}%  {} / {}  {}  ETA {}", bar, frac * 100.0,
                       format_bytes(done), format_bytes(*total_), rate_text, eta);
  } else {
    line = fmt::format("{}  {}  {:.1f} s", format_bytes(done), rate_text, seconds);
  }
  // \r and, on a terminal, clear-to-end so a shorter line leaves no stale characters.
  std::fprintf(stderr, "\r%s%s", line.c_str(), tty_ ? "\033[K" : "");
  std::fflush(stderr);
}

}  // namespace sectorcrypt::cli
