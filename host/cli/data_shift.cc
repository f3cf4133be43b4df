// The backward zone loop of the data shift and its resume.
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

// A hash of the sector at area position `pos` in its new place: tells a rerun whether the
// target still holds what the interrupted run made durable there.
void placed_check(const ShiftJob& job, uint64_t pos, uint8_t out[16]) {
  const uint32_t ss = job.pump.format.sector_size;
  std::vector<uint8_t> sector(ss);
  std::size_t got = 0;
  while (got < ss) {
    const ssize_t r = ::pread(job.fd, sector.data() + got, ss - got,
                              static_cast<off_t>(job.shift + pos + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail("read failed at byte {} of '{}': {}", job.shift + pos + got, job.name, std::strerror(errno));
    if (r == 0) fail("'{}' ended at byte {}", job.name, job.shift + pos + got);
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
  params.area_offset = job.shift;  // where the area lands
  params.area_bytes = job.area_bytes;
  params.iv_sector = job.pump.iv_sector;
  params.zone_bytes = job.shift;
  key_check_value(*job.pump.engine, job.pump.key, params.key_check);

  ShiftResult result;
  ResumeFile state;
  ZoneRecord rec;
  uint64_t end = job.area_bytes;  // [end, area_bytes) is durably at its new place
  uint64_t seq = 0;
  auto resumable = [&](const std::string& what) {
    return Error(fmt::format(
        "{}; bytes [{}, {}) of '{}' are moved to [{}, {}) and recorded in '{}': run the same "
        "command again to resume", what, end, job.area_bytes, job.name, job.shift + end,
        job.shift + job.area_bytes, state.path()));
  };
  if (state.open(job.resume_path, params, &rec)) {
    result.resumed = true;
    if (rec.zone_len == 0 && rec.zone_start == job.area_bytes) {  // the completion record
      result.bytes_done = job.area_bytes;
      return result;
    }
    end = rec.zone_start;
    std::fprintf(stderr, "sectorcrypt: resuming the data shift below byte %llu from '%s'\n",
                 static_cast<unsigned long long>(end), job.resume_path.c_str());
    try {
      uint8_t now[16];
      placed_check(job, end, now);
      if (std::memcmp(now, rec.done_check, sizeof now) != 0) {
        fail("'{}' does not hold what the interrupted run wrote at byte {} (was it replaced or "
             "changed since?); not resuming from '{}'", job.name, job.shift + end, job.resume_path);
      }
    } catch (const Error& e) {
      throw resumable(e.what());
    }
    seq = rec.seq + 1;
  }
  result.bytes_done = job.area_bytes - end;
  try {
    while (end > 0) {
      if (interrupt_signal().load(std::memory_order_relaxed) != 0) {
        result.interrupted = true;
        return result;
      }
      // This zone's new place is the old place of the zone finished before it, durable and
      // recorded above (or, for the first zone, past the area's old end).
      const uint64_t start = end > job.shift ? end - job.shift : 0;
      PumpJob pj = job.pump;
      pj.iv_sector = job.pump.iv_sector + start / 512;
      pj.bytes = end - start;
      pj.progress_base = job.area_bytes - end;
      pj.last_part = start == 0;
      const PumpEnd src{job.fd, true, start};
      const PumpEnd dst{job.fd, true, start + job.shift};
      const PumpResult r = run_pump(pj, src, dst, progress);
      if (r.interrupted) {
        // The zone is crypted again from its old place by the rerun.
        result.interrupted = true;
        return result;
      }
      if (::fdatasync(job.fd) != 0) fail("cannot flush '{}': {}", job.name, std::strerror(errno));
      ZoneRecord done;
      done.seq = seq++;
      done.zone_start = start;
      done.zone_len = end - start;
      placed_check(job, start, done.done_check);
      state.write(done);
      end = start;
      result.bytes_done = job.area_bytes - end;
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
