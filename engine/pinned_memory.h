// Host memory for the engine's slots: CUDA pinned memory (cudaHostAlloc) when the CUDA
// backend runs, otherwise page-aligned anonymous memory locked with mlock where
// RLIMIT_MEMLOCK allows. Locked so the data path never takes a page fault that needs the
// kernel to find memory (the 2018 dm-crypt lesson: no allocation under I/O), and pinned
// so DMA to the GPU can run asynchronously. Pages are touched at allocation.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/status.h"

namespace sectorcrypt {

enum class PinnedKind { none, cuda_pinned, cuda_registered, mlocked, unlocked };

class PinnedMemory {
 public:
  struct Options {
    bool cuda = false;            // cudaHostAlloc (needs a CUDA build and a driver)
    bool require_locked = false;  // fail instead of falling back to unlocked memory
    // Place the pages on this NUMA node (mbind before they are touched; CUDA: mmap'ed,
    // bound, then pinned with cudaHostRegister). -1: where the allocating thread's policy
    // puts them. A node the kernel refuses is reported in detail(), not an error.
    int numa_node = -1;
  };

  // RETURN VALUE: ok and *out holding `bytes` (rounded up to whole pages) of zeroed
  // memory; resource_exhausted when memory cannot be had, or cannot be locked and
  // require_locked is set (the message names RLIMIT_MEMLOCK and `ulimit -l`).
  static Status allocate(std::size_t bytes, const Options& options, PinnedMemory* out);

  PinnedMemory() = default;
  PinnedMemory(PinnedMemory&& other) noexcept { *this = static_cast<PinnedMemory&&>(other); }
  PinnedMemory& operator=(PinnedMemory&& other) noexcept;
  PinnedMemory(const PinnedMemory&) = delete;
  PinnedMemory& operator=(const PinnedMemory&) = delete;
  ~PinnedMemory() { reset(); }

  // Zeroes (it held plaintext) and frees.
  void reset();

  uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }
  PinnedKind kind() const { return kind_; }
  bool locked() const {
    return kind_ == PinnedKind::cuda_pinned || kind_ == PinnedKind::cuda_registered ||
           kind_ == PinnedKind::mlocked;
  }
  // "CUDA pinned", "mlock'ed" (", NUMA node N" when bound), or why not locked, e.g. "not locked: mlock of 64 MiB
  // failed (...); RLIMIT_MEMLOCK (ulimit -l) is 8192 KiB".
  const char* detail() const { return detail_; }

 private:
  uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  PinnedKind kind_ = PinnedKind::none;
  char detail_[224] = {};
};

}  // namespace sectorcrypt
