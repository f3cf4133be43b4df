#include "engine/pinned_memory.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#ifdef SECTORCRYPT_HAVE_CUDA
#include <cuda_runtime.h>
#endif

#include "kernels/secure_zero.h"

namespace sectorcrypt {
namespace {

// "8192 KiB" or "unlimited": the soft limit, as `ulimit -l` shows it.
void describe_memlock_limit(char* buf, std::size_t n) {
  rlimit lim{};
  if (getrlimit(RLIMIT_MEMLOCK, &lim) != 0) {
    std::snprintf(buf, n, "unknown");
  } else if (lim.rlim_cur == RLIM_INFINITY) {
    std::snprintf(buf, n, "unlimited");
  } else {
    std::snprintf(buf, n, "%llu KiB", static_cast<unsigned long long>(lim.rlim_cur / 1024));
  }
}

}  // namespace

// mbind(MPOL_BIND) to one node, by system call (libnuma is not needed for one call).
// Returns 0 or the errno.
static int bind_to_node(void* p, std::size_t size, int node) {
  constexpr int kMpolBind = 2;
  constexpr unsigned long kBitsPerWord = 8 * sizeof(unsigned long);
  if (node < 0 || node >= 1024) return EINVAL;
  unsigned long mask[1024 / kBitsPerWord] = {};
  mask[node / kBitsPerWord] = 1ul << (node % kBitsPerWord);
  if (syscall(SYS_mbind, p, size, kMpolBind, mask, 1024ul, 0u) != 0) return errno;
  return 0;
}

PinnedMemory& PinnedMemory::operator=(PinnedMemory&& other) noexcept {
  if (this != &other) {
    reset();
    data_ = other.data_;
    size_ = other.size_;
    kind_ = other.kind_;
    std::memcpy(detail_, other.detail_, sizeof(detail_));
    other.data_ = nullptr;
    other.size_ = 0;
    other.kind_ = PinnedKind::none;
  }
  return *this;
}

void PinnedMemory::reset() {
  if (data_ == nullptr) return;
  secure_zero(data_, size_);
#ifdef SECTORCRYPT_HAVE_CUDA
  if (kind_ == PinnedKind::cuda_pinned) {
    cudaFreeHost(data_);
    data_ = nullptr;
  } else if (kind_ == PinnedKind::cuda_registered) {
    cudaHostUnregister(data_);  // then unmapped below
  }
#endif
  if (data_ != nullptr) munmap(data_, size_);  // also unlocks
  data_ = nullptr;
  size_ = 0;
  kind_ = PinnedKind::none;
}

Status PinnedMemory::allocate(std::size_t bytes, const Options& options, PinnedMemory* out) {
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  if (bytes == 0) return Status::error(Errc::invalid_length, "pinned memory: 0 bytes asked");
  const std::size_t size = (bytes + page - 1) / page * page;
  PinnedMemory m;

  if (options.cuda && options.numa_node < 0) {
#ifdef SECTORCRYPT_HAVE_CUDA
    void* p = nullptr;
    const cudaError_t err = cudaHostAlloc(&p, size, cudaHostAllocPortable);
    if (err != cudaSuccess) {
      return Status::error(Errc::resource_exhausted,
                           "cudaHostAlloc of %zu bytes of pinned memory failed: %s", size,
                           cudaGetErrorString(err));
    }
    std::memset(p, 0, size);
    m.data_ = static_cast<uint8_t*>(p);
    m.size_ = size;
    m.kind_ = PinnedKind::cuda_pinned;
    std::snprintf(m.detail_, sizeof(m.detail_), "CUDA pinned");
    *out = static_cast<PinnedMemory&&>(m);
    return Status();
#else
    return Status::error(Errc::unavailable, "CUDA pinned memory: built without CUDA");
#endif
  }

  // MAP_POPULATE and the memset below fault every page in now, not on the data path;
  // bound to a node, the pages are faulted in only after the binding.
  const bool bind = options.numa_node >= 0;
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | (bind ? 0 : MAP_POPULATE), -1, 0);
  if (p == MAP_FAILED) {
    return Status::error(Errc::resource_exhausted, "mmap of %zu bytes for slot memory failed: %s",
                         size, std::strerror(errno));
  }
  m.data_ = static_cast<uint8_t*>(p);
  m.size_ = size;
  char where[64] = "";
  if (bind) {
    const int err = bind_to_node(p, size, options.numa_node);
    if (err == 0) {
      std::snprintf(where, sizeof(where), ", NUMA node %d", options.numa_node);
    } else {
      std::snprintf(where, sizeof(where), ", NUMA node %d refused (%s)", options.numa_node,
                    std::strerror(err));
    }
    std::memset(p, 0, size);
  }
  if (options.cuda) {
#ifdef SECTORCRYPT_HAVE_CUDA
    const cudaError_t err = cudaHostRegister(p, size, cudaHostRegisterPortable);
    if (err != cudaSuccess) {
      return Status::error(Errc::resource_exhausted,
                           "cudaHostRegister of %zu bytes of slot memory failed: %s", size,
                           cudaGetErrorString(err));
    }
    m.kind_ = PinnedKind::cuda_registered;
    std::snprintf(m.detail_, sizeof(m.detail_), "CUDA pinned%s", where);
    *out = static_cast<PinnedMemory&&>(m);
    return Status();
#else
    return Status::error(Errc::unavailable, "CUDA pinned memory: built without CUDA");
#endif
  }
  if (mlock(p, size) == 0) {
    m.kind_ = PinnedKind::mlocked;
    std::snprintf(m.detail_, sizeof(m.detail_), "mlock'ed%s", where);
  } else {
    const int err = errno;
    char limit[48];
    describe_memlock_limit(limit, sizeof(limit));
    if (options.require_locked) {
      return Status::error(Errc::resource_exhausted,
                           "require_locked_memory: cannot lock %zu KiB of slot memory "
                           "(mlock: %s); RLIMIT_MEMLOCK (ulimit -l) is %s; raise it or "
                           "use fewer/smaller slots",
                           size / 1024, std::strerror(err), limit);
    }
    m.kind_ = PinnedKind::unlocked;
    std::snprintf(m.detail_, sizeof(m.detail_),
                  "not locked: mlock of %zu KiB failed (%s); RLIMIT_MEMLOCK (ulimit -l) is %s",
                  size / 1024, std::strerror(err), limit);
  }
  std::memset(p, 0, size);
  *out = static_cast<PinnedMemory&&>(m);
  return Status();
}

}  // namespace sectorcrypt
