// Public entry of the CPU kernels: validation, then the dispatched implementation.
// TRANSITIONAL: until the Highway and VAES implementations land (issue 3), every batch
// runs the constant-time reference sector by sector.
#include "kernels/cpu/xts_cpu.h"

#include "kernels/cpu/xts_batch_args.h"
#include "kernels/xts_reference.h"

namespace sectorcrypt::cpu {
namespace {

void run_reference(const BatchArgs& a) {
  for (std::size_t i = 0; i < a.count; ++i) {
    uint8_t iv[16];
    make_iv(a.iv_mode, a.iv_number(i), iv);
    (void)ref::xts_crypt_unit(*a.key, a.dir, iv, a.in(i), a.out(i), a.sector_size);
  }
}

}  // namespace

Status xts_crypt_sectors(const XtsKey& key, Direction dir, const SectorFormat& format,
                         uint64_t start_sector, const uint8_t* in, uint8_t* out,
                         std::size_t bytes) {
  if (key.empty()) return Status::error(Errc::invalid_key, "key is empty (not created)");
  if (Status s = validate_sector_run(format, in, out, bytes); !s) return s;
  IvSequence ivs;
  if (Status s = iv_sequence_for(format, start_sector, &ivs); !s) return s;
  BatchArgs a{&key, dir, format.iv_mode, format.sector_size, bytes / format.sector_size,
              in, nullptr, out, nullptr, ivs.first, ivs.step, nullptr};
  run_reference(a);
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
  run_reference(a);
  return Status();
}

const char* selected_implementation() { return "reference"; }

}  // namespace sectorcrypt::cpu
