// `sectorcrypt reencrypt [--encrypt|--decrypt]`: LUKS2 conversion in place with
// cryptsetup's option names; neither flag changes the volume key (decrypt with the old,
// encrypt with the new, in one pass). Headers and keyslots are made and read with
// libcryptsetup; the data goes through the engine as a resumable in-place rewrite
// (resumable_rewrite.h).
//
// --encrypt and a key change write the new header to HEADER.sectorcrypt-new and rename it
// onto HEADER only when all data is rewritten and durable, so nothing opens a half-done
// volume with the new header; until then that file keeps the new volume key (in its
// keyslot) for a rerun to resume with.
//
// --encrypt --reduce-device-size SIZE without --header puts the header inside the image,
// laid out as cryptsetup 2.6 does: the data segment starts at SIZE/2 (the header, its
// keyslots area filling that room up to 128 MiB), the data moves there while it is
// encrypted (data_shift.h), and the volume's data is the first image size - SIZE/2 bytes
// of the original (of which cryptsetup keeps image size - SIZE: the last SIZE bytes are
// the user's to give up). The header is staged in .IMAGE.sectorcrypt-new-header (next to
// the resume file) and copied over the first SIZE/2 bytes only after the shift is complete
// and durable; then the staged file goes, then the resume file. With --header FILE,
// --reduce-device-size only sizes the detached header as cryptsetup does (SIZE bytes, its
// keyslots area SIZE - 32 KiB) and the data stays where it is, as cryptsetup leaves it.
//
// A volume whose header is inside the image (what luksFormat and --reduce-device-size
// make), as cryptsetup 2.6.1 treats it: a key change without --header rewrites the data
// area in place (resumable_rewrite.h) and puts a new header (same room, UUID and label, one
// keyslot) over the old one last, staged and copied as above. --decrypt needs --header
// NEWFILE: the header is exported there before the data moves down over it to the start of
// the image while it is decrypted (data_shift.h); once all is moved, the exported header's
// keyslots are removed (cryptsetup's has none either, and a rerun must not decrypt the
// plain data again) and it is renamed from NEWFILE.sectorcrypt-export to NEWFILE.
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "host/cli/cli_common.h"
#include "host/cli/commands.h"
#include "host/cli/crypt_files.h"
#include "host/cli/data_shift.h"
#include "host/cli/luks2_create.h"
#include "host/cli/progress.h"
#include "host/cli/resumable_rewrite.h"
#include "host/cli/resume_file.h"
#include "host/luks2/luks2_volume.h"

