// What the modes of `sectorcrypt reencrypt` share (cmd_reencrypt.cc, the detached header;
// reencrypt_in_image.cc, a header inside the image): the options, the passphrase, and the
// steps each run is made of (unlocking, staging and placing a header, the run's files).
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "engine/engine.h"
#include "host/cli/crypt_files.h"
#include "host/cli/progress.h"
#include "host/cli/resumable_rewrite.h"
#include "host/cli/resume_file.h"
#include "host/luks2/luks2_volume.h"

namespace sectorcrypt::cli::reencrypt {

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

// The header's place: data_offset and file_bytes as NewHeader's; keyslots 0: the default.
struct HeaderRoom {
  uint64_t data_offset = 0;
  uint64_t file_bytes = 16 << 20;
  uint64_t keyslots = 0;
};

// --reduce-device-size in bytes; 0 when not given.
uint64_t reduce_bytes(const ReencryptOptions& o);

// The whole key file, as cryptsetup reads a passphrase file. Throws Error naming the file.
void read_passphrase(const std::string& path, Passphrase* out);

bool exists(const std::string& path);

// Makes a new or removed name in the directory of `path` durable (best effort).
void sync_dir_of(const std::string& path);

// Writes the staged header for a new volume key (given or random), durably.
// uuid, label: the volume's, kept by a change of key (empty: a new volume).
void stage_new_header(const ReencryptOptions& o, const Passphrase& pass, const std::string& staged,
                      uint32_t sector_size, const std::string& cipher, const HeaderRoom& room = {},
                      const std::string& uuid = {}, const std::string& label = {});

// Unlocks the volume key with the passphrase; header empty: the header inside `image`.
void unlock(const std::string& image, const std::string& header, const Passphrase& pass,
            luks2::Volume* vol);

// SIGINT/SIGTERM stopped a resumable run: where it got to, and how to go on.
int report_resumable_interrupt(uint64_t done, uint64_t total, const std::string& resume_path);

// The engine of --backend, --gpus, --threads, --idle-spin-us and --slots.
std::unique_ptr<Engine> start_engine(const ReencryptOptions& o);

// Copies the staged header (all of its file, which is the room before the data) over the
// start of the image, durably. Done only once the data is all moved or rewritten; done
// again, the same, by a rerun killed in the middle of it.
void place_header(const std::string& staged, const InputFile& image, uint64_t room);

// --journal, or .IMAGE.sectorcrypt-resume next to IMAGE.
std::string resume_path_of(const ReencryptOptions& o);

// Where a header bound for the inside of the image is staged: next to the resume file, as
// both are the run's state (the image may be a block device).
std::string staged_in_image_header(const ReencryptOptions& o, const std::string& resume_path);

// What kind of run a resume file records, for a refusal to name.
const char* run_kind(const RewriteParams& run);

// Whether the image starts with a LUKS header's magic.
bool starts_with_luks_magic(const InputFile& image);

// Opens the image for a run in place, refusing what cannot hold the run's state.
void open_image_in_place(const ReencryptOptions& o, InputFile* image);

// The data area of an unlocked volume: its length, in whole sectors.
uint64_t data_area_bytes(const luks2::SegmentLayout& layout, const InputFile& image);

// Hands an unlocked volume's key to the engine and wipes it from `vol`. `what` names the
// key in an error ("volume key", "new volume key").
KeyHandle add_volume_key(Engine& engine, luks2::Volume& vol, const char* what);

// Rewrites [offset, offset + bytes) of the image in place through `pump` with `mode`'s
// resilience and default zone size (resumable_rewrite.h).
RewriteResult rewrite_area(const PumpJob& pump, const InputFile& image, uint64_t offset,
                           uint64_t bytes, Resilience mode, const std::string& resume_path,
                           Progress* progress);

}  // namespace sectorcrypt::cli::reencrypt
