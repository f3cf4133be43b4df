// Moving an area of a file or block device toward higher offsets while crypting it, so
// that a kill at any instant loses nothing (cryptsetup's "datashift" resilience): what
// `reencrypt --encrypt --reduce-device-size` does to make room for a LUKS2 header at the
// start of the image.
//
// The area [0, area_bytes) moves to [shift, shift + area_bytes). Zones of at most `shift`
// bytes go from the end of the area backward, so a zone's new place never overlaps its own
// old one, and lies on the old place of the zone finished just before it (or, for the
// first, past the area's old end). Before a zone is written, the zone before it is durable
// in the target (fdatasync) and recorded as finished in the resume file (fdatasync): a
// rerun after a crash finds the last finished zone and crypts the next one again from its
// old place, which nothing has overwritten yet. No copy and no hash of the data is needed;
// two syncs per zone are the whole cost, so zones are as large as `shift` allows.
#pragma once

#include <cstdint>
#include <string>

#include "host/cli/crypt_pump.h"

namespace sectorcrypt::cli {

struct ShiftJob {
  PumpJob pump;             // engine, key, direction, format, iv_sector of the area's start
  int fd = -1;              // the target, open read-write
  std::string name;         // for messages
  uint64_t shift = 0;       // bytes; a multiple of 4096 and of the sector size
  uint64_t area_bytes = 0;  // the area, from byte 0; a whole number of sectors
  std::string resume_path;
};

struct ShiftResult {
  uint64_t bytes_done = 0;  // of the area, durably at its new place (from its end)
  bool interrupted = false; // SIGINT/SIGTERM; the resume file stays
  bool resumed = false;
};

// Runs (or resumes, from the resume file) the shift. When it returns uninterrupted, the
// resume file holds the completion record; the caller removes it with remove_resume_file()
// once what depends on the shift (the LUKS2 header) is in place. Throws Error naming the
// range reached and the resume file on a read, write, sync or engine failure, or when the
// resume file belongs to another run or the target no longer holds what it recorded.
ShiftResult run_data_shift(const ShiftJob& job, Progress* progress);

}  // namespace sectorcrypt::cli
