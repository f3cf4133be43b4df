// The filter's data path: a volume of whole sectors stored encrypted on a lower device
// (the nbdkit plugin), read and written at any byte offset and length. Each request is
// crypted as one run through the engine (crypt_sync: the engine splits it into slots),
// never sector by sector; a write larger than the write chunk (its ciphertext needs a
// buffer, the client's being const) is crypted and written a chunk at a time, so the
// memory a thread holds stays bounded whatever the client sends. A request that does
// not start and end on sector boundaries reads its edge sectors, patches them and
// rewrites them (read-modify-write), holding the byte range it rewrites against other
// writes of that range only.
#pragma once

#include <cstdint>

#include "engine/engine.h"
#include "host/nbdkit/range_lock.h"
#include "kernels/sector_format.h"
#include "kernels/status.h"

namespace sectorcrypt::nbd {

// The layer below (nbdkit's next->pread/pwrite). Each returns 0, or -1 with *err set to an
// errno value.
class LowerDevice {
 public:
  virtual ~LowerDevice() = default;
  virtual int pread(void* buf, uint32_t count, uint64_t offset, int* err) = 0;
  virtual int pwrite(const void* buf, uint32_t count, uint64_t offset, bool fua, int* err) = 0;
};

struct VolumeLayout {
  SectorFormat format;
  uint64_t data_offset = 0;  // byte offset on the lower device of the volume's first sector
  uint64_t iv_base = 0;      // IV sector number (512-byte units) of the volume's first sector
};

class EncryptedVolume {
 public:
  static constexpr uint32_t kDefaultWriteChunk = 4u << 20;

  // `engine` and `key` must outlive the volume. `write_chunk`: a multiple of 4096.
  EncryptedVolume(Engine& engine, KeyHandle key, const VolumeLayout& layout,
                  uint32_t write_chunk = kDefaultWriteChunk)
      : engine_(engine), key_(key), layout_(layout), write_chunk_(write_chunk) {}

  // Each returns ok, or an error whose message says what failed; *err is then the errno
  // value to give the client (the lower device's, or EIO for a crypt failure).
  Status read(LowerDevice& lower, void* buf, uint32_t count, uint64_t offset, int* err);
  Status write(LowerDevice& lower, const void* buf, uint32_t count, uint64_t offset, bool fua,
               int* err);
  // Writes encrypted zeros (what a zeroed dm-crypt volume holds), never plaintext zeros.
  Status write_zeroes(LowerDevice& lower, uint32_t count, uint64_t offset, bool fua, int* err);

  const VolumeLayout& layout() const { return layout_; }

 private:
  Status crypt(Direction dir, uint64_t volume_offset, const void* in, void* out, uint64_t bytes,
               int* err);
  Status lower_read(LowerDevice& lower, void* buf, uint64_t bytes, uint64_t volume_offset,
                    int* err);
  // One sector at `sector_offset`, decrypted into `out`.
  Status read_sector(LowerDevice& lower, uint8_t* out, uint64_t sector_offset, int* err);
  // A write of at most write_chunk_ + one sector's worth of edges.
  Status write_run(LowerDevice& lower, const void* buf, uint32_t count, uint64_t offset,
                   bool fua, int* err);

  Engine& engine_;
  KeyHandle key_;
  VolumeLayout layout_;
  uint32_t write_chunk_;
  RangeLock writes_;
};

}  // namespace sectorcrypt::nbd