namespace sectorcrypt::cli {
namespace {

struct ReencryptOptions {
  std::string image;
  bool encrypt = false, decrypt = false;
  std::string header;
  std::string reduce_device_size;  // --encrypt: room for the header (cryptsetup's units)
  std::string key_file;            // passphrase
  std::string volume_key_file;     // --encrypt: the new volume key (default: random)
  std::string cipher = "aes-xts-plain64";
  unsigned key_size = 512;
  uint32_t sector_size = 512;
  std::string pbkdf = "argon2id";
  uint32_t pbkdf_iterations = 0;
  std::string resilience = "checksum";
  std::string journal;
  std::string backend = "auto";
  std::string gpus;  // --gpus: "" GPU 0, "all", or "0,1"
  unsigned threads = 0;
  uint32_t idle_spin_us = EngineConfig{}.idle_spin_us;
  std::size_t slots = 8;
  bool progress_json = false;
  std::optional<bool> progress;
};

// A passphrase, zeroed when it goes away.
struct Passphrase {
  std::string text;
  ~Passphrase() { explicit_bzero(text.data(), text.size()); }
};

// LUKS2's two metadata areas of 16 KiB each, as cryptsetup makes them.
constexpr uint64_t kMetadataBytes = 2 * 16384;
// cryptsetup's limit for --reduce-device-size.
constexpr uint64_t kMaxReduceBytes = 1ull << 30;

// The keyslots area one passphrase keyslot needs: the volume key split into 4000 stripes
// (LUKS2's anti-forensic splitter), in whole 4 KiB pages.
uint64_t one_keyslot_bytes(unsigned key_bits) {
  return (key_bits / 8 * 4000ull + 4095) / 4096 * 4096;
}

// --reduce-device-size in bytes; 0 when not given.
uint64_t reduce_bytes(const ReencryptOptions& o) {
  if (o.reduce_device_size.empty()) return 0;
  return parse_cryptsetup_size(o.reduce_device_size, "--reduce-device-size");
}

void check_reduce_device_size(const ReencryptOptions& o) {
  if (!o.encrypt) {
    fail("--reduce-device-size is for --encrypt: it makes room for a new header (--decrypt "
         "and a change of key keep the header where it is)");
  }
  const uint64_t size = reduce_bytes(o);
  const bool inside = o.header.empty();
  // Inside the image the header takes SIZE/2, which must end on a 4 KiB boundary.
  const uint64_t align = inside ? 8192 : 4096;
  if (size == 0 || size % align != 0) {
    fail("--reduce-device-size {}: must be a multiple of {} KiB{}", o.reduce_device_size,
         align / 1024, inside ? " (the header inside the image takes half of it, in whole 4 KiB pages)" : "");
  }
  if (size > kMaxReduceBytes) {
    fail("--reduce-device-size {}: at most 1 GiB (as cryptsetup)", o.reduce_device_size);
  }
  // cryptsetup's minimum (tried: one page less fails): the keyslot and one more 4 KiB page,
  // the area its own reencryption keeps for its "reencrypt" keyslot, so that cryptsetup can
  // re-encrypt the volume later.
  const uint64_t header_min = kMetadataBytes + one_keyslot_bytes(o.key_size) + 4096;
  if ((inside ? size / 2 : size) < header_min) {
    fail("--reduce-device-size {}: too small for a LUKS2 header with one {}-bit keyslot{}: "
         "at least {} bytes (cryptsetup recommends 32M)", o.reduce_device_size, o.key_size,
         inside ? ", which takes half of it" : "", inside ? 2 * header_min : header_min);
  }
  if (inside && o.resilience != "checksum" && o.resilience != "datashift") {
    fail("--resilience {}: --reduce-device-size without --header moves the data with its own "
         "resilience (datashift)", o.resilience);
  }
}

void check_reencrypt_options(const ReencryptOptions& o) {
  if (o.encrypt && o.decrypt) fail("--encrypt and --decrypt exclude each other");
  if (o.key_size != 256 && o.key_size != 512) fail("--key-size {}: choose 256 or 512", o.key_size);
  if (!o.reduce_device_size.empty()) {
    check_reduce_device_size(o);
  } else if (o.header.empty() && o.encrypt) {
    fail("--header FILE is needed: --encrypt writes a detached LUKS2 header there (or give "
         "--reduce-device-size SIZE to make room for one inside the image)");
  } else if (o.header.empty() && o.decrypt) {
    fail("--header FILE is needed: --decrypt reads a detached LUKS2 header there, or exports "
         "a header inside the image to it (a new file), since the data moves over it (as "
         "cryptsetup)");
  }
  if (o.header.empty() && !o.encrypt && !o.decrypt && o.resilience != "checksum" &&
      o.resilience != "journal") {
    fail("--resilience {}: a change of key with the header inside the image puts the new "
         "header in only after the data, so the run must be resumable: choose checksum or "
         "journal", o.resilience);
  }
  if (o.decrypt && !o.volume_key_file.empty()) fail("--volume-key-file is for --encrypt and a key change");
  const IvMode iv = parse_cipher(o.cipher);
  (void)iv;
  SectorFormat f;
  f.sector_size = o.sector_size;
  check(validate_format(f), "--sector-size");
  if (o.pbkdf != "pbkdf2" && o.pbkdf != "argon2i" && o.pbkdf != "argon2id") {
    fail("--pbkdf '{}': choose pbkdf2, argon2i or argon2id", o.pbkdf);
  }
  // datashift is only the name of what --reduce-device-size without --header does.
  if (o.reduce_device_size.empty() || !o.header.empty()) (void)parse_resilience(o.resilience);
  (void)parse_backend(o.backend);
  {
    EngineConfig gpus_checked;  // a bad --gpus fails before anything is read or written
    apply_gpus(o.gpus, &gpus_checked);
  }
  if (o.slots == 0) fail("--slots must be at least 1");
  check_idle_spin(o.idle_spin_us);
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

// The header's place: data_offset and file_bytes as NewHeader's; keyslots 0: the default.
struct HeaderRoom {
  uint64_t data_offset = 0;
  uint64_t file_bytes = 16 << 20;
  uint64_t keyslots = 0;
};

// Writes the staged header for a new volume key (given or random), durably.
// uuid, label: the volume's, kept by a change of key (empty: a new volume).
void stage_new_header(const ReencryptOptions& o, const Passphrase& pass, const std::string& staged,
                      uint32_t sector_size, const std::string& cipher, const HeaderRoom& room = {},
                      const std::string& uuid = {}, const std::string& label = {}) {
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

// SIGINT/SIGTERM stopped a resumable run: where it got to, and how to go on.
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

// Copies the staged header (all of its file, which is the room before the data) over the
// start of the image, durably. Done only once the data shift is complete; done again, the
// same, by a rerun killed in the middle of it.
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

// Where a header bound for the inside of the image is staged: next to the resume file, as
// both are the run's state (the image may be a block device).
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

// --encrypt --reduce-device-size without --header: the header goes inside the image.
int run_encrypt_in_image(const ReencryptOptions& o) {
  const uint64_t size = reduce_bytes(o);
  const uint64_t room = size / 2;  // the data offset, as cryptsetup's
  install_interrupt_handlers();
  Passphrase pass;
  read_passphrase(o.key_file, &pass);
  const std::string resume_path = resume_path_of(o);
  const std::string staged = staged_in_image_header(o, resume_path);

  InputFile image;
  open_input(o.image, true, &image);
  if (!image.positional()) fail("'{}' is not a file or block device", image.name);
  if (image.kind == FileKind::block && o.journal.empty()) {
    fail("on block device '{}': name a --journal FILE on persistent storage for the resume "
         "state", image.name);
  }
  if (!image.size || *image.size <= size) {
    fail("'{}' ({} bytes) is not larger than --reduce-device-size {} ({} bytes): no data would "
         "be left", image.name, image.size.value_or(0), o.reduce_device_size, size);
  }
  if (*image.size % o.sector_size != 0) {
    fail("'{}' ({} bytes) is not a whole number of {}-byte sectors", image.name, *image.size,
         o.sector_size);
  }
  const uint64_t area_bytes = *image.size - room;

  // What an earlier run left: its resume file, and the staged header until it is placed.
  if (const auto run = ResumeFile::recorded_run(resume_path)) {
    if (run->mode != static_cast<uint32_t>(Resilience::datashift) || run->direction != 0) {
      fail("the resume file '{}' belongs to an interrupted {} of '{}': rerun that command to "
           "finish it first", resume_path, run_kind(*run), image.name);
    }
    if (run->area_offset != room) {
      fail("the resume file '{}' belongs to an interrupted run with --reduce-device-size {} "
           "bytes: rerun that command to finish it", resume_path, 2 * run->area_offset);
    }
    if (ResumeFile::finished(resume_path)) {
      // Killed after the shift: the header is left to place (again), or only the files.
      if (exists(staged)) {
        place_header(staged, image, room);
        if (::unlink(staged.c_str()) != 0) {
          fail("cannot remove the placed header's staged copy '{}': {}", staged, std::strerror(errno));
        }
        sync_dir_of(staged);
      }
      remove_resume_file(resume_path);
      std::fprintf(stderr, "sectorcrypt: '%s' is encrypted (finished the interrupted run)\n",
                   image.name.c_str());
      return kExitOk;
    }
    if (!exists(staged)) {
      fail("the resume file '{}' records an unfinished data shift of '{}', but the new header "
           "'{}' that holds its volume key is gone: the run cannot be finished", resume_path,
           image.name, staged);
    }
  } else {
    // A staged header without a resume file is from a run killed before it moved any data.
    if (exists(staged) && ::unlink(staged.c_str()) != 0) {
      fail("cannot remove the unfinished header '{}': {}", staged, std::strerror(errno));
    }
    if (starts_with_luks_magic(image)) {
      fail("'{}' starts with a LUKS header already; not encrypting it again", image.name);
    }
  }
  // Started before anything is staged, so a backend that cannot start leaves no file.
  std::unique_ptr<Engine> engine = start_engine(o);
  if (!exists(staged)) {
    HeaderRoom where;
    where.data_offset = room;
    where.file_bytes = room;
    stage_new_header(o, pass, staged, o.sector_size, o.cipher, where);
  }
  luks2::Volume vol;
  unlock(o.image, staged, pass, &vol);
  const luks2::SegmentLayout& layout = vol.layout;
  if (layout.data_offset_bytes != room || layout.format.sector_size != o.sector_size) {
    fail("the staged header '{}' puts the data at byte {} in {}-byte sectors, not at {} in {}: "
         "it is from another command", staged, layout.data_offset_bytes,
         layout.format.sector_size, room, o.sector_size);
  }

  KeyHandle handle;
  check(engine->add_key(vol.key.data(), vol.key.size(), KeyOptions{}, &handle), "volume key");
  vol.key.reset();
  Progress progress(o.progress.value_or(::isatty(STDERR_FILENO) == 1), area_bytes);
  if (o.progress_json) progress.set_json(o.image);
  ShiftJob job;
  job.pump.engine = engine.get();
  job.pump.key = handle;
  job.pump.dir = Direction::encrypt;
  job.pump.format = layout.format;
  job.pump.iv_sector = layout.iv_offset;
  job.fd = image.fd;
  job.name = image.name;
  job.shift = room;
  job.area_bytes = area_bytes;
  job.resume_path = resume_path;
  const ShiftResult r = run_data_shift(job, &progress);
  if (r.interrupted) return report_resumable_interrupt(r.bytes_done, area_bytes, resume_path);
  engine.reset();
  // The resume file now holds the completion record: from here a rerun only places the
  // header (again) and removes the files.
  place_header(staged, image, room);
  if (::unlink(staged.c_str()) != 0) {
    fail("cannot remove the placed header's staged copy '{}': {}", staged, std::strerror(errno));
  }
  sync_dir_of(staged);
  remove_resume_file(resume_path);
  return kExitOk;
}

// A header with no keyslot opens nothing: refused by name before the passphrase is tried,
// since it is most likely what a finished --decrypt exported (whose data is plain now).
void refuse_header_without_keyslots(const ReencryptOptions& o) {
  if (exists(o.header) && !has_keyslots(o.header)) {
    fail("the header '{}' has no keyslot: nothing opens it (is it what a finished --decrypt "
         "exported? then '{}' is plain already)", o.header, o.image);
  }
}

// Opens the image for a run in place, refusing what cannot hold the run's state.
void open_image_in_place(const ReencryptOptions& o, InputFile* image) {
  open_input(o.image, true, image);
  if (!image->positional()) fail("'{}' is not a file or block device", image->name);
  if (image->kind == FileKind::block && o.journal.empty()) {
    fail("on block device '{}': name a --journal FILE on persistent storage for the resume "
         "state", image->name);
  }
}

// The data area of an unlocked volume: its length, in whole sectors.
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

// A change of key (neither --encrypt nor --decrypt) without --header: the header is inside
// the image. The data area is rewritten in place with the old and the new key; the new
// header, staged with the same room, UUID and label, replaces the old only once the
// rewrite is complete and recorded as such, so until then a rerun unlocks the old key from
// the image and the new one from the staged file.
int run_change_key_in_image(const ReencryptOptions& o) {
  install_interrupt_handlers();
  Passphrase pass;
  read_passphrase(o.key_file, &pass);
  const std::string resume_path = resume_path_of(o);
  const std::string staged = staged_in_image_header(o, resume_path);
  const Resilience resilience = parse_resilience(o.resilience);
  InputFile image;
  open_image_in_place(o, &image);

  if (const auto run = ResumeFile::recorded_run(resume_path)) {
    if (run->mode == static_cast<uint32_t>(Resilience::datashift) || run->direction != 3 ||
        run->area_offset == 0) {
      fail("the resume file '{}' belongs to an interrupted {} of '{}'{}: rerun that command "
           "to finish it first", resume_path, run_kind(*run), image.name,
           run->area_offset == 0 ? " with a detached --header" : "");
    }
    if (ResumeFile::finished(resume_path)) {
      // Killed after the rewrite: the new header is left to place (again), or only the files.
      if (exists(staged)) {
        place_header(staged, image, run->area_offset);
        if (::unlink(staged.c_str()) != 0) {
          fail("cannot remove the placed header's staged copy '{}': {}", staged, std::strerror(errno));
        }
        sync_dir_of(staged);
      }
      remove_resume_file(resume_path);
      std::fprintf(stderr, "sectorcrypt: '%s' has its new volume key (finished the interrupted "
                   "run)\n", image.name.c_str());
      return kExitOk;
    }
    if (!exists(staged)) {
      fail("the resume file '{}' records an unfinished key change of '{}', but the new header "
           "'{}' that holds its new volume key is gone: the run cannot be finished",
           resume_path, image.name, staged);
    }
  } else if (exists(staged) && ::unlink(staged.c_str()) != 0) {
    // A staged header without a resume file is from a run killed before it rewrote anything.
    fail("cannot remove the unfinished header '{}': {}", staged, std::strerror(errno));
  }

  // Started before anything is staged, so a backend that cannot start leaves no file.
  std::unique_ptr<Engine> engine = start_engine(o);
  luks2::Volume vol;      // the old key, from the header in the image
  luks2::Volume new_vol;  // the new key, from the staged header
  unlock(o.image, "", pass, &vol);
  const luks2::SegmentLayout& layout = vol.layout;
  const uint64_t room = layout.data_offset_bytes;
  if (room == 0) {
    fail("the header in '{}' puts the data at byte 0, over itself", image.name);
  }
  const uint64_t area_bytes = data_area_bytes(layout, image);
  if (!exists(staged)) {
    luks2::HeaderLocation where;
    where.image = o.image;
    luks2::HeaderSummary summary;
    check(luks2::read_header(where, &summary), fmt::format("LUKS2 header in '{}'", image.name));
    if (summary.keyslots.size() > 1) {
      std::fprintf(stderr, "sectorcrypt: note: the new header has one keyslot, for this "
                   "passphrase; the other %zu keyslots of '%s' are not carried over\n",
                   summary.keyslots.size() - 1, image.name.c_str());
    }
    HeaderRoom where_new;
    where_new.data_offset = room;
    where_new.file_bytes = room;
    stage_new_header(o, pass, staged, layout.format.sector_size, layout.cipher, where_new,
                     summary.uuid, summary.label);
  }
  unlock(o.image, staged, pass, &new_vol);
  if (new_vol.layout.data_offset_bytes != room ||
      new_vol.layout.format.sector_size != layout.format.sector_size) {
    fail("the staged header '{}' puts the data at byte {} in {}-byte sectors, not at {} in {}: "
         "it is from another command", staged, new_vol.layout.data_offset_bytes,
         new_vol.layout.format.sector_size, room, layout.format.sector_size);
  }

  KeyHandle handle, new_handle;
  check(engine->add_key(vol.key.data(), vol.key.size(), KeyOptions{}, &handle), "volume key");
  vol.key.reset();
  check(engine->add_key(new_vol.key.data(), new_vol.key.size(), KeyOptions{}, &new_handle),
        "new volume key");
  new_vol.key.reset();
  Progress progress(o.progress.value_or(::isatty(STDERR_FILENO) == 1), area_bytes);
  if (o.progress_json) progress.set_json(o.image);
  RewriteJob job;
  job.pump.engine = engine.get();
  job.pump.key = handle;
  job.pump.dir = Direction::decrypt;
  job.pump.format = layout.format;
  job.pump.iv_sector = layout.iv_offset;
  job.pump.then = SecondCrypt{new_handle, Direction::encrypt, new_vol.layout.iv_offset};
  job.fd = image.fd;
  job.name = image.name;
  job.area_offset = room;
  job.area_bytes = area_bytes;
  job.mode = resilience;
  job.zone_bytes = resilience == Resilience::journal ? kJournalZoneBytes : kChecksumZoneBytes;
  job.resume_path = resume_path;
  const RewriteResult r = run_resumable_rewrite(job, &progress);
  if (r.interrupted) return report_resumable_interrupt(r.bytes_done, area_bytes, resume_path);
  engine.reset();
  // The resume file now holds the completion record: from here a rerun only places the
  // header (again) and removes the files.
  place_header(staged, image, room);
  if (::unlink(staged.c_str()) != 0) {
    fail("cannot remove the placed header's staged copy '{}': {}", staged, std::strerror(errno));
  }
  sync_dir_of(staged);
  remove_resume_file(resume_path);
  return kExitOk;
}

// Where --decrypt with the header inside the image keeps the exported header until the
// data is plain: next to NEWFILE, so that the last rename stays on one file system.
std::string exported_header_path(const ReencryptOptions& o) { return o.header + ".sectorcrypt-export"; }

// --decrypt --header NEWFILE moves the data over the header inside the image when a run of
// it is recorded, or when NEWFILE is new and the image starts with a LUKS header.
bool decrypt_moves_data(const ReencryptOptions& o) {
  if (const auto run = ResumeFile::recorded_run(resume_path_of(o));
      run && run->mode == static_cast<uint32_t>(Resilience::datashift) && run->direction == 1) {
    return true;
  }
  if (exists(exported_header_path(o)) && exists(resume_path_of(o))) return true;
  if (exists(o.header)) return false;
  InputFile image;
  open_input(o.image, false, &image);
  return image.positional() && starts_with_luks_magic(image);
}

// Copies the header room [0, room) of the image to a new file at `path`, durably.
void export_header(const InputFile& image, uint64_t room, const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) fail("cannot create '{}' for the exported header: {}", path, std::strerror(errno));
  std::vector<uint8_t> buf(1 << 20);
  for (uint64_t off = 0; off < room;) {
    const std::size_t want = static_cast<std::size_t>(std::min<uint64_t>(buf.size(), room - off));
    const ssize_t r = ::pread(image.fd, buf.data(), want, static_cast<off_t>(off));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      const int e = r < 0 ? errno : EIO;
      ::close(fd);
      ::unlink(path.c_str());
      fail("cannot read the header of '{}': {}", image.name, std::strerror(e));
    }
    std::size_t put = 0;
    while (put < static_cast<std::size_t>(r)) {
      const ssize_t w = ::pwrite(fd, buf.data() + put, static_cast<std::size_t>(r) - put,
                                 static_cast<off_t>(off + put));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        const int e = errno;
        ::close(fd);
        ::unlink(path.c_str());
        fail("cannot write the exported header '{}': {}", path, std::strerror(e));
      }
      put += static_cast<std::size_t>(w);
    }
    off += static_cast<uint64_t>(r);
  }
  if (::fsync(fd) != 0) {
    const int e = errno;
    ::close(fd);
    ::unlink(path.c_str());
    fail("cannot flush the exported header '{}': {}", path, std::strerror(e));
  }
  ::close(fd);
  sync_dir_of(path);
}

// The exported header of a decrypted volume: no keyslot left (the key would open plain
// data), and at its name.
void retire_exported_header(const std::string& exported, const std::string& header) {
  remove_all_keyslots(exported);
  if (::rename(exported.c_str(), header.c_str()) != 0) {
    fail("the data is decrypted, but the exported header cannot be renamed from '{}' to '{}': "
         "{}", exported, header, std::strerror(errno));
  }
  sync_dir_of(header);
}

// --decrypt of a volume whose header is inside the image, as cryptsetup 2.6.1 does it: the
// data moves down to the start of the image while it is decrypted, over the header, which
// is first exported to NEWFILE (here, to NEWFILE.sectorcrypt-export until the end).
//
// Order and resilience. The export is written and made durable before the resume file is
// created, and the resume file before the first byte of data moves; so a rerun that finds
// the resume file trusts the export (the image's own header may be half overwritten by
// then), and one that finds no resume file exports again from the image, which nothing
// has touched. The data then moves in zones of the data offset (data_shift.h, down): zone
// k lands on the old place of zone k-1, which is durable at its new place and recorded
// before zone k is written, and never on its own old place, so a rerun after a kill at
// any instant crypts zone k again from an intact copy. Zone 0 lands on the header, which
// by then is in the export. Only after the completion record are the export's keyslots
// removed and the export renamed to NEWFILE, then the resume file goes: a rerun at any
// point in between does what is left of that and nothing else.
int run_decrypt_from_image(const ReencryptOptions& o) {
  install_interrupt_handlers();
  Passphrase pass;
  read_passphrase(o.key_file, &pass);
  const std::string resume_path = resume_path_of(o);
  const std::string exported = exported_header_path(o);
  InputFile image;
  open_image_in_place(o, &image);

  const auto run = ResumeFile::recorded_run(resume_path);
  if (run && (run->mode != static_cast<uint32_t>(Resilience::datashift) || run->direction != 1)) {
    fail("the resume file '{}' belongs to an interrupted {} of '{}': rerun that command to "
         "finish it first", resume_path, run_kind(*run), image.name);
  }
  if (run && ResumeFile::finished(resume_path)) {
    if (exists(exported)) retire_exported_header(exported, o.header);
    remove_resume_file(resume_path);
    std::fprintf(stderr, "sectorcrypt: '%s' is decrypted (finished the interrupted run)\n",
                 image.name.c_str());
    return kExitOk;
  }
  const bool resuming = exists(resume_path) && exists(exported);
  if (!resuming) {
    if (run) {
      fail("the resume file '{}' records an unfinished decryption of '{}', but the exported "
           "header '{}' that holds its volume key is gone: the run cannot be finished",
           resume_path, image.name, exported);
    }
    if (exists(o.header)) {
      fail("the header '{}' exists; not overwriting it (--decrypt exports the header inside "
           "'{}' to a new file)", o.header, image.name);
    }
  }
  // Started before anything is exported, so a backend that cannot start leaves no file.
  std::unique_ptr<Engine> engine = start_engine(o);
  if (!resuming) {
    luks2::Volume in_image;
    unlock(o.image, "", pass, &in_image);  // every check before the export is written
    in_image.key.reset();
    if (in_image.layout.data_offset_bytes == 0) {
      fail("the header in '{}' puts the data at byte 0, over itself", image.name);
    }
    (void)data_area_bytes(in_image.layout, image);
    if (in_image.layout.data_offset_bytes % in_image.layout.format.sector_size != 0) {
      fail("the data of '{}' starts at byte {}, not a whole number of {}-byte sectors: it "
           "cannot move to the start", image.name, in_image.layout.data_offset_bytes,
           in_image.layout.format.sector_size);
    }
    export_header(image, in_image.layout.data_offset_bytes, exported);
  }
  luks2::Volume vol;
  unlock(o.image, exported, pass, &vol);
  const luks2::SegmentLayout& layout = vol.layout;
  const uint64_t room = layout.data_offset_bytes;
  const uint64_t area_bytes = data_area_bytes(layout, image);

  KeyHandle handle;
  check(engine->add_key(vol.key.data(), vol.key.size(), KeyOptions{}, &handle), "volume key");
  vol.key.reset();
  Progress progress(o.progress.value_or(::isatty(STDERR_FILENO) == 1), area_bytes);
  if (o.progress_json) progress.set_json(o.image);
  ShiftJob job;
  job.pump.engine = engine.get();
  job.pump.key = handle;
  job.pump.dir = Direction::decrypt;
  job.pump.format = layout.format;
  job.pump.iv_sector = layout.iv_offset;
  job.fd = image.fd;
  job.name = image.name;
  job.shift = room;
  job.area_bytes = area_bytes;
  job.toward_start = true;
  job.resume_path = resume_path;
  const ShiftResult r = run_data_shift(job, &progress);
  if (r.interrupted) return report_resumable_interrupt(r.bytes_done, area_bytes, resume_path);
  engine.reset();
  retire_exported_header(exported, o.header);
  remove_resume_file(resume_path);
  std::fprintf(stderr, "sectorcrypt: '%s' is decrypted: its %llu bytes of data start at byte 0; "
               "the header is exported to '%s', without keyslots\n", image.name.c_str(),
               static_cast<unsigned long long>(area_bytes), o.header.c_str());
  return kExitOk;
}

int run_reencrypt(const ReencryptOptions& o) {
  check_reencrypt_options(o);
  if (!o.reduce_device_size.empty() && o.header.empty()) return run_encrypt_in_image(o);
  if (o.header.empty()) return run_change_key_in_image(o);
  if (o.decrypt && decrypt_moves_data(o)) return run_decrypt_from_image(o);
  install_interrupt_handlers();
  Passphrase pass;
  read_passphrase(o.key_file, &pass);
  const std::string staged = o.header + ".sectorcrypt-new";
  const std::string resume_path = resume_path_of(o);
  const Resilience resilience = parse_resilience(o.resilience);
  const bool change_key = !o.encrypt && !o.decrypt;

  InputFile image;
  open_input(o.image, true, &image);
  if (!image.positional()) fail("'{}' is not a file or block device", image.name);
  if (resilience != Resilience::none && image.kind == FileKind::block && o.journal.empty()) {
    fail("on block device '{}': name a --journal FILE on persistent storage for the resume "
         "state (or --resilience none)", image.name);
  }

  // A data shift half done is that run's to finish, before anything is staged here.
  if (const auto run = ResumeFile::recorded_run(resume_path);
      run && run->mode == static_cast<uint32_t>(Resilience::datashift)) {
    fail("the resume file '{}' belongs to an interrupted {} of '{}' (a header inside the "
         "image): rerun that command to finish it first", resume_path, run_kind(*run),
         image.name);
  }
  // A key change with the header inside the image records where its data starts; one with
  // a detached header has it at 0.
  if (const auto run = ResumeFile::recorded_run(resume_path);
      run && run->direction == 3 && run->area_offset != 0) {
    fail("the resume file '{}' belongs to an interrupted key change of '{}' with its header "
         "inside the image: rerun that command (without --header) to finish it first",
         resume_path, image.name);
  }

  // --encrypt and a key change stage a new header. One left without a resume file is from
  // a run killed before it wrote any data (perhaps inside libcryptsetup): start over.
  if (!o.decrypt) {
    if (exists(staged) && resilience == Resilience::none) {
      fail("'{}' is left from a run with --resilience none that did not finish; it holds the "
           "volume key of whatever that run encrypted, so it is not replaced", staged);
    }
    if (exists(staged) && !exists(resume_path) && ::unlink(staged.c_str()) != 0) {
      fail("cannot remove the unfinished header '{}': {}", staged, std::strerror(errno));
    }
  }
  // The staged header is renamed onto --header only after the resume file records that the
  // rewrite is complete, and before the file goes: a run killed in between is finished.
  if (!o.decrypt && !exists(staged) && exists(o.header) && ResumeFile::finished(resume_path)) {
    remove_resume_file(resume_path);
    std::fprintf(stderr, "sectorcrypt: '%s' was already %s; removed the resume file '%s'\n",
                 image.name.c_str(), o.encrypt ? "encrypted" : "re-encrypted", resume_path.c_str());
    return kExitOk;
  }

  // A resume file of another kind of run (an interrupted --decrypt, say) is that run's to
  // finish: refused before a header is staged or anything is written.
  if (const auto run = ResumeFile::recorded_run(resume_path)) {
    const uint32_t want = o.encrypt ? 0 : o.decrypt ? 1 : 3;  // 3: decrypt, then encrypt
    if (run->direction != want) {
      static const char* const kinds[] = {"encryption", "decryption", "key change",
                                          "key change"};
      fail("the resume file '{}' belongs to an interrupted {} of '{}': rerun that command to "
           "finish it first", resume_path, kinds[std::min<uint32_t>(run->direction, 3)],
           image.name);
    }
  }

  // Started before anything is staged, so a backend that cannot start leaves no file.
  std::unique_ptr<Engine> engine = start_engine(o);
  luks2::Volume vol;      // the key the data is crypted with first
  luks2::Volume new_vol;  // a key change: the key it is encrypted with then
  if (o.encrypt) {
    if (exists(o.header) && !exists(staged)) {
      fail("the header '{}' exists; not overwriting it (is '{}' already encrypted?)", o.header,
           image.name);
    }
    if (!exists(staged)) {
      HeaderRoom room;
      if (const uint64_t size = reduce_bytes(o)) {
        // cryptsetup sizes a detached header by --reduce-device-size and leaves the data.
        room.file_bytes = size;
        room.keyslots = size - kMetadataBytes;
      }
      stage_new_header(o, pass, staged, o.sector_size, o.cipher, room);
    }
    unlock(o.image, staged, pass, &vol);
  } else {
    if (!exists(staged)) refuse_header_without_keyslots(o);
    unlock(o.image, o.header, pass, &vol);
    if (change_key) {
      if (vol.layout.data_offset_bytes != 0) {
        fail("a change of key with --header works on volumes whose data starts at offset 0; "
             "'{}' puts the data at byte {} (for a header inside the image, leave out "
             "--header)", o.header, vol.layout.data_offset_bytes);
      }
      if (!exists(staged)) stage_new_header(o, pass, staged, vol.layout.format.sector_size, vol.layout.cipher);
      unlock(o.image, staged, pass, &new_vol);
    }
  }
  const luks2::SegmentLayout& layout = vol.layout;
  if (!image.size || *image.size <= layout.data_offset_bytes) {
    fail("'{}' has no data after the header's data offset", image.name);
  }
  const uint64_t area_bytes = layout.data_bytes > 0 ? layout.data_bytes : *image.size - layout.data_offset_bytes;
  if (area_bytes % layout.format.sector_size != 0) {
    fail("the data of '{}' ({} bytes) is not a whole number of {}-byte sectors", image.name,
         area_bytes, layout.format.sector_size);
  }

  KeyHandle handle, new_handle;
  check(engine->add_key(vol.key.data(), vol.key.size(), KeyOptions{}, &handle), "volume key");
  vol.key.reset();
  if (change_key) {
    check(engine->add_key(new_vol.key.data(), new_vol.key.size(), KeyOptions{}, &new_handle),
          "new volume key");
    new_vol.key.reset();
  }

  Progress progress(o.progress.value_or(::isatty(STDERR_FILENO) == 1), area_bytes);
  if (o.progress_json) progress.set_json(o.image);
  PumpJob pump;
  pump.engine = engine.get();
  pump.key = handle;
  pump.dir = o.encrypt ? Direction::encrypt : Direction::decrypt;
  pump.format = layout.format;
  pump.iv_sector = layout.iv_offset;
  if (change_key) {
    pump.dir = Direction::decrypt;
    pump.then = SecondCrypt{new_handle, Direction::encrypt, new_vol.layout.iv_offset};
  }

  if (resilience == Resilience::none) {
    pump.bytes = area_bytes;
    const PumpEnd end{image.fd, true, layout.data_offset_bytes};
    const PumpResult r = run_pump(pump, end, end, &progress);
    if (r.interrupted) {
      (void)::fdatasync(image.fd);
      std::fprintf(stderr, "sectorcrypt: interrupted after %llu of %llu bytes; '%s' is PARTLY "
                   "%s with no record to resume from (--resilience none)\n",
                   static_cast<unsigned long long>(r.bytes_done),
                   static_cast<unsigned long long>(area_bytes), image.name.c_str(),
                   o.encrypt ? "encrypted" : o.decrypt ? "decrypted" : "re-encrypted");
      return kExitInterrupted;
    }
    if (::fdatasync(image.fd) != 0) fail("cannot flush '{}': {}", image.name, std::strerror(errno));
  } else {
    RewriteJob job;
    job.pump = pump;
    job.fd = image.fd;
    job.name = image.name;
    job.area_offset = layout.data_offset_bytes;
    job.area_bytes = area_bytes;
    job.mode = resilience;
    job.zone_bytes = resilience == Resilience::journal ? kJournalZoneBytes : kChecksumZoneBytes;
    job.resume_path = resume_path;
    const RewriteResult r = run_resumable_rewrite(job, &progress);
    if (r.interrupted) return report_resumable_interrupt(r.bytes_done, area_bytes, resume_path);
  }
  engine.reset();
  if (!o.decrypt) {
    if (::rename(staged.c_str(), o.header.c_str()) != 0) {
      fail("'{}' is rewritten, but its header cannot be renamed from '{}' to '{}': {}",
           image.name, staged, o.header, std::strerror(errno));
    }
    sync_dir_of(o.header);
  }
  if (resilience != Resilience::none) remove_resume_file(resume_path);
  if (o.decrypt) {
    std::fprintf(stderr, "sectorcrypt: '%s' is decrypted; the header '%s' no longer describes it\n",
                 image.name.c_str(), o.header.c_str());
  }
  return kExitOk;
}

}  // namespace

