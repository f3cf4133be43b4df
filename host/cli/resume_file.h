// The durable state of an in-place rewrite: what the run is (direction, format, area, a
// key check value) and, for the zone being rewritten, what is needed to tell after a crash
// which of its sectors still hold old data: a hash of each sector's old contents
// (checksum) or a copy of the whole zone (journal). Two slots are written alternately,
// each with a checksum over itself and its payload, so a slot torn by a crash leaves the
// previous one to recover from.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sectorcrypt::cli {

// datashift: `reencrypt --encrypt --reduce-device-size` moving the data while it encrypts
// it (data_shift.h); never parsed from --resilience, which names the other three.
enum class Resilience : uint32_t { none = 0, checksum = 1, journal = 2, datashift = 3 };
Resilience parse_resilience(const std::string& name);  // throws Error naming the choices
const char* resilience_name(Resilience r);

// Bytes of checksum payload per sector (an XXH3-128 hash of its old contents).
inline constexpr std::size_t kSectorHashBytes = 16;

// What must match for a rerun to resume the state; compared field by field.
struct RewriteParams {
  uint32_t mode = 0;          // Resilience
  uint32_t direction = 0;     // 0 encrypt, 1 decrypt; + 2: then a second crypt (key change)
  uint32_t iv_mode = 0;
  uint32_t sector_size = 0;
  uint32_t iv_large_sectors = 0;
  uint32_t second_iv_low = 0;  // key change: the second crypt's IV offset (low 32 bits)
  uint64_t area_offset = 0;   // bytes into the target
  uint64_t area_bytes = 0;
  uint64_t iv_sector = 0;     // 512-byte IV sector of the area's first byte
  uint64_t zone_bytes = 0;
  uint8_t key_check[16] = {};  // the key's check value (never the key)
};

// One slot: the zone [zone_start, zone_start + zone_len) of the area is about to be (or
// is being) overwritten; everything before zone_start is durably rewritten. A zone of
// length 0 at the end of the area records that the whole area is.
// datashift reads it otherwise: the zone is the last one durably written at its new place,
// and so is everything from zone_start on (moving up, the area filled from its end
// backward) or everything before zone_start + zone_len (moving down, from its start
// forward); there is no payload, and done_check hashes the zone's sector that borders
// what is left (its first, or its last) as written.
struct ZoneRecord {
  uint64_t seq = 0;
  uint64_t zone_start = 0;  // bytes from the start of the area
  uint64_t zone_len = 0;      // up to two zones: the one being flushed and the next
  uint8_t done_check[16] = {};  // hash of the sector before zone_start as written
  std::vector<uint8_t> payload;  // checksum: kSectorHashBytes per sector; journal: the data
};

class ResumeFile {
 public:
  ResumeFile() = default;
  ResumeFile(const ResumeFile&) = delete;
  ResumeFile& operator=(const ResumeFile&) = delete;
  ~ResumeFile();

  // Opens `path`, creating it when missing. Returns true and fills *latest when it holds
  // a valid record for `params` (a run to resume); false when it is new or holds no
  // intact record (nothing was overwritten yet). Throws Error when it is not a
  // sectorcrypt resume file, or belongs to another run (naming the field that differs).
  bool open(const std::string& path, const RewriteParams& params, ZoneRecord* latest);

  // Writes `rec` into the slot after the last one and makes it durable (fdatasync).
  void write(const ZoneRecord& rec);

  const std::string& path() const { return path_; }
  // Deletes the file at `path` (a completed rewrite's, durable) and syncs its directory.
  static void remove(const std::string& path);
  // True when the file at `path` is a resume file whose last intact slot is the
  // completion record (a zone of length 0 at the end of the area): its run finished and
  // only the file's removal is left. Reads nothing but the slot headers.
  static bool finished(const std::string& path);
  // The run recorded in the file at `path` (its last intact slot header), if any.
  static std::optional<RewriteParams> recorded_run(const std::string& path);
  uint64_t payload_capacity() const;

 private:
  bool read_slot(int index, ZoneRecord* rec) const;
  uint64_t payload_offset(int index) const;
  void write_at(const void* data, std::size_t n, uint64_t off);
  std::string path_;
  int fd_ = -1;
  RewriteParams params_;
};

}  // namespace sectorcrypt::cli
