// The resume file's on-disk form: two slots, each a 4 KiB header followed by its payload.
#include "host/cli/resume_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstring>

#include "host/cli/cli_common.h"

namespace sectorcrypt::cli {
namespace {

constexpr char kMagic[16] = {'s', 'e', 'c', 't', 'o', 'r', 'c', 'r',
                             'y', 'p', 't', '-', 'r', 's', 'm', '1'};
constexpr uint64_t kHeaderBytes = 4096;

struct SlotHeader {
  char magic[16];
  RewriteParams params;
  uint64_t seq;
  uint64_t zone_start;
  uint64_t zone_len;
  uint64_t payload_len;
  uint8_t done_check[16];
  uint8_t header_digest[16];  // XXH3-128 over this header (both digests zeroed)
  uint8_t digest[16];         // XXH3-128 over this header (both digests zeroed), payload
};
static_assert(sizeof(SlotHeader) <= kHeaderBytes);

void digest_of(const SlotHeader& h, const uint8_t* payload, std::size_t len, uint8_t out[16]) {
  SlotHeader copy = h;
  std::memset(copy.digest, 0, sizeof copy.digest);
  std::memset(copy.header_digest, 0, sizeof copy.header_digest);
  XXH3_state_t* st = XXH3_createState();
  if (st == nullptr) fail("out of memory hashing the resume file");
  XXH3_128bits_reset(st);
  XXH3_128bits_update(st, &copy, sizeof copy);
  XXH3_128bits_update(st, payload, len);
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, XXH3_128bits_digest(st));
  XXH3_freeState(st);
  std::memcpy(out, c.digest, 16);
}

std::string dir_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// A new or removed directory entry survives a power cut only once its directory is synced.
void sync_dir_of(const std::string& path) {
  const int d = ::open(dir_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d < 0) return;
  (void)::fsync(d);
  ::close(d);
}

bool pread_all(int fd, void* buf, std::size_t n, uint64_t off) {
  auto* p = static_cast<uint8_t*>(buf);
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::pread(fd, p + got, n - got, static_cast<off_t>(off + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    got += static_cast<std::size_t>(r);
  }
  return true;
}

// Names the first field in which a resume file's run differs from this command's.
void check_same_run(const RewriteParams& have, const RewriteParams& want, const std::string& path) {
  auto differ = [&](const char* what, uint64_t a, uint64_t b) {
    if (a != b) {
      fail("resume file '{}' belongs to another run: its {} is {}, this command's is {} "
           "(rerun the original command to finish it, or remove the file if that run is "
           "abandoned)", path, what, a, b);
    }
  };
  differ("--resilience mode", have.mode, want.mode);
  differ("direction (0 encrypt, 1 decrypt, 2 and 3 the same then a new key)", have.direction,
         want.direction);
  differ("new key's IV offset", have.second_iv_low, want.second_iv_low);
  differ("IV mode", have.iv_mode, want.iv_mode);
  differ("sector size", have.sector_size, want.sector_size);
  differ("--iv-large-sectors", have.iv_large_sectors, want.iv_large_sectors);
  if (have.mode == static_cast<uint32_t>(Resilience::datashift)) {
    // The data moves by the area offset: half of --reduce-device-size.
    differ("--reduce-device-size (bytes)", 2 * have.area_offset, 2 * want.area_offset);
  }
  differ("area offset (bytes)", have.area_offset, want.area_offset);
  differ("area length (bytes)", have.area_bytes, want.area_bytes);
  differ("IV offset (--skip)", have.iv_sector, want.iv_sector);
  differ("zone size (bytes)", have.zone_bytes, want.zone_bytes);
  if (std::memcmp(have.key_check, want.key_check, sizeof have.key_check) != 0) {
    fail("resume file '{}' was written with another key (its key check value differs)", path);
  }
}

}  // namespace

Resilience parse_resilience(const std::string& name) {
  if (name == "none") return Resilience::none;
  if (name == "checksum") return Resilience::checksum;
  if (name == "journal") return Resilience::journal;
  fail("--resilience '{}': choose checksum, journal or none", name);
}

const char* resilience_name(Resilience r) {
  switch (r) {
    case Resilience::none: return "none";
    case Resilience::checksum: return "checksum";
    case Resilience::journal: return "journal";
    case Resilience::datashift: return "datashift";
  }
  return "?";
}

ResumeFile::~ResumeFile() {
  if (fd_ >= 0) ::close(fd_);
}

// A slot covers up to two zones; a datashift slot has no payload.
uint64_t ResumeFile::payload_capacity() const {
  if (params_.mode == static_cast<uint32_t>(Resilience::datashift)) return 0;
  if (params_.mode == static_cast<uint32_t>(Resilience::journal)) return 2 * params_.zone_bytes;
  return 2 * params_.zone_bytes / params_.sector_size * kSectorHashBytes;
}

// Both headers sit at fixed places, whatever the run's zone size, so that a rerun with
// other options finds them and is refused rather than taken for a fresh start.
uint64_t ResumeFile::payload_offset(int index) const {
  return 2 * kHeaderBytes + static_cast<uint64_t>(index) * ((payload_capacity() + 4095) / 4096 * 4096);
}

bool ResumeFile::read_slot(int index, ZoneRecord* rec) const {
  SlotHeader h{};
  if (!pread_all(fd_, &h, sizeof h, kHeaderBytes * static_cast<uint64_t>(index))) return false;
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) return false;
  uint8_t want[16];
  digest_of(h, nullptr, 0, want);
  if (std::memcmp(want, h.header_digest, sizeof want) != 0) return false;  // torn header
  check_same_run(h.params, params_, path_);
  if (h.payload_len > payload_capacity() || h.zone_len > 2 * params_.zone_bytes) return false;
  std::vector<uint8_t> payload(h.payload_len);
  if (!pread_all(fd_, payload.data(), payload.size(), payload_offset(index))) return false;
  digest_of(h, payload.data(), payload.size(), want);
  if (std::memcmp(want, h.digest, sizeof want) != 0) return false;  // torn payload
  rec->seq = h.seq;
  rec->zone_start = h.zone_start;
  rec->zone_len = h.zone_len;
  std::memcpy(rec->done_check, h.done_check, sizeof h.done_check);
  rec->payload = std::move(payload);
  return true;
}

