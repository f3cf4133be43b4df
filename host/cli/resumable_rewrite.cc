// Zone loop and crash recovery of the resumable in-place rewrite.
#include "host/cli/resumable_rewrite.h"

#include <setjmp.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <future>
#include <vector>

#include "host/cli/cli_common.h"
#include "host/cli/progress.h"

namespace sectorcrypt::cli {
namespace {

constexpr std::size_t kReadChunk = 1 << 20;

bool interrupted() { return interrupt_signal().load(std::memory_order_relaxed) != 0; }

void read_exact(const RewriteJob& job, uint8_t* p, std::size_t n, uint64_t area_pos) {
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::pread(job.fd, p + got, n - got,
                              static_cast<off_t>(job.area_offset + area_pos + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail("read failed at byte {} of the area: {}", area_pos + got, std::strerror(errno));
    if (r == 0) fail("'{}' ended at byte {} of the area", job.name, area_pos + got);
    got += static_cast<std::size_t>(r);
  }
}

void write_exact(const RewriteJob& job, const uint8_t* p, std::size_t n, uint64_t area_pos) {
  std::size_t put = 0;
  while (put < n) {
    const ssize_t w = ::pwrite(job.fd, p + put, n - put,
                               static_cast<off_t>(job.area_offset + area_pos + put));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) fail("write failed at byte {} of the area: {}", area_pos + put, std::strerror(errno));
    put += static_cast<std::size_t>(w);
  }
}

void sync_target(const RewriteJob& job) {
  if (::fdatasync(job.fd) != 0) fail("cannot flush '{}': {}", job.name, std::strerror(errno));
}

void hash_sector(const uint8_t* p, std::size_t n, uint8_t* out) {
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, XXH3_128bits(p, n));
  std::memcpy(out, c.digest, kSectorHashBytes);
}

// Crypts `n` bytes at area position `pos` in place in `buf` (a run of whole sectors).
void crypt_run(const RewriteJob& job, uint8_t* buf, std::size_t n, uint64_t pos) {
  const PumpJob& pj = job.pump;
  check(pj.engine->crypt_sync(pj.key, pj.dir, pj.format, pj.iv_sector + pos / 512, buf, buf, n),
        fmt::format("engine, recovering byte {} of the area", pos));
  if (pj.then) {
    check(pj.engine->crypt_sync(pj.then->key, pj.then->dir, pj.format,
                                pj.then->iv_sector + pos / 512, buf, buf, n),
          fmt::format("engine, recovering byte {} of the area", pos));
  }
}

// A hash of the sector just before area position `pos` (zeros at the start): tells on a
// rerun whether the target still holds what the interrupted run made durable there.
void done_check(const RewriteJob& job, uint64_t pos, uint8_t out[16]) {
  std::memset(out, 0, 16);
  const uint32_t ss = job.pump.format.sector_size;
  if (pos < ss) return;
  std::vector<uint8_t> sector(ss);
  read_exact(job, sector.data(), ss, pos - ss);
  hash_sector(sector.data(), ss, out);
}

// A read error under a mapping arrives as SIGBUS on the reading thread: turned back into
// an error there instead of killing the process.
thread_local sigjmp_buf* t_bus_jump = nullptr;

void on_sigbus(int sig) {
  if (t_bus_jump != nullptr) siglongjmp(*t_bus_jump, 1);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

// Hashes the zone's sectors straight from a read-only mapping of the target: no copy of the
// zone, which on a busy machine costs more than the hashing. False where it cannot map.
bool hash_mapped(const RewriteJob& job, ZoneRecord* rec) {
  static const bool installed = [] {
    struct sigaction sa {};
    sa.sa_handler = on_sigbus;
    sigemptyset(&sa.sa_mask);
    return ::sigaction(SIGBUS, &sa, nullptr) == 0;
  }();
  if (!installed) return false;
  const uint32_t ss = job.pump.format.sector_size;
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t begin = job.area_offset + rec->zone_start;
  const uint64_t map_start = begin / page * page;
  const std::size_t map_len = static_cast<std::size_t>(begin - map_start + rec->zone_len);
  void* map = ::mmap(nullptr, map_len, PROT_READ, MAP_SHARED, job.fd, static_cast<off_t>(map_start));
  if (map == MAP_FAILED) return false;
  (void)::madvise(map, map_len, MADV_SEQUENTIAL);
  const uint8_t* data = static_cast<const uint8_t*>(map) + (begin - map_start);
  sigjmp_buf jump;
  if (sigsetjmp(jump, 0) != 0) {
    t_bus_jump = nullptr;
    ::munmap(map, map_len);
    fail("read failed in bytes [{}, {}) of the area (an I/O error under the mapping)",
         rec->zone_start, rec->zone_start + rec->zone_len);
  }
  t_bus_jump = &jump;
  for (uint64_t s = 0; s < rec->zone_len; s += ss) {
    hash_sector(data + s, ss, rec->payload.data() + s / ss * kSectorHashBytes);
  }
  t_bus_jump = nullptr;
  ::munmap(map, map_len);
  return true;
}

// What the zone's record needs before the zone may be overwritten: a hash of each old
// sector, or the zone itself.
void record_zone(const RewriteJob& job, ZoneRecord* rec) {
  const uint32_t ss = job.pump.format.sector_size;
  if (job.mode == Resilience::journal) {
    rec->payload.resize(rec->zone_len);
    read_exact(job, rec->payload.data(), rec->zone_len, rec->zone_start);
    return;
  }
  rec->payload.resize(rec->zone_len / ss * kSectorHashBytes);
  if (hash_mapped(job, rec)) return;
  std::vector<uint8_t> buf(kReadChunk);
  for (uint64_t off = 0; off < rec->zone_len; off += kReadChunk) {
    const std::size_t n = static_cast<std::size_t>(std::min<uint64_t>(kReadChunk, rec->zone_len - off));
    read_exact(job, buf.data(), n, rec->zone_start + off);
    for (std::size_t s = 0; s < n; s += ss) {
      hash_sector(buf.data() + s, ss, rec->payload.data() + (off + s) / ss * kSectorHashBytes);
    }
  }
}

// Brings the recorded zone to all-new after a crash at any instant of its rewrite.
void recover_zone(const RewriteJob& job, ZoneRecord& rec) {
  const uint32_t ss = job.pump.format.sector_size;
  if (rec.zone_len == 0) return;  // the completion record
  if (job.mode == Resilience::journal) {
    // The journal holds the zone's old contents: crypt them again and write all of it.
    crypt_run(job, rec.payload.data(), rec.zone_len, rec.zone_start);
    write_exact(job, rec.payload.data(), rec.zone_len, rec.zone_start);
    sync_target(job);
    return;
  }
  // Checksum: a sector whose contents still hash to its old hash is old; crypt those only.
  std::vector<uint8_t> buf(kReadChunk);
  for (uint64_t off = 0; off < rec.zone_len; off += kReadChunk) {
    const std::size_t n = static_cast<std::size_t>(std::min<uint64_t>(kReadChunk, rec.zone_len - off));
    read_exact(job, buf.data(), n, rec.zone_start + off);
    std::size_t s = 0;
    while (s < n) {
      auto is_old = [&](std::size_t at) {
        uint8_t h[kSectorHashBytes];
        hash_sector(buf.data() + at, ss, h);
        return std::memcmp(h, rec.payload.data() + (off + at) / ss * kSectorHashBytes, sizeof h) == 0;
      };
      if (!is_old(s)) {
        s += ss;
        continue;
      }
      std::size_t end = s + ss;
      while (end < n && is_old(end)) end += ss;
      crypt_run(job, buf.data() + s, end - s, rec.zone_start + off + s);
      write_exact(job, buf.data() + s, end - s, rec.zone_start + off + s);
      s = end;
    }
  }
  sync_target(job);
}

}  // namespace

std::string default_resume_path(const std::string& target) {
  const auto slash = target.rfind('/');
  const std::string dir = slash == std::string::npos ? "" : target.substr(0, slash + 1);
  const std::string base = slash == std::string::npos ? target : target.substr(slash + 1);
  return dir + "." + base + ".sectorcrypt-resume";
}

void remove_resume_file(const std::string& path) { ResumeFile::remove(path); }

void key_check_value(Engine& engine, KeyHandle key, uint8_t out[16]) {
  std::vector<uint8_t> block(512, 0);
  SectorFormat format;
  // A sector number no real volume reaches, so the value is no ciphertext of the volume.
  check(engine.crypt_sync(key, Direction::encrypt, format, 0xffffffffffff0000ull, block.data(),
                          block.data(), block.size()),
        "key check");
  std::memcpy(out, block.data(), 16);
}

RewriteResult run_resumable_rewrite(const RewriteJob& job, Progress* progress) {
  RewriteParams params;
  params.mode = static_cast<uint32_t>(job.mode);
  params.direction = job.pump.dir == Direction::encrypt ? 0 : 1;
  params.iv_mode = static_cast<uint32_t>(job.pump.format.iv_mode);
  params.sector_size = job.pump.format.sector_size;
  params.iv_large_sectors = job.pump.format.iv_large_sectors ? 1 : 0;
  params.area_offset = job.area_offset;
  params.area_bytes = job.area_bytes;
  params.iv_sector = job.pump.iv_sector;
  params.zone_bytes = job.zone_bytes;
  key_check_value(*job.pump.engine, job.pump.key, params.key_check);
  if (job.pump.then) {
    // A change of key: a run of its own, told apart by both keys and the second IV offset.
    uint8_t second[16];
    key_check_value(*job.pump.engine, job.pump.then->key, second);
    for (int i = 0; i < 16; ++i) params.key_check[i] ^= static_cast<uint8_t>(second[i] + 1);
    params.direction += 2;
    params.second_iv_low = static_cast<uint32_t>(job.pump.then->iv_sector);
  }

  RewriteResult result;
  ResumeFile state;
  ZoneRecord rec;
  uint64_t pos = 0, seq = 0;
  auto resumable = [&](const std::string& what) {
    return Error(fmt::format(
        "{}; bytes [0, {}) of the area of '{}' are rewritten and the zone after them is "
        "recorded in '{}': run the same command again to resume",
        what, pos, job.name, state.path()));
  };
  if (state.open(job.resume_path, params, &rec)) {
    result.resumed = true;
    result.resumed_from = rec.zone_start;
    pos = rec.zone_start;
    std::fprintf(stderr, "sectorcrypt: resuming at byte %llu of the area from '%s'\n",
                 static_cast<unsigned long long>(rec.zone_start), job.resume_path.c_str());
    try {
      uint8_t check_now[16];
      done_check(job, rec.zone_start, check_now);
      if (std::memcmp(check_now, rec.done_check, sizeof check_now) != 0) {
        fail("'{}' does not hold what the interrupted run wrote before byte {} of the area "
             "(was it replaced or changed since?); not resuming from '{}'",
             job.name, rec.zone_start, job.resume_path);
      }
      recover_zone(job, rec);
    } catch (const Error& e) {
      throw resumable(e.what());
    }
    pos = rec.zone_start + rec.zone_len;
    seq = rec.seq + 1;
  }
  // Zone k is rewritten while zone k-1 is flushed on a helper thread, and zone k+1's
  // record (a read of it and, for checksum, its hashes) is made on another. So the slot
  // written before zone k covers zones k-1 and k, and is written once everything before
  // zone k-1 is durable.
  auto make_record = [&job](uint64_t start) {
    ZoneRecord zone;
    zone.zone_start = start;
    zone.zone_len = std::min(job.zone_bytes, job.area_bytes - start);
    record_zone(job, &zone);
    return zone;
  };
  ZoneRecord prev;               // zone k-1's part of the slot; empty at the start
  std::future<void> flushing;    // the fdatasync after zone k-1
  std::future<ZoneRecord> next;  // zone k+1's part
  try {
    if (pos < job.area_bytes) next = std::async(std::launch::async, make_record, pos);
    while (pos < job.area_bytes) {
      ZoneRecord zone = next.get();
      if (interrupted()) {
        result.interrupted = true;
        break;
      }
      ZoneRecord slot;
      slot.seq = seq;
      slot.zone_start = prev.zone_len > 0 ? prev.zone_start : zone.zone_start;
      slot.zone_len = prev.zone_len + zone.zone_len;
      slot.payload = std::move(prev.payload);
      slot.payload.insert(slot.payload.end(), zone.payload.begin(), zone.payload.end());
      done_check(job, slot.zone_start, slot.done_check);
      state.write(slot);
      slot.payload.clear();
      const uint64_t after = pos + zone.zone_len;
      if (after < job.area_bytes) next = std::async(std::launch::async, make_record, after);

      PumpJob pj = job.pump;
      pj.iv_sector = job.pump.iv_sector + pos / 512;
      if (pj.then) pj.then->iv_sector = job.pump.then->iv_sector + pos / 512;
      pj.bytes = zone.zone_len;
      pj.progress_base = pos;
      pj.last_part = after == job.area_bytes;
      const PumpEnd src{job.fd, true, job.area_offset + pos};
      const PumpEnd dst{job.fd, true, job.area_offset + pos};
      const PumpResult r = run_pump(pj, src, dst, progress);
      if (flushing.valid()) flushing.get();
      if (r.interrupted) {
        (void)::fdatasync(job.fd);
        result.interrupted = true;
        result.bytes_done = pos + r.bytes_done;
        return result;
      }
      flushing = std::async(std::launch::async, [&job] { sync_target(job); });
      prev = std::move(zone);
      pos = after;
      ++seq;
    }
    if (flushing.valid()) flushing.get();
    if (!result.interrupted) {
      // The completion record: a rerun (say, after a kill before the caller removed the
      // file) then knows there is nothing left, and reencrypt that its header may be final.
      ZoneRecord done;
      done.seq = seq;
      done.zone_start = job.area_bytes;
      done_check(job, job.area_bytes, done.done_check);
      state.write(done);
    }
  } catch (const Error& e) {
    throw resumable(e.what());
  }
  result.bytes_done = pos;
  return result;
}

}  // namespace sectorcrypt::cli
