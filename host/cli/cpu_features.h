// What `sectorcrypt info` reports about the CPU: its model name and the instruction-set
// features the AES-XTS kernels can use.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace sectorcrypt::cli {

std::string cpu_model_name();  // /proc/cpuinfo "model name", or "unknown"

// (feature, present) for aes, pclmul, avx2, vaes, vpclmulqdq, avx512f, as the CPU and
// OS support them (cpuid and xgetbv, through the compiler's cpu model).
std::vector<std::pair<std::string, bool>> cpu_aes_features();

}  // namespace sectorcrypt::cli
