// `sectorcrypt encrypt|decrypt`: cryptsetup plain-mode names and units over files, block
// devices and pipes, streamed through the engine.
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "engine/engine.h"
#include "host/cli/cli_common.h"
#include "host/cli/commands.h"
#include "host/cli/crypt_files.h"
#include "host/cli/crypt_pump.h"
#include "host/cli/progress.h"
#include "host/cli/resumable_rewrite.h"
#include "host/luks2/luks2_volume.h"
#include "kernels/secure_zero.h"

namespace sectorcrypt::cli {
namespace {

struct CryptOptions {
  Direction dir = Direction::encrypt;
  std::string input, output;
  std::string cipher = "aes-xts-plain64";
  std::string key_file;
  unsigned key_size = 0;  // bits; 0: from the key file
  uint32_t sector_size = 512;
  bool iv_large_sectors = false;
  uint64_t offset = 0, skip = 0;  // 512-byte sectors
  std::optional<uint64_t> size;   // 512-byte sectors
  std::string backend = "auto";
  std::string gpus;  // --gpus: "" GPU 0, "all", or "0,1"
  unsigned threads = 0;
  uint32_t idle_spin_us = EngineConfig{}.idle_spin_us;
  std::size_t slots = 8;
  std::optional<bool> progress;   // unset: when stderr is a terminal
  std::string type = "plain";     // plain, or luks2: key file = passphrase, rest from header
  std::string header;             // LUKS2 detached header
  std::string plain_option_given; // the first plain-mode option on the command line
  std::optional<std::string> resilience;  // in place only; unset: checksum
  std::string journal;            // resume file; empty: next to the target
  std::optional<std::string> zone_size;
};

// The plain-mode options that a LUKS2 header decides instead.
constexpr const char* kPlainOnlyOptions[] = {"--cipher", "--key-size", "--sector-size",
                                             "--iv-large-sectors", "--offset", "--skip",
                                             "--size"};

// What is crypted where: from the options (plain) or from the LUKS2 header.
struct CryptArea {
  SectorFormat format;
  uint64_t offset = 0;            // 512-byte sectors
  std::optional<uint64_t> size;   // 512-byte sectors
  uint64_t skip = 0;              // IV sector number of the first sector
};

Resilience in_place_resilience(const CryptOptions& o) {
  return o.resilience ? parse_resilience(*o.resilience) : Resilience::checksum;
}

// `sector_size`: the volume's (with --type luks2, the header's, known once it is opened).
uint64_t zone_bytes(const CryptOptions& o, Resilience mode, uint32_t sector_size) {
  if (!o.zone_size) return default_zone_bytes(mode);
  const uint64_t z = parse_size(*o.zone_size);
  if (z == 0 || z % sector_size != 0 || z > (1ull << 30)) {
    fail("--zone-size {} must be a whole number of {}-byte sectors, at most 1 GiB", *o.zone_size,
         sector_size);
  }
  return z;
}

const char* verb(Direction d) { return d == Direction::encrypt ? "encrypted" : "decrypted"; }

SectorFormat crypt_format(const CryptOptions& o) {
  SectorFormat format;
  format.sector_size = o.sector_size;
  format.iv_mode = parse_cipher(o.cipher);
  format.iv_large_sectors = o.iv_large_sectors;
  return format;
}

// Everything refused before INPUT, OUTPUT or the key file is touched; the order is the order
// a run reports them in.
void check_crypt_options(const CryptOptions& o) {
  if (o.type != "plain" && o.type != "luks2") fail("--type {}: use plain or luks2", o.type);
  if (o.type == "luks2") {
    if (!o.plain_option_given.empty()) {
      fail("{} is a plain-mode option; with --type luks2 it comes from the header",
           o.plain_option_given);
    }
    if (o.input == "-") fail("--type luks2 reads the header from INPUT: it cannot be stdin");
  } else if (!o.header.empty()) {
    fail("--header is a LUKS2 option: add --type luks2");
  }
  check(validate_format(crypt_format(o)), "--sector-size");
  (void)parse_backend(o.backend);
  {
    EngineConfig gpus_checked;  // a bad --gpus fails before anything is read or written
    apply_gpus(o.gpus, &gpus_checked);
  }
  if (o.slots == 0) fail("--slots must be at least 1");
  if (o.iv_large_sectors && (o.skip * 512) % o.sector_size != 0) {
    fail("--skip {} is not a whole number of {}-byte sectors, which --iv-large-sectors needs",
         o.skip, o.sector_size);
  }
  if (o.offset > (UINT64_MAX >> 9) || o.skip > (UINT64_MAX >> 9) ||
      (o.size && *o.size > (UINT64_MAX >> 9))) {
    fail("--offset, --skip and --size count 512-byte sectors; a value is too large");
  }
  check_key_bits(o.key_size);
  check_idle_spin(o.idle_spin_us);
  // With --type luks2 the sector size is the header's: checked again once it is read.
  (void)zone_bytes(o, in_place_resilience(o), o.type == "luks2" ? 512 : o.sector_size);
}

// The message of a resumable rewrite stopped by SIGINT/SIGTERM.
int report_interrupted_rewrite(const CryptOptions& o, const RewriteJob& job,
                               const RewriteResult& r) {
  std::fprintf(stderr,
               "sectorcrypt: interrupted after %llu of %llu bytes; '%s' is PARTLY %s: bytes "
               "[%llu, %llu) of the area are %s, the rest is unchanged; '%s' records where: "
               "run the same command again to resume\n",
               static_cast<unsigned long long>(r.bytes_done),
               static_cast<unsigned long long>(job.area_bytes), job.name.c_str(), verb(o.dir),
               static_cast<unsigned long long>(job.area_offset),
               static_cast<unsigned long long>(job.area_offset + r.bytes_done), verb(o.dir),
               job.resume_path.c_str());
  return kExitInterrupted;
}

// LUKS2: the key file holds the passphrase (cryptsetup's --key-file); the volume key,
// format and area come from the header.
void open_luks2(const CryptOptions& o, KeyBytes* key, CryptArea* area) {
  std::vector<char> pass;
  {
    std::FILE* f = std::fopen(o.key_file.c_str(), "rb");
    if (f == nullptr) fail("cannot open key file '{}': {}", o.key_file, std::strerror(errno));
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
      pass.insert(pass.end(), buf, buf + n);
      secure_zero(buf, n);
      if (pass.size() > (8u << 20)) {
        std::fclose(f);
        secure_zero(pass.data(), pass.size());
        fail("key file '{}' is larger than 8 MiB (cryptsetup's limit)", o.key_file);
      }
    }
    std::fclose(f);
  }
  luks2::HeaderLocation where;
  where.image = o.input;
  where.header = o.header;
  luks2::Volume v;
  const Status s = luks2::open_volume(where, pass.data(), pass.size(), -1, &v);
  if (!pass.empty()) secure_zero(pass.data(), pass.size());
  if (!s) fail("{}: {}", o.header.empty() ? o.input : o.header, s.message());
  key->bytes().assign(v.key.data(), v.key.data() + v.key.size());
  area->format = v.layout.format;
  area->offset = v.layout.data_offset_bytes / 512;
  area->size = v.layout.data_bytes / 512;
  area->skip = v.layout.iv_offset;
}

int run_crypt(const CryptOptions& o) {
  check_crypt_options(o);
  install_interrupt_handlers();
  KeyBytes key;
  CryptArea area;
  if (o.type == "luks2") {
    open_luks2(o, &key, &area);
  } else {
    area.format = crypt_format(o);
    area.offset = o.offset;
    area.size = o.size;
    area.skip = o.skip;
    read_key_file(o.key_file, o.key_size, &key);
  }
  const SectorFormat format = area.format;

  const bool in_place = same_file(o.input, o.output);
  const Resilience resilience = in_place_resilience(o);
  if (!in_place && ((o.resilience && resilience != Resilience::none) || !o.journal.empty())) {
    fail("--resilience and --journal apply to in-place rewrites (INPUT and OUTPUT the same "
         "file); '{}' and '{}' are different files", o.input, o.output);
  }
  if (in_place && resilience != Resilience::none && !o.journal.empty() && same_file(o.journal, o.input)) {
    fail("--journal '{}' is the target itself", o.journal);
  }
  InputFile in;
  open_input(o.input, in_place, &in);
  if (in_place && resilience != Resilience::none) {
    if (!in.positional()) fail("'{}' cannot be rewritten in place: not a file or block device", in.name);
    if (in.kind == FileKind::block && o.journal.empty()) {
      fail("in place on block device '{}': name a --journal FILE on persistent storage for "
           "the resume state (or --resilience none to run without one)", in.name);
    }
  }

  // The area: --offset and --size in 512-byte sectors, by default to the end of INPUT.
  const uint64_t offset_bytes = area.offset * 512;
  std::optional<uint64_t> total;
  if (area.size) total = *area.size * 512;
  if (in.size) {
    if (offset_bytes > *in.size) {
      fail("--offset {} ({} bytes) is past the end of '{}' ({} bytes)", area.offset, offset_bytes,
           in.name, *in.size);
    }
    if (total && offset_bytes + *total > *in.size) {
      fail("--offset {} + --size {} ({} bytes) go past the end of '{}' ({} bytes)", area.offset,
           *area.size, offset_bytes + *total, in.name, *in.size);
    }
    if (!total) total = *in.size - offset_bytes;
  }
  if (total && *total % format.sector_size != 0) {
    fail("the area is {} bytes, not a whole number of {}-byte sectors", *total,
         format.sector_size);
  }
  if (total && *total == 0) fail("nothing to {}: the area of '{}' is empty",
                                 o.dir == Direction::encrypt ? "encrypt" : "decrypt", in.name);

  // Its threads start with SIGINT blocked, so the signal interrupts this thread's read()
  // of a pipe instead of landing on a worker.
  std::unique_ptr<Engine> engine =
      start_command_engine(o.backend, o.gpus, o.threads, o.idle_spin_us, o.slots);
  KeyHandle handle;
  check(engine->add_key(key.data(), key.size(), KeyOptions{}, &handle), "key file '" + o.key_file + "'");

  if (in_place && resilience != Resilience::none) {
    RewriteJob job;
    job.pump.engine = engine.get();
    job.pump.key = handle;
    job.pump.dir = o.dir;
    job.pump.format = format;
    job.pump.iv_sector = o.skip;
    job.fd = in.fd;
    job.name = in.name;
    job.area_offset = offset_bytes;
    job.area_bytes = *total;
    job.mode = resilience;
    job.zone_bytes = zone_bytes(o, resilience, format.sector_size);
    job.resume_path = o.journal.empty() ? default_resume_path(o.input) : o.journal;
    Progress progress(o.progress.value_or(::isatty(STDERR_FILENO) == 1), total);
    const RewriteResult r = run_resumable_rewrite(job, &progress);
    if (r.interrupted) return report_interrupted_rewrite(o, job, r);
    engine.reset();
    remove_resume_file(job.resume_path);
    return kExitOk;
  }

  OutputFile out;
  if (in_place) {
    share_in_place(in, &out);
  } else {
    open_output(o.output, total, &out);
  }

  PumpJob job;
  job.engine = engine.get();
  job.key = handle;
  job.dir = o.dir;
  job.format = format;
  job.iv_sector = area.skip;
  job.bytes = total;
  PumpEnd src{in.fd, in.positional(), offset_bytes};
  PumpEnd dst{out.fd, out.positional(), in_place ? offset_bytes : 0};
  if (!in.positional() && offset_bytes > 0 && !skip_input(in.fd, offset_bytes, in.name.c_str())) {
    std::fprintf(stderr, "sectorcrypt: interrupted before any data was processed\n");
    return kExitInterrupted;
  }
  Progress progress(o.progress.value_or(::isatty(STDERR_FILENO) == 1), total);
  const PumpResult r = run_pump(job, src, dst, &progress);

  if (r.interrupted) {
    const std::string of = total ? fmt::format(" of {}", *total) : std::string();
    std::string what;
    if (!out.temp_path.empty()) {
      out.discard();
      what = fmt::format("'{}' was not written", out.final_path);
    } else if (out.in_place || out.kind == FileKind::block) {
      (void)::fdatasync(out.fd);
      what = fmt::format("'{}' is PARTLY {}: bytes [{}, {}) of the area are {}, the rest is unchanged",
                         out.name, verb(o.dir), dst.offset, dst.offset + r.bytes_done,
                         verb(o.dir));
    } else {
      what = fmt::format("the output on {} is incomplete", out.name);
    }
    std::fprintf(stderr, "sectorcrypt: interrupted after %llu%s bytes; %s\n",
                 static_cast<unsigned long long>(r.bytes_done), of.c_str(), what.c_str());
    return kExitInterrupted;
  }
  if (r.bytes_done == 0) fail("nothing to {}: {} was empty", o.dir == Direction::encrypt ? "encrypt" : "decrypt", in.name);
  out.commit();
  return kExitOk;
}

void add_crypt_command(CLI::App& app, Direction dir, int* exit_code, RunMode mode) {
  const bool enc = dir == Direction::encrypt;
  auto o = std::make_shared<CryptOptions>();
  o->dir = dir;
  CLI::App* c = app.add_subcommand(
      enc ? "encrypt" : "decrypt",
      enc ? "Encrypt an area of INPUT into OUTPUT (dm-crypt plain mode compatible)"
          : "Decrypt an area of INPUT into OUTPUT (dm-crypt plain mode compatible)");
  c->add_option("INPUT", o->input, "Input file or block device; - for stdin")->required();
  c->add_option("OUTPUT", o->output,
                "Output file or block device (gets exactly the processed area); - for stdout; "
                "the same file as INPUT works in place")
      ->required();
  c->add_option("-c,--cipher", o->cipher,
                "aes-xts-plain64 (default), aes-xts-plain or aes-xts-plain64be")
      ->capture_default_str();
  c->add_option("-d,--key-file", o->key_file,
                "Raw volume key: 32 or 64 bytes (--type luks2: the passphrase)")
      ->required();
  c->add_option("--type", o->type,
                "plain (default), or luks2: INPUT is a LUKS2 image whose data segment is "
                "crypted; cipher, sector size and offsets come from its header")
      ->capture_default_str();
  c->add_option("--header", o->header, "LUKS2 detached header file (--type luks2)");
  c->add_option("-s,--key-size", o->key_size,
                "Key size in bits, 256 or 512 (checked against the key file)");
  c->add_option("--sector-size", o->sector_size, "Sector size in bytes: 512, 1024, 2048, 4096")
      ->capture_default_str();
  c->add_flag("--iv-large-sectors", o->iv_large_sectors,
              "IVs count sectors of --sector-size instead of 512-byte units");
  c->add_option("-o,--offset", o->offset,
                "Start of the area in INPUT, in 512-byte sectors")
      ->capture_default_str();
  c->add_option("-p,--skip", o->skip, "IV offset: IV sector number of the first sector (512-byte units)")
      ->capture_default_str();
  c->add_option("-b,--size", o->size, "Length of the area in 512-byte sectors (default: to the end of INPUT)");
  c->add_option("--backend", o->backend, "cpu, cuda, hybrid (CPU and GPU together) or auto (the GPU when one is usable)")
      ->capture_default_str();
  c->add_option("--gpus", o->gpus, kGpusHelp);
  c->add_option("--threads", o->threads, "Engine threads (default: all cores)");
  c->add_option("--idle-spin-us", o->idle_spin_us, kIdleSpinHelp)->capture_default_str();
  c->add_option("--slots", o->slots, "Engine batch slots of 1 MiB (bounds memory)")
      ->capture_default_str();
  c->add_option("--resilience", o->resilience,
                 "In place: checksum (default: a hash of each old sector), journal (a copy of "
                 "each zone) or none; with checksum or journal a killed run resumes when rerun");
  c->add_option("--journal", o->journal,
                "In place: the resume file (default: .INPUT.sectorcrypt-resume next to INPUT)");
  c->add_option("--zone-size", o->zone_size,
                "In place: bytes made resumable per sync (default 64M checksum, 32M journal)");
  c->add_flag_callback("--progress", [o] { o->progress = true; },
                       "Show progress on stderr even when it is not a terminal");
  c->add_flag_callback("--no-progress", [o] { o->progress = false; }, "Never show progress");
  c->parse_complete_callback([o, c] {
    for (const char* name : kPlainOnlyOptions) {
      if (c->count(name) > 0) {
        o->plain_option_given = name;
        break;
      }
    }
  });
  set_command_callback(c, exit_code, mode, [o] { check_crypt_options(*o); },
                       [o] { return run_crypt(*o); });
}

}  // namespace

void add_crypt_commands(CLI::App& app, int* exit_code, RunMode mode) {
  add_crypt_command(app, Direction::encrypt, exit_code, mode);
  add_crypt_command(app, Direction::decrypt, exit_code, mode);
}

}  // namespace sectorcrypt::cli
