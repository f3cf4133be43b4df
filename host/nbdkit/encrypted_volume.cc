#include "host/nbdkit/encrypted_volume.h"

#include <cerrno>
#include <cstring>
#include <vector>

#include "kernels/secure_zero.h"

namespace sectorcrypt::nbd {
namespace {

// Per nbdkit thread: the ciphertext of a write (the client's buffer is const) and the
// whole sectors around an unaligned request. Grows to the largest request seen, then is
// reused.
uint8_t* bounce(std::size_t bytes) {
  thread_local std::vector<uint8_t> buffer;
  if (buffer.size() < bytes) {
    secure_zero(buffer.data(), buffer.size());
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

Status EncryptedVolume::read(LowerDevice& lower, void* buf, uint32_t count, uint64_t offset,
                             int* err) {
  const uint64_t ss = layout_.format.sector_size;
  const uint64_t first = offset / ss * ss;
  const uint64_t end = (offset + count + ss - 1) / ss * ss;
  if (first == offset && end == offset + count) {
    if (Status s = lower_read(lower, buf, count, offset, err); !s) return s;
    return crypt(Direction::decrypt, offset, buf, buf, count, err);
  }
  uint8_t* sectors = bounce(end - first);
  Status s = lower_read(lower, sectors, end - first, first, err);
  if (s) s = crypt(Direction::decrypt, first, sectors, sectors, end - first, err);
  if (s) std::memcpy(buf, sectors + (offset - first), count);
  secure_zero(sectors, end - first);  // it held plaintext
  return s;
}

Status EncryptedVolume::write(LowerDevice& lower, const void* buf, uint32_t count,
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
    if (offset != first) {
      s = lower_read(lower, out, ss, first, err);
      if (s) s = crypt(Direction::decrypt, first, out, out, ss, err);
    }
    if (s && offset + count != end && (end - ss > first || offset == first)) {
      s = lower_read(lower, out + bytes - ss, ss, end - ss, err);
      if (s) s = crypt(Direction::decrypt, end - ss, out + bytes - ss, out + bytes - ss, ss, err);
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
