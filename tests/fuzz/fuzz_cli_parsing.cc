// libFuzzer: the CLI's option values and key-file handling (host/cli/cli_common.h), and
// the sector-format checks they feed (validate_format, iv_sequence_for). Bad input must
// end in cli::Error or a Status, never a crash; a key-file error never shows key bytes.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "host/cli/cli_common.h"
#include "kernels/sector_format.h"

using namespace sectorcrypt;

namespace {

void check_format(const uint8_t* d, std::size_t n) {
  if (n < 14) return;
  SectorFormat f;
  std::memcpy(&f.sector_size, d, 4);
  f.iv_mode = static_cast<IvMode>(d[4] % 5);  // includes values out of range
  f.iv_large_sectors = d[5] & 1;
  uint64_t start = 0;
  std::memcpy(&start, d + 6, 8);
  if (!validate_format(f).ok()) return;  // iv_sequence_for requires a valid format
  IvSequence seq{};
  const Status s = iv_sequence_for(f, start, &seq);
  const uint64_t units = f.sector_size / 512;
  if (f.iv_large_sectors) {
    // Sector-size IV units: a start inside a sector is refused, else IV = start / units.
    if (s.ok() != (start % units == 0)) std::abort();
    if (s.ok() && (seq.first != start / units || seq.step != 1)) std::abort();
  } else {
    // dm-crypt's default: 512-byte IV units whatever the sector size.
    if (!s.ok() || seq.first != start || seq.step != units) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const uint8_t which = data[0] % 5;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    switch (which) {
      case 0: {
        const IvMode m = cli::parse_cipher(text);
        if (cli::parse_cipher(cli::cipher_name(m)) != m) std::abort();  // round trip
        break;
      }
      case 1:
        try {
          // cryptsetup's units: a bare number is bytes, "S" 512-byte sectors.
          const uint64_t v = cli::parse_cryptsetup_size(text, "--reduce-device-size");
          if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos &&
              v != std::stoull(text)) {
            std::abort();
          }
        } catch (const cli::Error&) {
        }
        (void)cli::parse_size(text);
        break;
      case 2:
        (void)cli::parse_backend(text);
        break;
      case 3: {
        // A key file of these bytes, read with a key size from the first byte.
        static const unsigned kBits[] = {0, 128, 256, 192, 512, 7};
        const unsigned bits = size > 1 ? kBits[data[1] % 6] : 0;
        const int fd = memfd_create("key", 0);
        if (fd < 0) return 0;
        if (size > 2 && write(fd, data + 2, size - 2) != static_cast<ssize_t>(size - 2)) {
          close(fd);
          return 0;
        }
        const std::string path = "/proc/self/fd/" + std::to_string(fd);
        try {
          cli::KeyBytes key;
          cli::read_key_file(path, bits, &key);
          if (key.size() != 32 && key.size() != 64) std::abort();
        } catch (const cli::Error& e) {
          // Never the key bytes in the message (the file's first 8 bytes as hex).
          if (size >= 2 + 8) {
            char hex[17];
            for (int i = 0; i < 8; ++i) std::snprintf(hex + 2 * i, 3, "%02x", data[2 + i]);
            if (std::string(e.what()).find(hex) != std::string::npos) std::abort();
          }
          close(fd);
          throw;
        }
        close(fd);
        break;
      }
      case 4:
        check_format(data + 1, size - 1);
        break;
    }
  } catch (const cli::Error&) {
  }
  return 0;
}
