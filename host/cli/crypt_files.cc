// Opening inputs and outputs for encrypt/decrypt, with the checks that must happen before
// any byte is written (read-only targets, device sizes) and the temp-and-rename commit.
#include "host/cli/crypt_files.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "host/cli/cli_common.h"

namespace sectorcrypt::cli {
namespace {

FileKind kind_of(const struct stat& st) {
  if (S_ISREG(st.st_mode)) return FileKind::regular;
  if (S_ISBLK(st.st_mode)) return FileKind::block;
  if (S_ISCHR(st.st_mode)) return FileKind::character;
  return FileKind::stream;
}

uint64_t block_device_size(int fd, const std::string& name) {
  uint64_t bytes = 0;
  if (ioctl(fd, BLKGETSIZE64, &bytes) != 0) {
    fail("cannot get the size of block device '{}': {}", name, std::strerror(errno));
  }
  return bytes;
}

void refuse_read_only_block(int fd, const std::string& name) {
  int ro = 0;
  if (ioctl(fd, BLKROGET, &ro) == 0 && ro != 0) fail("'{}' is a read-only block device", name);
}

std::string dir_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string base_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

InputFile::~InputFile() {
  if (owned && fd >= 0) ::close(fd);
}

OutputFile::~OutputFile() {
  discard();
  if (owned && fd >= 0) ::close(fd);
}

void OutputFile::discard() {
  if (!temp_path.empty()) {
    ::unlink(temp_path.c_str());
    temp_path.clear();
  }
}

void OutputFile::commit() {
  if (kind == FileKind::regular || kind == FileKind::block || in_place) {
    // Durable before the rename makes it visible under the final name.
    if (::fdatasync(fd) != 0 && errno != EINVAL && errno != EROFS) {
      fail("cannot flush '{}': {}", name, std::strerror(errno));
    }
  }
  if (!temp_path.empty()) {
    if (::rename(temp_path.c_str(), final_path.c_str()) != 0) {
      fail("cannot rename the temporary output onto '{}': {}", final_path, std::strerror(errno));
    }
    temp_path.clear();
  }
}

bool same_file(const std::string& input, const std::string& output) {
  if (input == "-" || output == "-") return false;
  struct stat a {}, b {};
  if (::stat(input.c_str(), &a) != 0 || ::stat(output.c_str(), &b) != 0) return false;
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

void open_input(const std::string& path, bool read_write, InputFile* in) {
  if (path == "-") {
    in->name = "stdin";
    in->fd = STDIN_FILENO;
  } else {
    in->name = path;
    // In place on a block device: O_EXCL refuses one that is mounted or held open.
    struct stat pre {};
    const bool block = ::stat(path.c_str(), &pre) == 0 && S_ISBLK(pre.st_mode);
    const int flags = (read_write ? O_RDWR : O_RDONLY) | O_CLOEXEC | (read_write && block ? O_EXCL : 0);
    in->fd = ::open(path.c_str(), flags);
    if (in->fd < 0) {
      fail("cannot open '{}'{}: {}", path, read_write ? " for in-place writing" : "",
           std::strerror(errno));
    }
    in->owned = true;
  }
  struct stat st {};
  if (::fstat(in->fd, &st) != 0) fail("cannot stat '{}': {}", in->name, std::strerror(errno));
  in->kind = kind_of(st);
  if (S_ISDIR(st.st_mode)) fail("'{}' is a directory", in->name);
  if (in->kind == FileKind::regular) in->size = static_cast<uint64_t>(st.st_size);
  if (in->kind == FileKind::block) {
    in->size = block_device_size(in->fd, in->name);
    if (read_write) refuse_read_only_block(in->fd, in->name);
  }
}

void share_in_place(const InputFile& in, OutputFile* out) {
  out->name = in.name;
  out->fd = in.fd;
  out->owned = false;
  out->kind = in.kind;
  out->in_place = true;
}

void open_output(const std::string& path, std::optional<uint64_t> bytes, OutputFile* out) {
  if (path == "-") {
    out->name = "stdout";
    out->fd = STDOUT_FILENO;
    struct stat st {};
    if (::fstat(out->fd, &st) == 0) out->kind = kind_of(st);
    if (out->kind == FileKind::regular || out->kind == FileKind::block) {
      out->kind = FileKind::stream;  // redirected to a file: write where the shell put us
    }
    return;
  }
  out->name = path;
  struct stat st {};
  const bool exists = ::stat(path.c_str(), &st) == 0;
  if (!exists && errno != ENOENT) fail("cannot stat '{}': {}", path, std::strerror(errno));
  if (exists && S_ISDIR(st.st_mode)) fail("'{}' is a directory", path);

  if (exists && !S_ISREG(st.st_mode)) {
    // Devices and FIFOs are written in place, never replaced. O_EXCL on a block device
    // refuses one that is mounted or otherwise held open exclusively.
    const int flags = O_WRONLY | O_CLOEXEC | (S_ISBLK(st.st_mode) ? O_EXCL : 0);
    out->fd = ::open(path.c_str(), flags);
    if (out->fd < 0) fail("cannot open '{}' for writing: {}", path, std::strerror(errno));
    out->owned = true;
    out->kind = kind_of(st);
    if (out->kind == FileKind::block) {
      refuse_read_only_block(out->fd, path);
      const uint64_t have = block_device_size(out->fd, path);
      if (bytes && *bytes > have) {
        fail("block device '{}' holds {} bytes, less than the {} bytes to write", path, have,
             *bytes);
      }
    }
    return;
  }

  // A regular file: refuse a read-only one (even as root, who could write it anyway:
  // replacing a file someone marked read-only is not what an encrypt command should do).
  mode_t mode = 0666;
  if (exists) {
    if ((st.st_mode & 0222) == 0 || ::access(path.c_str(), W_OK) != 0) {
      fail("output '{}' is read-only (mode {:04o}); not replacing it", path, st.st_mode & 07777);
    }
    mode = st.st_mode & 07777;
  } else {
    const mode_t mask = ::umask(0);
    ::umask(mask);
    mode = 0666 & ~mask;
  }
  std::string tmpl = dir_of(path) + "/." + base_of(path) + ".sectorcrypt-XXXXXX";
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  out->fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (out->fd < 0) {
    fail("cannot create a temporary file next to '{}': {}", path, std::strerror(errno));
  }
  out->owned = true;
  out->kind = FileKind::regular;
  out->temp_path = name.data();
  out->final_path = path;
  if (::fchmod(out->fd, mode) != 0) {
    fail("cannot set the mode of the temporary output: {}", std::strerror(errno));
  }
}

}  // namespace sectorcrypt::cli
