// Child-process runner and temporary directories for the CLI tests.
#include "tests/cli/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

namespace sectorcrypt::clitest {

const char* cli_path() { return SECTORCRYPT_CLI; }

RunResult run_cli(const std::vector<std::string>& args, const RunOptions& opt) {
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) || pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC)) {
    throw std::runtime_error("pipe failed");
  }
  std::vector<std::string> argv_s{cli_path()};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);

  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    if (!opt.stdin_file.empty()) {
      const int fd = open(opt.stdin_file.c_str(), O_RDONLY);
      if (fd < 0) _exit(127);
      dup2(fd, 0);
    } else {
      dup2(in_pipe[0], 0);
    }
    if (!opt.stdout_file.empty()) {
      const int fd = open(opt.stdout_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd < 0) _exit(127);
      dup2(fd, 1);
    } else {
      dup2(out_pipe[1], 1);
    }
    dup2(err_pipe[1], 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(in_pipe[0]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
  signal(SIGPIPE, SIG_IGN);

  RunResult r;
  const std::string& data = opt.stdin_data;
  std::size_t written = 0;
  const std::size_t limit = opt.signal != 0 && opt.stdin_chunk_before_signal > 0
                                ? opt.stdin_chunk_before_signal
                                : data.size();
  int in_fd = in_pipe[1];
  if (opt.stdin_file.empty() && limit == 0 && opt.signal == 0) {
    close(in_fd);
    in_fd = -1;
  }
  bool signalled = opt.signal == 0;
  bool all_written = false;
  auto t_written = std::chrono::steady_clock::now();
  bool out_open = true, err_open = true;
  char buf[65536];
  while (out_open || err_open) {
    if (!all_written && written >= limit) {
      all_written = true;
      t_written = std::chrono::steady_clock::now();
    }
    if (!signalled && all_written && (!opt.signal_after_stderr || !r.err.empty()) &&
        std::chrono::steady_clock::now() - t_written >= std::chrono::milliseconds(opt.signal_after_ms)) {
      kill(pid, opt.signal);
      signalled = true;
    }
    pollfd fds[3];
    int n = 0;
    fds[n++] = {out_open ? out_pipe[0] : -1, POLLIN, 0};
    fds[n++] = {err_open ? err_pipe[0] : -1, POLLIN, 0};
    const bool want_write = in_fd >= 0 && written < limit;
    fds[n++] = {want_write ? in_fd : -1, POLLOUT, 0};
    poll(fds, n, 10);
    if (fds[0].revents) {
      const ssize_t k = read(out_pipe[0], buf, sizeof buf);
      if (k > 0) r.out.append(buf, static_cast<std::size_t>(k));
      else if (k == 0 || errno != EINTR) out_open = false;
    }
    if (fds[1].revents) {
      const ssize_t k = read(err_pipe[0], buf, sizeof buf);
      if (k > 0) r.err.append(buf, static_cast<std::size_t>(k));
      else if (k == 0 || errno != EINTR) err_open = false;
    }
    if (want_write && fds[2].revents) {
      const ssize_t k = write(in_fd, data.data() + written, limit - written);
      if (k > 0) written += static_cast<std::size_t>(k);
      else if (k < 0 && errno != EAGAIN && errno != EINTR) written = limit;  // child closed it
    }
    // All of stdin given (and no signal pending): close it so the child sees the end.
    if (in_fd >= 0 && written >= limit && signalled) {
      close(in_fd);
      in_fd = -1;
    }
  }
  if (in_fd >= 0) close(in_fd);
  close(out_pipe[0]);
  close(err_pipe[0]);
  int status = 0;
  rusage ru{};
  wait4(pid, &status, 0, &ru);
  r.max_rss_kib = ru.ru_maxrss;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/sectorcrypt-cli-test.XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::vector<std::string> TempDir::entries() const {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(path_)) {
    names.push_back(e.path().filename().string());
  }
  return names;
}

void write_file(const std::string& path, const std::vector<uint8_t>& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

void write_file(const std::string& path, const std::string& data) {
  write_file(path, std::vector<uint8_t>(data.begin(), data.end()));
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

}  // namespace sectorcrypt::clitest
