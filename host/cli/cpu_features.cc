// CPU model and AES-relevant features for `sectorcrypt info`.
#include "host/cli/cpu_features.h"

#include <fstream>

namespace sectorcrypt::cli {

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
      {"vaes", __builtin_cpu_supports("vaes") != 0},
      {"vpclmulqdq", __builtin_cpu_supports("vpclmulqdq") != 0},
      {"avx512f", __builtin_cpu_supports("avx512f") != 0},
  };
#else
  return {};
#endif
}

}  // namespace sectorcrypt::cli
