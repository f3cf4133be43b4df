// CPU model and AES-relevant features for `sectorcrypt info`.
#include "host/cli/cpu_features.h"

#include <fstream>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace sectorcrypt::cli {
namespace {

#if defined(__x86_64__) || defined(__i386__)
// __builtin_cpu_supports("vaes"/"vpclmulqdq"), which clang before 15 does not accept (the
// fuzz tree builds the CLI with clang-14): CPUID leaf 7 ECX, counted only when the OS saves
// the AVX state, as libgcc does for the builtin.
[[maybe_unused]] bool leaf7_ecx_feature(unsigned bit) {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  return __builtin_cpu_supports("avx") != 0 && (ecx & bit) != 0;
}
#endif

}  // namespace

std::string cpu_model_name() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) {
        auto v = line.substr(colon + 1);
        v.erase(0, v.find_first_not_of(" \t"));
        return v;
      }
    }
  }
  return "unknown";
}

std::vector<std::pair<std::string, bool>> cpu_aes_features() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return {
      {"aes", __builtin_cpu_supports("aes") != 0},
      {"pclmul", __builtin_cpu_supports("pclmul") != 0},
      {"avx2", __builtin_cpu_supports("avx2") != 0},
#if defined(__clang__) && __clang_major__ < 15
      {"vaes", leaf7_ecx_feature(1u << 9)},
      {"vpclmulqdq", leaf7_ecx_feature(1u << 10)},
#else
      {"vaes", __builtin_cpu_supports("vaes") != 0},
      {"vpclmulqdq", __builtin_cpu_supports("vpclmulqdq") != 0},
#endif
      {"avx512f", __builtin_cpu_supports("avx512f") != 0},
  };
#else
  return {};
#endif
}

}  // namespace sectorcrypt::cli
