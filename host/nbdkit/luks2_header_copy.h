// A LUKS2 header that sits at the start of the image, copied out through the layer below
// into an anonymous in-memory file (memfd), so libcryptsetup can read it by path without
// the filter knowing where the plugin's data lives, and without device-mapper.
#pragma once

#include <string>

#include "host/nbdkit/encrypted_volume.h"
#include "kernels/status.h"

namespace sectorcrypt::nbd {

class HeaderCopy {
 public:
  HeaderCopy() = default;
  ~HeaderCopy();
  HeaderCopy(const HeaderCopy&) = delete;
  HeaderCopy& operator=(const HeaderCopy&) = delete;

  // Reads the binary header, then the JSON area to learn where the data segment starts,
  // then everything before it (both header copies and the keyslot areas).
  //
  // RETURN VALUE: ok; invalid_format for no LUKS header, a LUKS1 header ("LUKS1" named),
  // a JSON area that cannot be parsed, a data offset of 0 (the header is detached: name it
  // with header=) or beyond the image; backend_failure when reading below or writing the
  // memfd fails.
  Status copy_from(LowerDevice& lower, uint64_t image_bytes);

  // "/proc/self/fd/N", valid while this object lives.
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

}  // namespace sectorcrypt::nbd
