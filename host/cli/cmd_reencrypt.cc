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
// With --header FILE, --reduce-device-size only sizes the detached header as cryptsetup
// does (SIZE bytes, its keyslots area SIZE - 32 KiB) and the data stays where it is, as
// cryptsetup leaves it. A header inside the image (--encrypt --reduce-device-size without
// --header, a key change without --header, --decrypt of such a volume):
// reencrypt_in_image.h.
#include <fcntl.h>
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
#include "host/cli/luks2_create.h"
#include "host/cli/progress.h"
#include "host/cli/reencrypt_in_image.h"
#include "host/cli/reencrypt_steps.h"
#include "host/cli/resumable_rewrite.h"
#include "host/cli/resume_file.h"
#include "host/luks2/luks2_volume.h"

namespace sectorcrypt::cli {
namespace {

using namespace reencrypt;  // NOLINT: the steps this file's runs are made of

// cryptsetup's limit for --reduce-device-size.
constexpr uint64_t kMaxReduceBytes = 1ull << 30;

// The keyslots area one passphrase keyslot needs: the volume key split into 4000 stripes
// (LUKS2's anti-forensic splitter), in whole 4 KiB pages.
uint64_t one_keyslot_bytes(unsigned key_bits) {
  return (key_bits / 8 * 4000ull + 4095) / 4096 * 4096;
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

// A header with no keyslot opens nothing: refused by name before the passphrase is tried,
// since it is most likely what a finished --decrypt exported (whose data is plain now).
void refuse_header_without_keyslots(const ReencryptOptions& o) {
  if (exists(o.header) && !has_keyslots(o.header)) {
    fail("the header '{}' has no keyslot: nothing opens it (is it what a finished --decrypt "
         "exported? then '{}' is plain already)", o.header, o.image);
  }
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
  const uint64_t area_bytes = data_area_bytes(layout, image);

  const KeyHandle handle = add_volume_key(*engine, vol, "volume key");
  KeyHandle new_handle;
  if (change_key) new_handle = add_volume_key(*engine, new_vol, "new volume key");

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
    const RewriteResult r = rewrite_area(pump, image, layout.data_offset_bytes, area_bytes,
                                         resilience, resume_path, &progress);
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
                "checksum (default), journal or none; --reduce-device-size without --header, "
                "and --decrypt of a header inside IMAGE, always move the data with datashift")
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
