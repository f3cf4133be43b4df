// The CUDA AES-XTS kernels' host-side launch interface (built only when CUDA is enabled).
//
// A batch is `count` sectors of one size and direction in device memory, contiguous;
// sector i uses key table entry key_index[i] and IV number iv_numbers[i]. Launch wrappers
// take a stream, never allocate, never synchronise, and return the launch's cudaError_t.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "kernels/sector_format.h"
#include "kernels/xts_key.h"

namespace sectorcrypt::cuda {

// Which AES the kernels run. `table`: T-tables in shared memory (fast; timing depends on
// data, so only for trusted-co-tenancy use). `constant_time`: no data-dependent memory
// access. `bitsliced32`: also constant-time, 32 blocks per thread bitsliced across 128
// words (aes_bitsliced32_core.h), fewer instructions per block than `constant_time`'s two
// blocks per lane. The default is stated where the engine picks it.
enum class AesVariant { table, constant_time, bitsliced32 };

const char* aes_variant_name(AesVariant v);  // "table", "constant_time", "bitsliced32"

// The default is constant_time. Table-based AES on GPUs has been broken remotely through
// timing alone: Jiang, Fei and Kaeli (HPCA 2016) recovered a full AES key from the
// execution time of a T-table kernel, through the data-dependent number of memory
// transactions of its lookups, and later work used shared-memory bank conflicts the same
// way. The table variant here keeps its tables conflict-free per lane (every lookup is one
// wavefront), which closes that particular channel, but its addresses still depend on key
// and data, and that is not a property we can prove harmless on every GPU. So: tables only
// where the caller opts in for speed (trusted single-tenant GPU, benchmarks). The
// constant-time variant is bitsliced AES (kernels/cuda/aes_bitsliced_core.h): about 2-3x
// the instructions of the table variant per block on an H100's integer units, the price
// of having no secret-dependent address at all. The table variant needs 128 KiB (encrypt)
// or 160 KiB (decrypt) of shared memory per thread block, as Hopper and the data-centre
// Blackwells have; on a GPU with less, launch_xts returns the runtime's error for it.
inline constexpr AesVariant kDefaultAesVariant = AesVariant::constant_time;

// One expanded XTS key as the kernels read it: a plain struct copied into device memory
// (a key table is an array of these). Zero it when the key is released.
struct DeviceXtsKey {
  alignas(16) uint8_t data_enc[15][16];
  alignas(16) uint8_t data_dec[15][16];
  alignas(16) uint8_t tweak_enc[15][16];
  int32_t rounds;  // 10 or 14
  int32_t pad[3];
};

// Host side: fills *out from a created key (no CUDA call).
void to_device_key(const XtsKey& key, DeviceXtsKey* out);

struct GpuBatch {
  const uint8_t* in;            // device: count * sector_size bytes
  uint8_t* out;                 // device: may equal in (in place)
  std::size_t count;            // sectors
  uint32_t sector_size;         // 512..4096, a multiple of 16
  Direction dir;
  IvMode iv_mode;
  const uint64_t* iv_numbers;   // device: count IV numbers
  const uint32_t* key_index;    // device: count indices into keys
  const DeviceXtsKey* keys;     // device key table
};

// Enqueues the batch on `stream`. Returns cudaSuccess or the launch error (argument
// errors are reported as cudaErrorInvalidValue before anything is enqueued): null
// pointers, sector_size outside 512..4096 or not a multiple of 16, an unknown direction,
// IV mode or variant, `in`/`out`/`keys` not 16-byte aligned, iv_numbers/key_index not
// naturally aligned, in/out overlapping without being equal, or a batch too large for
// one grid. count == 0 enqueues nothing and returns cudaSuccess. The device data is
// trusted: key_index entries must index the table and entries must come from
// to_device_key() (rounds 10 or 14); nothing on the device checks them.
cudaError_t launch_xts(const GpuBatch& batch, AesVariant variant, cudaStream_t stream);

}  // namespace sectorcrypt::cuda
