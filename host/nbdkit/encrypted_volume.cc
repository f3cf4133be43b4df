#include "host/nbdkit/encrypted_volume.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "kernels/secure_zero.h"

namespace sectorcrypt::nbd {
namespace {

// Per nbdkit thread: the ciphertext of a write (the client's buffer is const, and a write
// is at most one write chunk plus its edge sectors), or one edge sector of a read. Grows
// to the largest seen, then is reused.
uint8_t* bounce(std::size_t bytes) {
  thread_local std::vector<uint8_t> buffer;
  if (buffer.size() < bytes) {
    if (!buffer.empty()) secure_zero(buffer.data(), buffer.size());
    buffer = std::vector<uint8_t>(bytes);
  }
  return buffer.data();
}

// The zeros that write_zeroes encrypts, a chunk at a time.
constexpr uint32_t kZeroChunk = 1u << 20;
const uint8_t kZeros[kZeroChunk] = {};

}  // namespace

Status EncryptedVolume::crypt(Direction dir, uint64_t volume_offset, const void* in, void* out,
                              uint64_t bytes, int* err) {
  const uint64_t start_sector = layout_.iv_base + volume_offset / 512;
  Status s = engine_.crypt_sync(key_, dir, layout_.format, start_sector, in, out, bytes);
  if (!s) {
    *err = EIO;
    return Status::error(s.code(), "%s of %llu bytes at offset %llu failed: %s",
                         dir == Direction::encrypt ? "encrypt" : "decrypt",
                         static_cast<unsigned long long>(bytes),
                         static_cast<unsigned long long>(volume_offset), s.message());
  }
  return s;
}

Status EncryptedVolume::lower_read(LowerDevice& lower, void* buf, uint64_t bytes,
                                   uint64_t volume_offset, int* err) {
  if (lower.pread(buf, static_cast<uint32_t>(bytes), layout_.data_offset + volume_offset, err) <
      0) {
    return Status::error(Errc::backend_failure, "reading %llu bytes below at %llu failed: %s",
                         static_cast<unsigned long long>(bytes),
                         static_cast<unsigned long long>(layout_.data_offset + volume_offset),
                         std::strerror(*err));
  }
  return Status();
}

Status EncryptedVolume::read_sector(LowerDevice& lower, uint8_t* out, uint64_t sector_offset,
                                    int* err) {
  const uint64_t ss = layout_.format.sector_size;
  if (Status s = lower_read(lower, out, ss, sector_offset, err); !s) return s;
  return crypt(Direction::decrypt, sector_offset, out, out, ss, err);
}

// The whole sectors inside the request are read and decrypted in the client's buffer as
// one run; only partial edge sectors pass through a sector-sized buffer.
Status EncryptedVolume::read(LowerDevice& lower, void* buf, uint32_t count, uint64_t offset,
                             int* err) {
  const uint64_t ss = layout_.format.sector_size;
  uint8_t* dst = static_cast<uint8_t*>(buf);
  uint64_t end = offset + count;
  uint8_t* sector = nullptr;
  Status s;
  if (offset % ss != 0) {
    sector = bounce(ss);
    const uint64_t first = offset / ss * ss;
    const uint64_t n = std::min(end, first + ss) - offset;
    s = read_sector(lower, sector, first, err);
    if (s) std::memcpy(dst, sector + (offset - first), n);
    dst += n;
    offset += n;
  }
  const uint64_t body_end = end / ss * ss;
  if (s && body_end > offset) {
    s = lower_read(lower, dst, body_end - offset, offset, err);
    if (s) s = crypt(Direction::decrypt, offset, dst, dst, body_end - offset, err);
    dst += body_end - offset;
    offset = body_end;
  }
  if (s && end > offset) {
    if (sector == nullptr) sector = bounce(ss);
    s = read_sector(lower, sector, offset, err);
    if (s) std::memcpy(dst, sector, end - offset);
  }
  if (sector != nullptr) secure_zero(sector, ss);  // it held plaintext
  return s;
}

Status EncryptedVolume::write(LowerDevice& lower, const void* buf, uint32_t count,
                              uint64_t offset, bool fua, int* err) {
  const uint8_t* src = static_cast<const uint8_t*>(buf);
  const uint64_t ss = layout_.format.sector_size;
  while (count > write_chunk_) {
    // Ends on a sector boundary, so only the first chunk can have an unaligned head.
    const uint32_t n = static_cast<uint32_t>(write_chunk_ - offset % ss);
    if (Status s = write_run(lower, src, n, offset, false, err); !s) return s;
    src += n;
    offset += n;
    count -= n;
  }
  return write_run(lower, src, count, offset, fua, err);
}

Status EncryptedVolume::write_run(LowerDevice& lower, const void* buf, uint32_t count,
                                  uint64_t offset, bool fua, int* err) {
  const uint64_t ss = layout_.format.sector_size;
  const uint64_t first = offset / ss * ss;
  const uint64_t end = (offset + count + ss - 1) / ss * ss;
  const uint64_t bytes = end - first;
  uint8_t* out = bounce(bytes);
  RangeGuard hold(writes_, first, end);
  if (first == offset && end == offset + count) {
    if (Status s = crypt(Direction::encrypt, offset, buf, out, count, err); !s) return s;
  } else {
    // The edge sectors' bytes outside the request keep what they held.
    Status s;
    if (offset != first) s = read_sector(lower, out, first, err);
    if (s && offset + count != end && (end - ss > first || offset == first)) {
      s = read_sector(lower, out + bytes - ss, end - ss, err);
    }
    if (s) {
      std::memcpy(out + (offset - first), buf, count);
      s = crypt(Direction::encrypt, first, out, out, bytes, err);
    }
    if (!s) {
      secure_zero(out, bytes);
      return s;
    }
  }
  if (lower.pwrite(out, static_cast<uint32_t>(bytes), layout_.data_offset + first, fua, err) <
      0) {
    return Status::error(Errc::backend_failure, "writing %llu bytes below at %llu failed: %s",
                         static_cast<unsigned long long>(bytes),
                         static_cast<unsigned long long>(layout_.data_offset + first),
                         std::strerror(*err));
  }
  return Status();
}

Status EncryptedVolume::write_zeroes(LowerDevice& lower, uint32_t count, uint64_t offset,
                                     bool fua, int* err) {
  while (count > 0) {
    const uint32_t n = count < kZeroChunk ? count : kZeroChunk;
    if (Status s = write(lower, kZeros, n, offset, fua && n == count, err); !s) return s;
    count -= n;
    offset += n;
  }
  return Status();
}

}  // namespace sectorcrypt::nbd
