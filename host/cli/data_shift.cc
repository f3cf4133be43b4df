// The zone loops of the data shift (backward for up, forward for down) and their resume.
#include "host/cli/data_shift.h"

#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "host/cli/cli_common.h"
#include "host/cli/progress.h"
#include "host/cli/resumable_rewrite.h"
#include "host/cli/resume_file.h"

namespace sectorcrypt::cli {
namespace {

// Where area position `pos` is before and after the move.
uint64_t old_place(const ShiftJob& job, uint64_t pos) { return job.toward_start ? job.shift + pos : pos; }
uint64_t new_place(const ShiftJob& job, uint64_t pos) { return job.toward_start ? pos : job.shift + pos; }

// A hash of the sector at area position `pos` in its new place: tells a rerun whether the
// target still holds what the interrupted run made durable there.
void placed_check(const ShiftJob& job, uint64_t pos, uint8_t out[16]) {
  const uint32_t ss = job.pump.format.sector_size;
  std::vector<uint8_t> sector(ss);
  std::size_t got = 0;
  const uint64_t at = new_place(job, pos);
  while (got < ss) {
    const ssize_t r = ::pread(job.fd, sector.data() + got, ss - got, static_cast<off_t>(at + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail("read failed at byte {} of '{}': {}", at + got, job.name, std::strerror(errno));
    if (r == 0) fail("'{}' ended at byte {}", job.name, at + got);
    got += static_cast<std::size_t>(r);
  }
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, XXH3_128bits(sector.data(), ss));
  std::memcpy(out, c.digest, 16);
}

}  // namespace

ShiftResult run_data_shift(const ShiftJob& job, Progress* progress) {
  if (job.shift == 0 || job.area_bytes == 0 || job.shift % job.pump.format.sector_size != 0 ||
      job.area_bytes % job.pump.format.sector_size != 0) {
    fail("data shift of {} bytes over {} bytes: not whole {}-byte sectors", job.shift,
         job.area_bytes, job.pump.format.sector_size);
  }
  RewriteParams params;
  params.mode = static_cast<uint32_t>(Resilience::datashift);
  params.direction = job.pump.dir == Direction::encrypt ? 0 : 1;
  params.iv_mode = static_cast<uint32_t>(job.pump.format.iv_mode);
  params.sector_size = job.pump.format.sector_size;
  params.iv_large_sectors = job.pump.format.iv_large_sectors ? 1 : 0;
  params.area_offset = new_place(job, 0);  // where the area lands
  params.area_bytes = job.area_bytes;
  params.iv_sector = job.pump.iv_sector;
  params.zone_bytes = job.shift;
  key_check_value(*job.pump.engine, job.pump.key, params.key_check);

  ShiftResult result;
  ResumeFile state;
  ZoneRecord rec;
  const uint32_t ss = job.pump.format.sector_size;
  // Done: [0, done) of the area when moving down, [area_bytes - done, area_bytes) up.
  uint64_t done = 0;
  uint64_t seq = 0;
  auto resumable = [&](const std::string& what) {
    const uint64_t from = job.toward_start ? 0 : job.area_bytes - done;
    const uint64_t to = job.toward_start ? done : job.area_bytes;
    return Error(fmt::format(
        "{}; bytes [{}, {}) of '{}' are moved to [{}, {}) and recorded in '{}': run the same "
        "command again to resume", what, old_place(job, from), old_place(job, to), job.name,
        new_place(job, from), new_place(job, to), state.path()));
  };
  if (state.open(job.resume_path, params, &rec)) {
    result.resumed = true;
    if (rec.zone_len == 0 && rec.zone_start == job.area_bytes) {  // the completion record
      result.bytes_done = job.area_bytes;
      return result;
    }
    // The record names the last zone made durable: the check hashes the sector of it that
    // borders what is left (its first going up, its last going down).
    const uint64_t border = job.toward_start ? rec.zone_start + rec.zone_len - ss : rec.zone_start;
    done = job.toward_start ? rec.zone_start + rec.zone_len : job.area_bytes - rec.zone_start;
    std::fprintf(stderr, "sectorcrypt: resuming the data shift %s byte %llu from '%s'\n",
                 job.toward_start ? "from" : "below",
                 static_cast<unsigned long long>(job.toward_start ? done : job.area_bytes - done),
                 job.resume_path.c_str());
    try {
      uint8_t now[16];
      placed_check(job, border, now);
      if (std::memcmp(now, rec.done_check, sizeof now) != 0) {
        fail("'{}' does not hold what the interrupted run wrote at byte {} (was it replaced or "
             "changed since?); not resuming from '{}'", job.name, new_place(job, border),
             job.resume_path);
      }
    } catch (const Error& e) {
      throw resumable(e.what());
    }
    seq = rec.seq + 1;
  }
  result.bytes_done = done;
  try {
    while (done < job.area_bytes) {
      if (interrupt_signal().load(std::memory_order_relaxed) != 0) {
        result.interrupted = true;
        return result;
      }
      // This zone's new place is the old place of the zone finished before it, durable and
      // recorded above (or, for the first zone, past the area's old end, or before its
      // old start).
      const uint64_t len = std::min(job.shift, job.area_bytes - done);
      const uint64_t start = job.toward_start ? done : job.area_bytes - done - len;
      PumpJob pj = job.pump;
      pj.iv_sector = job.pump.iv_sector + start / 512;
      pj.bytes = len;
      pj.progress_base = done;
      pj.last_part = done + len == job.area_bytes;
      const PumpEnd src{job.fd, true, old_place(job, start)};
      const PumpEnd dst{job.fd, true, new_place(job, start)};
      const PumpResult r = run_pump(pj, src, dst, progress);
      if (r.interrupted) {
        // The zone is crypted again from its old place by the rerun.
        result.interrupted = true;
        return result;
      }
      if (::fdatasync(job.fd) != 0) fail("cannot flush '{}': {}", job.name, std::strerror(errno));
      ZoneRecord zone;
      zone.seq = seq++;
      zone.zone_start = start;
      zone.zone_len = len;
      placed_check(job, job.toward_start ? start + len - ss : start, zone.done_check);
      state.write(zone);
      done += len;
      result.bytes_done = done;
    }
    // The completion record: a rerun knows there is nothing left to move, and the caller
    // that what follows the shift may be done.
    ZoneRecord complete;
    complete.seq = seq;
    complete.zone_start = job.area_bytes;
    state.write(complete);
  } catch (const Error& e) {
    throw resumable(e.what());
  }
  return result;
}

}  // namespace sectorcrypt::cli
