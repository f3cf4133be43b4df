// The three conversions of a volume whose header is inside the image.
#include "host/cli/reencrypt_in_image.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "host/cli/cli_common.h"
#include "host/cli/data_shift.h"
#include "host/cli/luks2_create.h"
#include "host/cli/progress.h"
#include "host/cli/resumable_rewrite.h"

namespace sectorcrypt::cli::reencrypt {
namespace {

// Where --decrypt with the header inside the image keeps the exported header until the
// data is plain: next to NEWFILE, so that the last rename stays on one file system.
std::string exported_header_path(const ReencryptOptions& o) { return o.header + ".sectorcrypt-export"; }

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

// The end of a conversion that staged a new header: the resume file holds the completion
// record, so from here a rerun only places the header (again, unless a run killed after
// placing it removed the staged copy) and removes the files.
int place_staged_header(const std::string& staged, const InputFile& image, uint64_t room,
                        const std::string& resume_path) {
  if (exists(staged)) {
    place_header(staged, image, room);
    if (::unlink(staged.c_str()) != 0) {
      fail("cannot remove the placed header's staged copy '{}': {}", staged, std::strerror(errno));
    }
    sync_dir_of(staged);
  }
  remove_resume_file(resume_path);
  return kExitOk;
}

// Hands the volume key to the engine (and wipes it from `vol`), then moves the data area
// by the header's room while crypting it (data_shift.h): up for --encrypt, down
// (toward_start) for --decrypt.
ShiftResult shift_data(const ReencryptOptions& o, Engine& engine, luks2::Volume& vol,
                       Direction dir, bool toward_start, const InputFile& image,
                       uint64_t area_bytes, const std::string& resume_path) {
  const KeyHandle handle = add_volume_key(engine, vol, "volume key");
  Progress progress(o.progress.value_or(::isatty(STDERR_FILENO) == 1), area_bytes);
  if (o.progress_json) progress.set_json(o.image);
  ShiftJob job;
  job.pump.engine = &engine;
  job.pump.key = handle;
  job.pump.dir = dir;
  job.pump.format = vol.layout.format;
  job.pump.iv_sector = vol.layout.iv_offset;
  job.fd = image.fd;
  job.name = image.name;
  job.shift = vol.layout.data_offset_bytes;
  job.area_bytes = area_bytes;
  job.toward_start = toward_start;
  job.resume_path = resume_path;
  return run_data_shift(job, &progress);
}

}  // namespace

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
      place_staged_header(staged, image, room, resume_path);
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

  const ShiftResult r = shift_data(o, *engine, vol, Direction::encrypt, false, image, area_bytes,
                                   resume_path);
  if (r.interrupted) return report_resumable_interrupt(r.bytes_done, area_bytes, resume_path);
  engine.reset();
  return place_staged_header(staged, image, room, resume_path);
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
      place_staged_header(staged, image, run->area_offset, resume_path);
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

  PumpJob pump;
  pump.engine = engine.get();
  pump.key = add_volume_key(*engine, vol, "volume key");
  pump.dir = Direction::decrypt;
  pump.format = layout.format;
  pump.iv_sector = layout.iv_offset;
  pump.then = SecondCrypt{add_volume_key(*engine, new_vol, "new volume key"), Direction::encrypt,
                          new_vol.layout.iv_offset};
  Progress progress(o.progress.value_or(::isatty(STDERR_FILENO) == 1), area_bytes);
  if (o.progress_json) progress.set_json(o.image);
  const RewriteResult r = rewrite_area(pump, image, room, area_bytes, resilience, resume_path,
                                       &progress);
  if (r.interrupted) return report_resumable_interrupt(r.bytes_done, area_bytes, resume_path);
  engine.reset();
  return place_staged_header(staged, image, room, resume_path);
}

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
  if (o.resilience != "checksum") {
    fail("--resilience {}: --decrypt of '{}', whose header is inside it, moves the data with "
         "its own resilience (datashift)", o.resilience, o.image);
  }
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
  const uint64_t area_bytes = data_area_bytes(vol.layout, image);
  const ShiftResult r = shift_data(o, *engine, vol, Direction::decrypt, true, image, area_bytes,
                                   resume_path);
  if (r.interrupted) return report_resumable_interrupt(r.bytes_done, area_bytes, resume_path);
  engine.reset();
  retire_exported_header(exported, o.header);
  remove_resume_file(resume_path);
  std::fprintf(stderr, "sectorcrypt: '%s' is decrypted: its %llu bytes of data start at byte 0; "
               "the header is exported to '%s', without keyslots\n", image.name.c_str(),
               static_cast<unsigned long long>(area_bytes), o.header.c_str());
  return kExitOk;
}

}  // namespace sectorcrypt::cli::reencrypt
