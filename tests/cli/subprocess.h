// Runs the `sectorcrypt` program as a child process for the CLI tests: arguments, stdin
// from a string or a file, stdout and stderr captured (or stdout sent to a file), exit
// status, and the child's peak RSS (wait4's rusage).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sectorcrypt::clitest {

struct RunResult {
  int exit_code = -1;   // or 128 + signal when killed
  std::string out, err;
  long max_rss_kib = 0;
};

struct RunOptions {
  std::string stdin_data;     // written to the child's stdin (then closed)
  std::string stdin_file;     // or: stdin opened from this file
  std::string stdout_file;    // stdout to this file instead of captured
  // Send `signal` once the first `stdin_chunk_before_signal` bytes of stdin_data are in
  // the pipe (all of it when 0) and `signal_after_ms` more have passed, and, with
  // signal_after_stderr, once the child has written something to stderr (e.g. its
  // progress line: it is then past its set-up). stdin stays open until the signal.
  int signal = 0;
  int signal_after_ms = 0;
  bool signal_after_stderr = false;
  std::size_t stdin_chunk_before_signal = 0;
};

// The path of the program under test (compiled in).
const char* cli_path();

RunResult run_cli(const std::vector<std::string>& args, const RunOptions& opt = {});

// A fresh temporary directory, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  std::vector<std::string> entries() const;  // names in the directory

 private:
  std::string path_;
};

void write_file(const std::string& path, const std::vector<uint8_t>& data);
void write_file(const std::string& path, const std::string& data);
std::vector<uint8_t> read_file(const std::string& path);
bool file_exists(const std::string& path);

// Lines of `text` (without the newlines).
std::vector<std::string> lines(const std::string& text);

}  // namespace sectorcrypt::clitest
