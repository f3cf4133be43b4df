// Small helpers shared by the tests: seeded random bytes and keys with distinct halves.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace sectorcrypt::testing {

// Deterministic per test, different across tests: the seed is printed on failure by
// the tests that use it through SCOPED_TRACE.
inline std::mt19937_64& rng() {
  static std::mt19937_64 gen(0x5ec7c0de);
  return gen;
}

inline std::vector<uint8_t> random_bytes(std::size_t n, std::mt19937_64& gen = rng()) {
  std::vector<uint8_t> out(n);
  for (auto& b : out) b = static_cast<uint8_t>(gen());
  return out;
}

// 32 or 64 random bytes whose halves differ (all-but-impossible to collide, but checked).
inline std::vector<uint8_t> random_xts_key(std::size_t len, std::mt19937_64& gen = rng()) {
  for (;;) {
    auto key = random_bytes(len, gen);
    if (std::memcmp(key.data(), key.data() + len / 2, len / 2) != 0) return key;
  }
}

// Lower-case hex of n bytes: the tests search error messages for it, so that no message
// ever echoes key material.
inline std::string to_hex(const uint8_t* b, std::size_t n) {
  std::string s;
  char h[3];
  for (std::size_t i = 0; i < n; ++i) {
    std::snprintf(h, sizeof h, "%02x", b[i]);
    s += h;
  }
  return s;
}

inline std::string to_hex(const std::vector<uint8_t>& b) { return to_hex(b.data(), b.size()); }

}  // namespace sectorcrypt::testing
