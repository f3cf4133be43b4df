// The steps of a reencrypt run: files, passphrase, headers.
#include "host/cli/reencrypt_steps.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "host/cli/cli_common.h"
#include "host/cli/luks2_create.h"
#include "host/cli/resumable_rewrite.h"

namespace sectorcrypt::cli::reencrypt {

uint64_t reduce_bytes(const ReencryptOptions& o) {
  if (o.reduce_device_size.empty()) return 0;
  return parse_cryptsetup_size(o.reduce_device_size, "--reduce-device-size");
}

void read_passphrase(const std::string& path, Passphrase* out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open the key file '{}': {}", path, std::strerror(errno));
  char buf[4096];
  for (;;) {
    const ssize_t r = ::read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      const int e = errno;
      ::close(fd);
      explicit_bzero(buf, sizeof buf);
      fail("cannot read the key file '{}': {}", path, std::strerror(e));
    }
    if (r == 0) break;
    out->text.append(buf, static_cast<std::size_t>(r));
    if (out->text.size() > (8u << 20)) {
      ::close(fd);
      fail("the key file '{}' is larger than 8 MiB", path);
    }
  }
  ::close(fd);
  explicit_bzero(buf, sizeof buf);
  if (out->text.empty()) fail("the key file '{}' is empty", path);
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

void sync_dir_of(const std::string& path) {
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  const int d = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d >= 0) {
    (void)::fsync(d);
    ::close(d);
  }
}

void stage_new_header(const ReencryptOptions& o, const Passphrase& pass, const std::string& staged,
                      uint32_t sector_size, const std::string& cipher, const HeaderRoom& room,
                      const std::string& uuid, const std::string& label) {
  KeyBytes vk;
  if (!o.volume_key_file.empty()) {
    read_key_file(o.volume_key_file, o.key_size, &vk);
  } else {
    vk.bytes().resize(o.key_size / 8);
    if (::getrandom(vk.bytes().data(), vk.size(), 0) != static_cast<ssize_t>(vk.size())) {
      fail("cannot get random bytes for the volume key: {}", std::strerror(errno));
    }
  }
  NewHeader h;
  h.path = staged;
  h.data_device = o.image;
  h.cipher_mode = cipher.substr(4);  // "aes-xts-plain64" -> "xts-plain64"
  h.sector_size = sector_size;
  h.volume_key = vk.data();
  h.volume_key_bytes = vk.size();
  h.passphrase = pass.text;
  h.pbkdf = o.pbkdf;
  h.pbkdf_iterations = o.pbkdf_iterations;
  h.data_offset_bytes = room.data_offset;
  h.file_bytes = room.file_bytes;
  h.keyslots_bytes = room.keyslots;
  h.uuid = uuid;
  h.label = label;
  try {
    create_detached_header(h);
  } catch (const Error&) {
    explicit_bzero(h.passphrase.data(), h.passphrase.size());
    ::unlink(staged.c_str());
    throw;
  }
  explicit_bzero(h.passphrase.data(), h.passphrase.size());
  sync_dir_of(staged);
}

void unlock(const std::string& image, const std::string& header, const Passphrase& pass,
            luks2::Volume* vol) {
  luks2::HeaderLocation where;
  where.image = image;
  where.header = header;
  check(luks2::open_volume(where, pass.text.data(), pass.text.size(), -1, vol),
        header.empty() ? fmt::format("LUKS2 header in '{}'", image)
                       : fmt::format("LUKS2 header '{}'", header));
}

int report_resumable_interrupt(uint64_t done, uint64_t total, const std::string& resume_path) {
  std::fprintf(stderr, "sectorcrypt: interrupted after %llu of %llu bytes; '%s' records "
               "where: run the same command again to resume\n",
               static_cast<unsigned long long>(done), static_cast<unsigned long long>(total),
               resume_path.c_str());
  return kExitInterrupted;
}

std::unique_ptr<Engine> start_engine(const ReencryptOptions& o) {
  return start_command_engine(o.backend, o.gpus, o.threads, o.idle_spin_us, o.slots);
}

