// Internal to kernels/cpu: the validated arguments every CPU implementation (each Highway
// target, the VAES-AVX2 path) receives, so one entry point serves the contiguous and the
// gathered form.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/sector_format.h"
#include "kernels/xts_key.h"

namespace sectorcrypt::cpu {

struct BatchArgs {
  const XtsKey* key;
  Direction dir;
  IvMode iv_mode;
  uint32_t sector_size;  // 512, 1024, 2048 or 4096
  std::size_t count;     // sectors

  // Sector i is at in_ptrs[i] when in_ptrs is set, else at in_base + i * sector_size;
  // likewise for out.
  const uint8_t* in_base;
  const uint8_t* const* in_ptrs;
  uint8_t* out_base;
  uint8_t* const* out_ptrs;

  // IV number of sector i: iv_numbers[i] when set, else iv_first + i * iv_step (mod 2^64).
  uint64_t iv_first;
  uint64_t iv_step;
  const uint64_t* iv_numbers;

  const uint8_t* in(std::size_t i) const {
    return in_ptrs ? in_ptrs[i] : in_base + i * sector_size;
  }
  uint8_t* out(std::size_t i) const { return out_ptrs ? out_ptrs[i] : out_base + i * sector_size; }
  uint64_t iv_number(std::size_t i) const {
    return iv_numbers ? iv_numbers[i] : iv_first + i * iv_step;
  }
};

// One implementation's entry: runs the whole batch. Arguments are already validated.
using BatchFn = void (*)(const BatchArgs& args);

}  // namespace sectorcrypt::cpu
