#include "host/cli/engine_paths.h"

#include <cstdlib>
#include <cstring>

#include "host/cli/cli_common.h"
#ifdef SECTORCRYPT_HAVE_CUDA
#include <cuda_runtime.h>
#endif

namespace sectorcrypt::cli {
namespace {

// Host memory to or from the path's memory (device memory on the device path).
void copy_bytes(void* dst, const void* src, std::size_t n, DataPath path, bool to_path) {
#ifdef SECTORCRYPT_HAVE_CUDA
  if (path == DataPath::device) {
    if (cudaMemcpy(dst, src, n, to_path ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost) !=
        cudaSuccess) {
      fail("cudaMemcpy of {} bytes failed", n);
    }
    return;
  }
#endif
  (void)path;
  (void)to_path;
  std::memcpy(dst, src, n);
}

}  // namespace

void parse_engine_subject(const std::string& name, BackendKind* backend, DataPath* path) {
  *path = DataPath::copy;
  if (name == "cpu") {
    *backend = BackendKind::cpu;
    return;
  }
  if (name == "hybrid" || name == "hybrid-registered") {
    *backend = BackendKind::hybrid;
    if (name == "hybrid-registered") *path = DataPath::registered;
    return;
  }
  *backend = BackendKind::cuda;
  if (name == "cuda" || name == "gpu") return;
  if (name == "cuda-registered") *path = DataPath::registered;
  else if (name == "cuda-slots") *path = DataPath::slots;
  else if (name == "cuda-device") *path = DataPath::device;
  else fail("unknown backend '{}' (cpu, cuda, cuda-registered, cuda-slots, cuda-device, hybrid, "
            "hybrid-registered)", name);
}

std::vector<std::string> gpu_subject_names() {
  return {"cuda", "cuda-registered", "cuda-slots", "cuda-device", "hybrid-registered"};
}

PathBuffers::PathBuffers(Engine& engine, DataPath path, std::size_t batch_max, std::size_t depth)
    : engine_(engine), path_(path), batch_max_((batch_max + 4095) / 4096 * 4096), depth_(depth),
      iov_(depth) {
  if (path_ == DataPath::slots) {
    if (batch_max_ > engine_.config().slot_bytes || depth_ > engine_.config().slot_count) {
      fail("the slots path needs {} slots of at least {} bytes", depth_, batch_max_);
    }
    slots_.resize(depth_);
    for (SlotHandle& s : slots_) {
      check(engine_.acquire_slot(&s), "acquire_slot");
      std::memset(s.data, 0x5a, s.capacity);
    }
    return;
  }
  const std::size_t total = batch_max_ * depth_;
  if (path_ == DataPath::device) {
#ifdef SECTORCRYPT_HAVE_CUDA
    if (cudaMalloc(&memory_, total) != cudaSuccess) {
      memory_ = nullptr;
      fail("cudaMalloc of {} bytes for the device-resident path failed", total);
    }
    cudaMemset(memory_, 0x5a, total);
    return;
#else
    fail("the device-resident path needs a build with CUDA");
#endif
  }
  memory_ = static_cast<uint8_t*>(std::aligned_alloc(4096, total));
  if (memory_ == nullptr) fail("cannot allocate {} bytes of request buffers", total);
  std::memset(memory_, 0x5a, total);
  if (path_ == DataPath::registered) {
    if (Status s = engine_.register_memory(memory_, total); !s) {
      std::free(memory_);
      memory_ = nullptr;
      check(s, "register_memory");
    }
  }
}

PathBuffers::~PathBuffers() {
  (void)engine_.drain();
  for (SlotHandle& s : slots_) (void)engine_.release_slot(s);
  if (memory_ == nullptr) return;
  if (path_ == DataPath::device) {
#ifdef SECTORCRYPT_HAVE_CUDA
    cudaFree(memory_);
#endif
    return;
  }
  if (path_ == DataPath::registered) (void)engine_.unregister_memory(memory_);
  std::free(memory_);
}

Status PathBuffers::submit_at(KeyHandle key, Direction dir, const SectorFormat& format,
                              uint64_t start, std::size_t i, std::size_t bytes) {
  void* ctx = reinterpret_cast<void*>(i);
  if (path_ == DataPath::slots) {
    SlotRequest r;
    r.key = key;
    r.dir = dir;
    r.format = format;
    r.start_sector = start;
    r.bytes = bytes;
    r.post_completion = true;
    r.user_context = ctx;
    return engine_.submit_slot(slots_[i], r);
  }
  iov_[i] = iovec{memory_ + i * batch_max_, bytes};
  Request r;
  r.key = key;
  r.dir = dir;
  r.format = format;
  r.start_sector = start;
  r.src = &iov_[i];
  r.src_count = 1;
  r.memory = path_ == DataPath::device ? MemoryKind::device : MemoryKind::host;
  r.post_completion = true;
  r.flush = true;  // a measured batch is sent as is, not held to coalesce
  r.user_context = ctx;
  return engine_.submit(r);
}

Status PathBuffers::submit(KeyHandle key, Direction dir, const SectorFormat& format,
                           std::size_t i, std::size_t bytes) {
  return submit_at(key, dir, format, 0, i, bytes);
}

void PathBuffers::run_one(KeyHandle key, Direction dir, const SectorFormat& format,
                          std::size_t bytes) {
  check(submit_at(key, dir, format, 0, 0, bytes), "engine");
  Completion c;
  if (engine_.wait_completions(&c, 1, 60'000'000) != 1) fail("no completion within 60 s");
  check(c.status, "engine");
}

void PathBuffers::crypt_once(KeyHandle key, Direction dir, const SectorFormat& format,
                             uint64_t start, const uint8_t* in, uint8_t* out, std::size_t bytes) {
  uint8_t* where = path_ == DataPath::slots ? slots_[0].data : memory_;
  copy_bytes(where, in, bytes, path_, true);
  check(submit_at(key, dir, format, start, 0, bytes), "engine");
  Completion c;
  if (engine_.wait_completions(&c, 1, 60'000'000) != 1) fail("no completion within 60 s");
  check(c.status, "engine");
  copy_bytes(out, where, bytes, path_, false);
}

}  // namespace sectorcrypt::cli
