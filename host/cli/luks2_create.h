// Makes a detached LUKS2 header with libcryptsetup for a volume key the caller supplies,
// and one passphrase keyslot for it: what `reencrypt --encrypt` writes.
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
};

// Writes the header (data segment at offset 0 of data_device) and a keyslot, durably.
// Throws Error naming the path and libcryptsetup's errno.
void create_detached_header(const NewHeader& h);

}  // namespace sectorcrypt::cli
