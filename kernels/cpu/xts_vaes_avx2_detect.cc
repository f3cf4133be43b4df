// Run-time detection for the VAES-AVX2 path. Kept apart from xts_vaes_avx2.cc, which is
// compiled with -mavx2 -mvaes: nothing here may be emitted with those instructions, since
// this runs on CPUs that lack them.
#include "kernels/cpu/xts_vaes_avx2.h"

#if (defined(__x86_64__) || defined(__i386__)) && !defined(SECTORCRYPT_NO_VAES_AVX2)
#include <cpuid.h>
#endif

namespace sectorcrypt::cpu::vaes_avx2 {
namespace {

#if (defined(__x86_64__) || defined(__i386__)) && !defined(SECTORCRYPT_NO_VAES_AVX2)
// XCR0 through XGETBV; inline asm so that this file needs no -mxsave.
unsigned long long read_xcr0() {
  unsigned eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}

bool detect() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
  // OSXSAVE must be set before XGETBV may run; AVX itself is needed for VEX encoding.
  if ((ecx & bit_OSXSAVE) == 0 || (ecx & bit_AVX) == 0) return false;
  if ((ecx & bit_AES) == 0 || (ecx & bit_PCLMUL) == 0) return false;
  // XCR0 bits 1 (SSE) and 2 (AVX): the OS saves and restores YMM registers.
  if ((read_xcr0() & 0x6) != 0x6) return false;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  const bool avx2 = (ebx & bit_AVX2) != 0;
  const bool bmi2 = (ebx & bit_BMI2) != 0;  // SARX in the tweak chain
  const bool vaes = (ecx & bit_VAES) != 0;
  const bool vpclmulqdq = (ecx & bit_VPCLMULQDQ) != 0;
  return avx2 && bmi2 && vaes && vpclmulqdq;
}
#else
// Not x86, or the kernel was built without its ISA flags (a stub): never selected.
bool detect() { return false; }
#endif

}  // namespace

bool available() {
  static const bool ok = detect();
  return ok;
}

}  // namespace sectorcrypt::cpu::vaes_avx2