namespace {

// The last slot whose header is intact (payloads unchecked).
std::optional<SlotHeader> latest_header(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::optional<SlotHeader> best;
  for (int i = 0; i < 2; ++i) {
    SlotHeader h{};
    if (!pread_all(fd, &h, sizeof h, kHeaderBytes * static_cast<uint64_t>(i))) continue;
    if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) continue;
    uint8_t want[16];
    digest_of(h, nullptr, 0, want);
    if (std::memcmp(want, h.header_digest, sizeof want) != 0) continue;
    if (!best || h.seq > best->seq) best = h;
  }
  ::close(fd);
  return best;
}

}  // namespace

bool ResumeFile::finished(const std::string& path) {
  const std::optional<SlotHeader> h = latest_header(path);
  // A completion record has no payload, so its header digest covers all of it.
  return h && h->zone_len == 0 && h->payload_len == 0 && h->zone_start == h->params.area_bytes;
}

std::optional<RewriteParams> ResumeFile::recorded_run(const std::string& path) {
  const std::optional<SlotHeader> h = latest_header(path);
  if (!h) return std::nullopt;
  return h->params;
}

bool ResumeFile::open(const std::string& path, const RewriteParams& params, ZoneRecord* latest) {
  path_ = path;
  params_ = params;
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) fail("cannot open the resume file '{}': {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0) fail("cannot stat the resume file '{}': {}", path, std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail("the resume file '{}' is not a regular file", path);
  if (st.st_size == 0) {
    // Marked as ours before anything else, so a later run can tell it from a user's file.
    write_at(kMagic, sizeof kMagic, 0);
    if (::fdatasync(fd_) != 0) fail("cannot flush the resume file '{}': {}", path, std::strerror(errno));
    sync_dir_of(path);
    return false;
  }
  // Ours starts with the magic: a crash can only have cut its first write short.
  char head[16] = {};
  const ssize_t got = ::pread(fd_, head, sizeof head, 0);
  if (got <= 0 || std::memcmp(head, kMagic, static_cast<std::size_t>(got)) != 0) {
    fail("'{}' exists and is not a sectorcrypt resume file; not overwriting it (name another "
         "--journal file)", path);
  }
  ZoneRecord slots[2];
  const bool ok0 = read_slot(0, &slots[0]);
  const bool ok1 = read_slot(1, &slots[1]);
  if (!ok0 && !ok1) return false;
  *latest = std::move(!ok1 || (ok0 && slots[0].seq > slots[1].seq) ? slots[0] : slots[1]);
  return true;
}

void ResumeFile::write(const ZoneRecord& rec) {
  SlotHeader h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.params = params_;
  h.seq = rec.seq;
  h.zone_start = rec.zone_start;
  h.zone_len = rec.zone_len;
  h.payload_len = rec.payload.size();
  std::memcpy(h.done_check, rec.done_check, sizeof h.done_check);
  digest_of(h, nullptr, 0, h.header_digest);
  digest_of(h, rec.payload.data(), rec.payload.size(), h.digest);
  // Payload first, header last: the header is one page, and the digests catch a tear.
  const int index = static_cast<int>(rec.seq % 2);
  write_at(rec.payload.data(), rec.payload.size(), payload_offset(index));
  write_at(&h, sizeof h, kHeaderBytes * static_cast<uint64_t>(index));
  if (::fdatasync(fd_) != 0) fail("cannot flush the resume file '{}': {}", path_, std::strerror(errno));
}

void ResumeFile::write_at(const void* data, std::size_t n, uint64_t off) {
  const auto* p = static_cast<const uint8_t*>(data);
  std::size_t put = 0;
  while (put < n) {
    const ssize_t w = ::pwrite(fd_, p + put, n - put, static_cast<off_t>(off + put));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) fail("cannot write the resume file '{}': {}", path_, std::strerror(errno));
    put += static_cast<std::size_t>(w);
  }
}

void ResumeFile::remove(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    fail("the rewrite is complete, but the resume file '{}' cannot be removed: {}", path,
         std::strerror(errno));
  }
  sync_dir_of(path);
}

}  // namespace sectorcrypt::cli
