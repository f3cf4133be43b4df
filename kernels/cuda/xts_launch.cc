// The host side of xts_cuda.h: argument checks, launch shape, key conversion. No
// allocation, no synchronisation: launch_xts only enqueues.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>

#include "kernels/cuda/xts_cuda.h"
#include "kernels/cuda/xts_kernels.h"

namespace sectorcrypt::cuda {
namespace {

// Enough warps to cover an H100 about twice over (132 SMs x 32 resident warps with the
// table variant): below that a warp takes fewer than 32 sectors, trading some tweak
// overhead for parallelism (down to the floor in launch_xts).
constexpr uint64_t kTargetWarps = 8192;

bool aligned(const void* p, std::uintptr_t a) {
  return reinterpret_cast<std::uintptr_t>(p) % a == 0;
}

bool overlaps_partly(const void* in, const void* out, std::size_t len) {
  const auto a = reinterpret_cast<std::uintptr_t>(in);
  const auto b = reinterpret_cast<std::uintptr_t>(out);
  return a != b && a < b + len && b < a + len;
}

bool valid(const GpuBatch& b) {
  if (b.in == nullptr || b.out == nullptr || b.iv_numbers == nullptr ||
      b.key_index == nullptr || b.keys == nullptr) {
    return false;
  }
  if (b.sector_size < 512 || b.sector_size > 4096 || b.sector_size % 16 != 0) return false;
  if (b.dir != Direction::encrypt && b.dir != Direction::decrypt) return false;
  if (b.iv_mode != IvMode::plain64 && b.iv_mode != IvMode::plain &&
      b.iv_mode != IvMode::plain64be) {
    return false;
  }
  // uint4 data access, uint4 round keys, natural alignment of the index arrays.
  if (!aligned(b.in, 16) || !aligned(b.out, 16) || !aligned(b.keys, 16) ||
      !aligned(b.iv_numbers, alignof(uint64_t)) || !aligned(b.key_index, alignof(uint32_t))) {
    return false;
  }
  if (b.count > SIZE_MAX / b.sector_size) return false;
  return !overlaps_partly(b.in, b.out, b.count * b.sector_size);
}

}  // namespace

const char* aes_variant_name(AesVariant v) {
  switch (v) {
    case AesVariant::table:
      return "table";
    case AesVariant::constant_time:
      return "constant_time";
    case AesVariant::bitsliced32:
      return "bitsliced32";
  }
  return "unknown";
}

void to_device_key(const XtsKey& key, DeviceXtsKey* out) {
  std::memset(out, 0, sizeof(*out));
  if (key.empty()) return;
  std::memcpy(out->data_enc, key.data_encrypt().rk, sizeof(out->data_enc));
  std::memcpy(out->data_dec, key.data_decrypt().rk, sizeof(out->data_dec));
  std::memcpy(out->tweak_enc, key.tweak_encrypt().rk, sizeof(out->tweak_enc));
  out->rounds = key.data_encrypt().rounds;
}

cudaError_t launch_xts(const GpuBatch& batch, AesVariant variant, cudaStream_t stream) {
  if (variant != AesVariant::table && variant != AesVariant::constant_time &&
      variant != AesVariant::bitsliced32) {
    return cudaErrorInvalidValue;
  }
  if (batch.count == 0) return cudaSuccess;  // nothing to enqueue
  if (!valid(batch)) return cudaErrorInvalidValue;

  uint64_t per_warp = (batch.count + kTargetWarps - 1) / kTargetWarps;
  // A warp's tweak phase costs about one block per lane; keep it at most ~1/8 of the data
  // phase (>= 8 blocks per lane per group: 8 sectors of 512 bytes, 1 of 4096), and give the
  // two-block constant-time cipher at least a pair of sectors.
  uint64_t min_per_warp = 256 / (batch.sector_size / 16);
  if (variant == AesVariant::constant_time && min_per_warp < 2) min_per_warp = 2;
  // bitsliced32 crypts 32 columns of 32 blocks a step whatever they hold: give a warp at
  // least enough sectors to fill one step.
  if (variant == AesVariant::bitsliced32) {
    const uint64_t segments = (batch.sector_size / 16 + 31) / 32;
    const uint64_t fill = (32 + segments - 1) / segments;
    if (min_per_warp < fill) min_per_warp = fill;
  }
  if (per_warp < min_per_warp) per_warp = min_per_warp;
  if (variant == AesVariant::constant_time) per_warp += per_warp & 1;  // whole pairs
  // bitsliced32's phase 1 handles two sectors per lane.
  const uint64_t max_per_warp = variant == AesVariant::bitsliced32 ? 64 : 32;
  if (per_warp > max_per_warp) per_warp = max_per_warp;
  const uint64_t warps = (batch.count + per_warp - 1) / per_warp;
  if (warps > (uint64_t{1} << 31)) return cudaErrorInvalidValue;  // beyond one grid

  const detail::KernelArgs args{batch.in,          batch.out,
                                batch.count,       batch.sector_size,
                                static_cast<uint32_t>(per_warp), batch.iv_mode,
                                batch.iv_numbers,  batch.key_index,
                                batch.keys};
  switch (variant) {
    case AesVariant::table:
      return detail::launch_table_kernel(args, batch.dir, warps, stream);
    case AesVariant::bitsliced32:
      return detail::launch_bs32_kernel(args, batch.dir, warps, stream);
    case AesVariant::constant_time:
    default:
      return detail::launch_ct_kernel(args, batch.dir, warps, stream);
  }
}

}  // namespace sectorcrypt::cuda
