// The 256-bit VAES path for CPUs with VAES and VPCLMULQDQ but no AVX-512 (AMD Zen 3,
// Intel Alder Lake and later client cores): two AES blocks per instruction, where
// Highway's AVX2 target issues two 128-bit AESENCs. Dispatch (xts_cpu.cc) calls it.
#pragma once

#include <cstddef>

#include "kernels/cpu/xts_batch_args.h"

namespace sectorcrypt::cpu::vaes_avx2 {

// True when this CPU has AVX2, BMI2, VAES, VPCLMULQDQ, AES-NI and PCLMULQDQ and the OS saves
// YMM state. Checked once; cheap to call. Safe on any x86-64 CPU (and false elsewhere).
bool available();

// Out-of-place contiguous batches at least this large, with 32-byte aligned output, are
// written with non-temporal stores: they cannot stay in cache anyway, and skipping the
// read-for-ownership of the output lines leaves the memory bandwidth to the input.
inline constexpr std::size_t kStreamingStoreMinBytes = std::size_t{8} << 20;

// Runs a whole validated batch. Only call when available() is true. Byte-identical to
// ref::xts_crypt_sectors; allocation-free, no table lookups.
void crypt_batch(const BatchArgs& args);

}  // namespace sectorcrypt::cpu::vaes_avx2
