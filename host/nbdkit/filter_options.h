// The filter's parameters (nbdkit KEY=VALUE), checked as they arrive and once all are in.
// Plain mode takes the names and units of the CLI and cryptsetup's plain mode; LUKS2 mode
// takes its cipher, sector size and offsets from the header.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "engine/engine.h"
#include "kernels/sector_format.h"

namespace sectorcrypt::nbd {

enum class KeyMode { plain, luks2 };

struct FilterOptions {
  // plain
  std::string key_file;
  std::optional<IvMode> iv_mode;          // cipher=
  std::optional<uint32_t> sector_size;    // sector-size=
  std::optional<bool> iv_large_sectors;   // iv-large-sectors=
  std::optional<uint64_t> offset_sectors; // offset=: 512-byte sectors before the data
  std::optional<uint64_t> skip_sectors;   // skip=: IV sector number of the first sector
  // LUKS2
  bool has_passphrase = false;            // the secret itself is held by the filter
  std::string header;
  std::optional<int> keyslot;
  // both. The filter crypts on nbdkit's threads (crypt_sync): a request of up to a write
  // chunk runs on the calling thread while a crypt token is free, with no hand-off (1 MiB
  // sequential reads: 0.71x the unencrypted server with the engine's 64 KiB default,
  // 0.89x with 4 MiB; bench/results/nbdkit.md). It opens no channels.
  EngineConfig engine = [] {
    EngineConfig c;
    c.inline_max_bytes = std::size_t{4} << 20;
    c.channel_count = 0;
    return c;
  }();
  bool allow_discards = false;

  KeyMode mode() const { return has_passphrase ? KeyMode::luks2 : KeyMode::plain; }
  SectorFormat plain_format() const;
};

// Sets the option for KEY=VALUE. RETURN VALUE: 1 taken, 0 not the filter's key (pass it on),
// -1 refused with *error saying why. passphrase= is not handled here (it is a secret).
int apply_option(const std::string& key, const std::string& value, FilterOptions* o,
                 std::string* error);

// Once every KEY=VALUE is in: the combination is complete and consistent.
// RETURN VALUE: true, or false with *error naming what is missing or clashes.
bool check_options(const FilterOptions& o, std::string* error);

extern const char kFilterHelp[];

}  // namespace sectorcrypt::nbd
