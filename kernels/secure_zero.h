// Zeroing of key material that the compiler may not elide as a dead store.
#pragma once

#include <cstddef>
#include <cstring>

namespace sectorcrypt {

inline void secure_zero(void* p, std::size_t n) {
  // explicit_bzero is glibc's guaranteed-not-optimised-away memset.
  explicit_bzero(p, n);
}

}  // namespace sectorcrypt
