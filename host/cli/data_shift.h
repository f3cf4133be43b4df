// Moving an area of a file or block device by a whole number of sectors while crypting
// it, so that a kill at any instant loses nothing (cryptsetup's "datashift" resilience):
// toward higher offsets for `reencrypt --encrypt --reduce-device-size` (room for a LUKS2
// header at the start of the image), toward the start for `reencrypt --decrypt` of a
// volume whose header is inside the image (the data takes the header's place).
//
// Up: the area [0, area_bytes) moves to [shift, shift + area_bytes). Zones of at most
// `shift` bytes go from the end of the area backward, so a zone's new place never overlaps
// its own old one, and lies on the old place of the zone finished just before it (or, for
// the first, past the area's old end).
//
// Down (toward_start): the area [shift, shift + area_bytes) moves to [0, area_bytes), the
// mirror image: zones of at most `shift` bytes go from the start of the area forward. Zone
// k's new place [k*shift, (k+1)*shift) is exactly zone k-1's old place, so it may be
// overwritten only once zone k-1 is consumed, that is durable at its own new place; and it
// never overlaps zone k's old place [(k+1)*shift, (k+2)*shift), which therefore still holds
// zone k whole however the write of zone k was cut short. Zone 0's new place is what lies
// before the area (the LUKS2 header): the caller must have saved what it needs of it.
//
// Either way: before a zone is written, the zone before it is durable in the target
// (fdatasync) and recorded as finished in the resume file (fdatasync), so a rerun after a
// crash finds the last finished zone and crypts the next one again from its old place,
// which nothing has overwritten yet. No copy and no hash of the data is needed; two syncs
// per zone are the whole cost, so zones are as large as `shift` allows.
#pragma once

#include <cstdint>
#include <string>

#include "host/cli/crypt_pump.h"

namespace sectorcrypt::cli {

struct ShiftJob {
  PumpJob pump;             // engine, key, direction, format, iv_sector of the area's start
  int fd = -1;              // the target, open read-write
  std::string name;         // for messages
  uint64_t shift = 0;       // bytes; a whole number of sectors
  uint64_t area_bytes = 0;  // a whole number of sectors
  bool toward_start = false;  // down: from [shift, shift + area_bytes) to [0, area_bytes)
  std::string resume_path;
};

struct ShiftResult {
  uint64_t bytes_done = 0;  // of the area, durably at its new place (from its end, or its
                            // start when toward_start)
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
