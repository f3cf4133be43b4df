// A C API struct of `size` bytes (a prefix of T: an older caller's layout) followed by
// guard bytes, so a test can tell whether the library wrote past the size it was given.
#pragma once

#include <cstddef>
#include <vector>

namespace sectorcrypt::capitest {

constexpr unsigned char kGuard = 0xa5;

template <typename T>
struct Guarded {
  explicit Guarded(std::size_t size) : size(size), bytes(size + 64, kGuard) {}
  T* get() { return reinterpret_cast<T*>(bytes.data()); }
  bool guard_intact() const {
    for (std::size_t i = size; i < bytes.size(); ++i) {
      if (bytes[i] != kGuard) return false;
    }
    return true;
  }
  std::size_t size;
  std::vector<unsigned char> bytes;  // operator new: aligned for any of the structs
};

}  // namespace sectorcrypt::capitest