void add_reencrypt_command(CLI::App& app, int* exit_code, RunMode mode) {
  auto o = std::make_shared<ReencryptOptions>();
  CLI::App* c = app.add_subcommand(
      "reencrypt", "Convert IMAGE in place: plain to LUKS2 (--encrypt), LUKS2 to plain "
                   "(--decrypt), or to a new volume key (neither), with a detached --header or "
                   "a header inside IMAGE: --encrypt makes one with --reduce-device-size, a key "
                   "change keeps it, --decrypt exports it to --header NEWFILE and moves the "
                   "data to the start (cryptsetup reencrypt compatible)");
  c->add_option("IMAGE", o->image, "The data: a file or block device")->required();
  c->add_flag("--encrypt", o->encrypt, "Encrypt a plain IMAGE into a new LUKS2 volume");
  c->add_flag("--decrypt", o->decrypt, "Decrypt a LUKS2 volume back to plain");
  c->add_option("--header", o->header,
                "Detached LUKS2 header file (--encrypt creates it); for --decrypt of a header "
                "inside IMAGE, a new file it is exported to");
  c->add_option("--reduce-device-size", o->reduce_device_size,
                "--encrypt without --header: put the header inside IMAGE, moving the data by "
                "SIZE/2 (the header's room) while it is encrypted; the last SIZE bytes of IMAGE "
                "must be free (shrink the filesystem first). Units as cryptsetup's: bytes, S "
                "(sectors), K/M/G (binary), KB/MB/GB; a multiple of 8 KiB, 32M recommended. "
                "With --header: the detached header's size")
      ->type_name("SIZE");
  c->add_option("-d,--key-file", o->key_file, "Passphrase file (whole file) of the keyslot")->required();
  c->add_option("--volume-key-file", o->volume_key_file,
                "--encrypt or a key change: the new volume key, raw (default: random)");
  c->add_option("-c,--cipher", o->cipher, "aes-xts-plain64, aes-xts-plain or aes-xts-plain64be")
      ->capture_default_str();
  c->add_option("-s,--key-size", o->key_size, "Volume key bits: 256 or 512")->capture_default_str();
  c->add_option("--sector-size", o->sector_size, "Encryption sector size: 512 to 4096")
      ->capture_default_str();
  c->add_option("--pbkdf", o->pbkdf, "Keyslot PBKDF: argon2id, argon2i or pbkdf2")->capture_default_str();
  c->add_option("--pbkdf-force-iterations", o->pbkdf_iterations,
                "PBKDF iterations (no benchmark); default: libcryptsetup benchmarks 2 s");
  c->add_option("--resilience", o->resilience,
                "checksum (default), journal or none; --reduce-device-size without --header "
                "always moves the data with datashift")
      ->capture_default_str();
  c->add_option("--journal", o->journal,
                "The resume file (default: .IMAGE.sectorcrypt-resume next to IMAGE)");
  c->add_option("--backend", o->backend, "cpu, cuda or auto")->capture_default_str();
  c->add_option("--gpus", o->gpus, kGpusHelp);
  c->add_option("--threads", o->threads, "Engine threads (default: all cores)");
  c->add_option("--idle-spin-us", o->idle_spin_us, kIdleSpinHelp)->capture_default_str();
  c->add_option("--slots", o->slots, "Engine batch slots of 1 MiB")->capture_default_str();
  c->add_flag("--progress-json", o->progress_json,
              "Progress as JSON lines on stdout (cryptsetup's field names)");
  c->add_flag_callback("--progress", [o] { o->progress = true; }, "Show progress on stderr");
  c->add_flag_callback("--no-progress", [o] { o->progress = false; }, "Never show progress");
  set_command_callback(c, exit_code, mode, [o] { check_reencrypt_options(*o); },
                       [o] { return run_reencrypt(*o); });
}

}  // namespace sectorcrypt::cli
