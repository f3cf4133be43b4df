// LUKS2 headers read through libcryptsetup, without device-mapper or a loop device: what a
// program needs to crypt a LUKS2 data segment itself (the volume key, cipher, sector size,
// where the segment starts and how its IVs are numbered), and a passphrase-free summary.
//
// Only what sectorcrypt can crypt is accepted: a LUKS2 header whose data segment is
// aes-xts-plain64 / -plain / -plain64be without integrity, not in the middle of a
// reencryption. Everything else is refused with a message that names what was found.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/pinned_memory.h"
#include "kernels/sector_format.h"
#include "kernels/status.h"

namespace sectorcrypt::luks2 {

// Where the header is: in the image itself (header empty) or detached.
struct HeaderLocation {
  std::string image;   // the data device or file
  std::string header;  // detached header file; empty: the header is at the start of image
  // For a reader that cannot open the image itself (an nbdkit filter sees its data only
  // through the plugin): the image's size in bytes. The image is then not opened, and
  // `header` must name a file holding the header (a copy of the image's first bytes up to
  // the data offset will do).
  std::optional<uint64_t> image_bytes;
};

// What the header says about the data segment (no key material).
struct SegmentLayout {
  std::string cipher;             // "aes-xts-plain64"
  SectorFormat format;            // sector size and IV generator (IVs in 512-byte units)
  uint64_t data_offset_bytes = 0; // where the data segment starts in image
  uint64_t data_bytes = 0;        // segment length (a "dynamic" segment: to the image's end)
  uint64_t iv_offset = 0;         // IV number of the segment's first 512-byte sector
  unsigned volume_key_bytes = 0;  // 32 (AES-128) or 64 (AES-256)
};

// The volume key in locked memory; zeroed when released (destroyed, moved from, reset).
class VolumeKey {
 public:
  // Room for `bytes` of key in locked memory (unlocked where RLIMIT_MEMLOCK forbids; the
  // key is still zeroed on release).
  Status allocate(std::size_t bytes);
  uint8_t* data() { return memory_.data(); }
  const uint8_t* data() const { return memory_.data(); }
  std::size_t size() const { return size_; }
  void set_size(std::size_t bytes) { size_ = bytes; }
  void reset() { memory_.reset(); size_ = 0; }

 private:
  PinnedMemory memory_;
  std::size_t size_ = 0;
};

struct Volume {
  SegmentLayout layout;
  VolumeKey key;
  int keyslot = -1;  // the keyslot the passphrase opened
};

// Opens the header, checks that sectorcrypt can crypt its data segment, and unlocks the
// volume key with the passphrase (`keyslot` -1: any keyslot).
//
// RETURN VALUE: ok and *out filled; or, with *out untouched:
//   unavailable     image or header missing or unreadable (the path and errno named)
//   invalid_format  no LUKS header, a LUKS1 header, a cipher or integrity mode other than
//                   aes-xts-plain64/plain/plain64be, a reencryption in progress, a
//                   sector size sectorcrypt does not support
//   invalid_key     wrong passphrase (for the keyslot when one is named), no such keyslot
//   resource_exhausted no memory for the key
Status open_volume(const HeaderLocation& where, const char* passphrase,
                   std::size_t passphrase_len, int keyslot, Volume* out);

struct KeyslotSummary {
  int index = 0;
  unsigned key_bytes = 0;
  std::string kdf;  // "pbkdf2", "argon2id", ...
};

// What `sectorcrypt info IMAGE` prints: the header, with no passphrase and no key.
struct HeaderSummary {
  std::string uuid;
  std::string label;
  bool detached = false;
  SegmentLayout layout;
  std::vector<KeyslotSummary> keyslots;
};

// RETURN VALUE: as open_volume(), without invalid_key; the same checks of the segment.
Status read_header(const HeaderLocation& where, HeaderSummary* out);

}  // namespace sectorcrypt::luks2
