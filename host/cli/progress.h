// A one-line progress bar on stderr: bytes, percentage and bar when the total is known,
// rate and ETA. Redrawn at most ten times a second; off unless enabled.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace sectorcrypt::cli {

class Progress {
 public:
  Progress(bool enabled, std::optional<uint64_t> total);
  void update(uint64_t done);  // cheap when it is not yet time to redraw
  void finish(uint64_t done);  // final redraw and newline (when enabled)
  // Instead of the bar: one JSON object a second on stdout with cryptsetup's
  // --progress-json field names, for `device`.
  void set_json(const std::string& device);

 private:
  void draw(uint64_t done, double seconds);
  bool enabled_;
  bool tty_;
  std::optional<uint64_t> total_;
  std::chrono::steady_clock::time_point start_, last_;
  bool drawn_ = false;
  bool json_ = false;
  std::string device_;
};

}  // namespace sectorcrypt::cli
