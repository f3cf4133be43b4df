// Makes a detached LUKS2 header with libcryptsetup for a volume key the caller supplies,
// and one passphrase keyslot for it: what `reencrypt --encrypt` writes (to --header, or
// staged in a file and copied to the start of the image with --reduce-device-size).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/sector_format.h"

namespace sectorcrypt::cli {

struct NewHeader {
  std::string path;                // created (must not exist)
  std::string data_device;         // the image the header describes
  std::string cipher_mode = "xts-plain64";
  uint32_t sector_size = 512;
  const uint8_t* volume_key = nullptr;
  std::size_t volume_key_bytes = 0;
  std::string passphrase;          // the keyslot's
  std::string pbkdf = "argon2id";  // or pbkdf2, argon2i
  uint32_t pbkdf_iterations = 0;   // 0: benchmarked by libcryptsetup (its default)
  // Where the data segment starts in data_device. Not 0: the keyslots area fills the room
  // up to it (at most 128 MiB, libcryptsetup's rule), as cryptsetup lays out a header
  // made to be placed at the start of the data device (--reduce-device-size).
  uint64_t data_offset_bytes = 0;
  uint64_t file_bytes = 16 << 20;  // the file's size (cryptsetup's --header files: 16 MiB)
  uint64_t keyslots_bytes = 0;     // 0: libcryptsetup's choice; else the keyslots area
  // A new key for a volume keeps its name: empty uuid, a random one; empty label, none.
  std::string uuid;
  std::string label;
};

// Writes the header (data segment at data_offset_bytes of data_device) and a keyslot,
// durably.
// Throws Error naming the path and libcryptsetup's errno.
void create_detached_header(const NewHeader& h);

// Destroys (and wipes) every keyslot of the LUKS2 header file at `path`, durably, so that
// nothing opens it any more: what is left of a header exported by `reencrypt --decrypt`
// once the data is plain (cryptsetup's exported header has no keyslot either). Doing it
// again is harmless. Throws Error naming the path and libcryptsetup's errno.
void remove_all_keyslots(const std::string& path);

// False when the file at `path` is a LUKS2 header with no keyslot in use; true otherwise
// (also when it is no LUKS2 header at all: opening it then says what is wrong).
bool has_keyslots(const std::string& path);

}  // namespace sectorcrypt::cli