void place_header(const std::string& staged, const InputFile& image, uint64_t room) {
  const int fd = ::open(staged.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open the new header '{}': {}", staged, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) != room) {
    ::close(fd);
    fail("the new header '{}' is not {} bytes, the room before the data", staged, room);
  }
  std::vector<uint8_t> buf(1 << 20);
  for (uint64_t off = 0; off < room;) {
    const std::size_t want = static_cast<std::size_t>(std::min<uint64_t>(buf.size(), room - off));
    const ssize_t r = ::pread(fd, buf.data(), want, static_cast<off_t>(off));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      const int e = r < 0 ? errno : EIO;
      ::close(fd);
      fail("cannot read the new header '{}': {}", staged, std::strerror(e));
    }
    std::size_t put = 0;
    while (put < static_cast<std::size_t>(r)) {
      const ssize_t w = ::pwrite(image.fd, buf.data() + put, static_cast<std::size_t>(r) - put,
                                 static_cast<off_t>(off + put));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        const int e = errno;
        ::close(fd);
        fail("'{}' is encrypted, but writing its header from '{}' failed: {}; run the same "
             "command again to finish", image.name, staged, std::strerror(e));
      }
      put += static_cast<std::size_t>(w);
    }
    off += static_cast<uint64_t>(r);
  }
  ::close(fd);
  if (::fdatasync(image.fd) != 0) {
    fail("cannot flush the header written into '{}': {}; run the same command again to "
         "finish", image.name, std::strerror(errno));
  }
}

std::string resume_path_of(const ReencryptOptions& o) {
  return o.journal.empty() ? default_resume_path(o.image) : o.journal;
}

std::string staged_in_image_header(const ReencryptOptions& o, const std::string& resume_path) {
  return o.journal.empty() ? resume_path.substr(0, resume_path.size() - 7) + "-new-header"
                           : o.journal + ".new-header";
}

const char* run_kind(const RewriteParams& run) {
  if (run.mode == static_cast<uint32_t>(Resilience::datashift)) {
    return run.direction == 0 ? "--encrypt --reduce-device-size (data moving up for a header)"
                              : "--decrypt (data moving down over its exported header)";
  }
  static const char* const kinds[] = {"encryption", "decryption", "key change", "key change"};
  return kinds[std::min<uint32_t>(run.direction, 3)];
}

bool starts_with_luks_magic(const InputFile& image) {
  static const uint8_t magic[6] = {'L', 'U', 'K', 'S', 0xba, 0xbe};
  uint8_t head[6] = {};
  return ::pread(image.fd, head, sizeof head, 0) == static_cast<ssize_t>(sizeof head) &&
         std::memcmp(head, magic, sizeof magic) == 0;
}

void open_image_in_place(const ReencryptOptions& o, InputFile* image) {
  open_input(o.image, true, image);
  if (!image->positional()) fail("'{}' is not a file or block device", image->name);
  if (image->kind == FileKind::block && o.journal.empty()) {
    fail("on block device '{}': name a --journal FILE on persistent storage for the resume "
         "state", image->name);
  }
}

KeyHandle add_volume_key(Engine& engine, luks2::Volume& vol, const char* what) {
  KeyHandle handle;
  check(engine.add_key(vol.key.data(), vol.key.size(), KeyOptions{}, &handle), what);
  vol.key.reset();
  return handle;
}

RewriteResult rewrite_area(const PumpJob& pump, const InputFile& image, uint64_t offset,
                           uint64_t bytes, Resilience mode, const std::string& resume_path,
                           Progress* progress) {
  RewriteJob job;
  job.pump = pump;
  job.fd = image.fd;
  job.name = image.name;
  job.area_offset = offset;
  job.area_bytes = bytes;
  job.mode = mode;
  job.zone_bytes = default_zone_bytes(mode);
  job.resume_path = resume_path;
  return run_resumable_rewrite(job, progress);
}

uint64_t data_area_bytes(const luks2::SegmentLayout& layout, const InputFile& image) {
  if (!image.size || *image.size <= layout.data_offset_bytes) {
    fail("'{}' has no data after the header's data offset", image.name);
  }
  const uint64_t area = layout.data_bytes > 0 ? layout.data_bytes : *image.size - layout.data_offset_bytes;
  if (area % layout.format.sector_size != 0) {
    fail("the data of '{}' ({} bytes) is not a whole number of {}-byte sectors", image.name,
         area, layout.format.sector_size);
  }
  return area;
}

}  // namespace sectorcrypt::cli::reencrypt
