// An in-place rewrite of an area of one file or block device that survives being killed
// at any instant. Zone by zone: what tells old sectors from new (a hash of each old
// sector, or a copy of the zone) is made durable in the resume file before the zone is
// overwritten, and the zone is made durable before the next zone's record replaces it.
// A rerun of the same command finds the file, finishes the recorded zone (only its old
// sectors, or all of it from the journal copy) and goes on; a completed run removes it.
#pragma once

#include <cstdint>
#include <string>

#include "host/cli/crypt_pump.h"
#include "host/cli/resume_file.h"

namespace sectorcrypt::cli {

struct RewriteJob {
  PumpJob pump;              // engine, key, direction, format, iv_sector (area start)
  int fd = -1;               // the target, open read-write
  std::string name;          // for messages
  uint64_t area_offset = 0;  // bytes
  uint64_t area_bytes = 0;
  Resilience mode = Resilience::checksum;
  uint64_t zone_bytes = 0;   // a multiple of the sector size
  std::string resume_path;
};

struct RewriteResult {
  uint64_t bytes_done = 0;      // of the area, durably rewritten from its start
  bool interrupted = false;     // SIGINT/SIGTERM; the resume file stays
  bool resumed = false;
  uint64_t resumed_from = 0;
};

// Default zone sizes: big enough that the two syncs per zone cost little.
inline constexpr uint64_t kChecksumZoneBytes = 64ull << 20;
inline constexpr uint64_t kJournalZoneBytes = 32ull << 20;
inline constexpr uint64_t default_zone_bytes(Resilience mode) {
  return mode == Resilience::journal ? kJournalZoneBytes : kChecksumZoneBytes;
}

// The resume file used when --journal names none: next to the target.
std::string default_resume_path(const std::string& target);

// A 16-byte value that tells keys apart without revealing them (an encryption of zeros).
void key_check_value(Engine& engine, KeyHandle key, uint8_t out[16]);

// The rewrite's resume file stays until the caller removes it with remove_resume_file(),
// last of all (after the engine stopped), so that a kill after the removal finds nothing
// left to do but exit: a rerun then would rewrite the area a second time.
//
// Throws Error naming the byte range reached and the resume file on a read, write, sync
// or engine failure; the resume file then allows the same command to finish the job.
RewriteResult run_resumable_rewrite(const RewriteJob& job, Progress* progress);

// Deletes a completed rewrite's resume file, durably. Throws Error when it cannot.
void remove_resume_file(const std::string& path);

}  // namespace sectorcrypt::cli
