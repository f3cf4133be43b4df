// Public entry of the CPU kernels: validation, then the implementation chosen once for
// this CPU. Highway's AVX-512 targets process four blocks per instruction and win; below
// them, a CPU with VAES gets the 256-bit VAES-AVX2 path, which Highway's AVX2 target
// (two 128-bit AESENCs per vector) cannot match; anything else runs Highway's choice.
#include "kernels/cpu/xts_cpu.h"

#include "hwy/targets.h"
#include "kernels/cpu/xts_batch_args.h"
#include "kernels/cpu/xts_highway.h"
#include "kernels/cpu/xts_vaes_avx2.h"

namespace sectorcrypt::cpu {
namespace {

struct Implementation {
  BatchFn run;
  const char* name;
};

Implementation choose() {
  const int64_t target = highway::current_target();
  constexpr int64_t kAvx512 = HWY_AVX3 | HWY_AVX3_DL | HWY_AVX3_ZEN4 | HWY_AVX3_SPR;
  if ((target & kAvx512) == 0 && vaes_avx2::available()) {
    return {vaes_avx2::crypt_batch, "VAES-AVX2"};
  }
  return {highway::current_batch_fn(), hwy::TargetName(target)};
}

// Chosen on first use and kept: the CPU does not change under a running process.
const Implementation& chosen() {
  static const Implementation impl = choose();
  return impl;
}

}  // namespace

Status xts_crypt_sectors(const XtsKey& key, Direction dir, const SectorFormat& format,
                         uint64_t start_sector, const uint8_t* in, uint8_t* out,
                         std::size_t bytes) {
  if (key.empty()) return Status::error(Errc::invalid_key, "key is empty (not created)");
  IvSequence ivs;
  if (Status s = validate_sector_run(format, start_sector, in, out, bytes, &ivs); !s) return s;
  BatchArgs a{&key, dir, format.iv_mode, format.sector_size, bytes / format.sector_size,
              in, nullptr, out, nullptr, ivs.first, ivs.step, nullptr};
  chosen().run(a);
  return Status();
}

Status xts_crypt_gathered(const XtsKey& key, Direction dir, IvMode iv_mode,
                          uint32_t sector_size, std::size_t count,
                          const uint8_t* const* in, uint8_t* const* out,
                          const uint64_t* iv_numbers) {
  if (key.empty()) return Status::error(Errc::invalid_key, "key is empty (not created)");
  if (Status s = validate_format(SectorFormat{sector_size, iv_mode, false}); !s) return s;
  if (count == 0) return Status();
  if (in == nullptr || out == nullptr || iv_numbers == nullptr) {
    return Status::error(Errc::invalid_buffer, "gathered batch: %s array is null",
                         in == nullptr ? "input" : out == nullptr ? "output" : "IV number");
  }
  for (std::size_t i = 0; i < count; ++i) {
    if (in[i] == nullptr || out[i] == nullptr) {
      return Status::error(Errc::invalid_buffer, "gathered batch: sector %zu has a null %s",
                           i, in[i] == nullptr ? "input" : "output");
    }
  }
  BatchArgs a{&key, dir, iv_mode, sector_size, count, nullptr, in, nullptr, out, 0, 0,
              iv_numbers};
  chosen().run(a);
  return Status();
}

const char* selected_implementation() { return chosen().name; }

}  // namespace sectorcrypt::cpu
