#include "engine/cuda_backend.h"

#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "engine/batch_io.h"
#include "engine/fault_injection.h"
#include "kernels/cuda/xts_cuda.h"
#include "kernels/secure_zero.h"

namespace sectorcrypt::engine {
namespace {

struct SlotDevice {
  uint8_t* data = nullptr;
  uint64_t* iv = nullptr;
  uint32_t* key_index = nullptr;
  cudaStream_t stream = nullptr;
  cudaEvent_t done = nullptr;
  cudaError_t enqueue_error = cudaSuccess;  // from crypt(), reported by finish()
  const char* failed_step = "";             // the step that failed, for the message
};

// Each CUDA step of a batch, with its injection point (test builds only).
cudaError_t copy_async(void* dst, const void* src, std::size_t n, cudaMemcpyKind kind,
                       cudaStream_t stream) {
  if (SECTORCRYPT_FAULT(fault::Point::cuda_copy)) return cudaErrorInvalidValue;
  return cudaMemcpyAsync(dst, src, n, kind, stream);
}

// Waits for a slot's `done` event by polling, not with the driver's blocking sync: on an
// H200 (driver 580) every cudaEventSynchronize of a cudaEventBlockingSync event took heap
// memory, in this thread and in a driver thread it wakes (engine_alloc_test's
// SECTORCRYPT_ALLOC_TRACE showed both), and the data path must not allocate. The poll
// yields for the length of a typical batch, then sleeps in short steps so a long wait
// (a large slot, a busy GPU) does not hold a core.
cudaError_t wait_for_event(cudaEvent_t done) {
  constexpr auto kPollFor = std::chrono::microseconds(200);
  constexpr auto kSleepStep = std::chrono::microseconds(20);
  const auto poll_until = std::chrono::steady_clock::now() + kPollFor;
  for (;;) {
    const cudaError_t e = cudaEventQuery(done);
    if (e != cudaErrorNotReady) return e;
    if (std::chrono::steady_clock::now() < poll_until) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(kSleepStep);
    }
  }
}

Status cuda_error(const char* what, cudaError_t err) {
  return Status::error(Errc::resource_exhausted, "CUDA %s failed: %s", what,
                       cudaGetErrorString(err));
}

class CudaBackend final : public Backend {
 public:
  ~CudaBackend() override {
    cudaSetDevice(cfg_.ordinal);
    for (SlotDevice& s : slots_) {
      if (s.stream != nullptr) cudaStreamSynchronize(s.stream);
      if (s.done != nullptr) cudaEventDestroy(s.done);
      if (s.stream != nullptr) cudaStreamDestroy(s.stream);
      if (s.data != nullptr) {
        cudaMemset(s.data, 0, cfg_.slot_bytes);  // it held plaintext
        cudaFree(s.data);
      }
      if (s.iv != nullptr) cudaFree(s.iv);
      if (s.key_index != nullptr) cudaFree(s.key_index);
    }
    if (keys_ != nullptr) {
      cudaMemset(keys_, 0, cfg_.key_capacity * sizeof(cuda::DeviceXtsKey));
      cudaFree(keys_);
    }
  }

  Status init(const CudaBackendConfig& cfg) {
    cfg_ = cfg;
    variant_ = cfg.aes == GpuAes::table         ? cuda::AesVariant::table
               : cfg.aes == GpuAes::bitsliced32 ? cuda::AesVariant::bitsliced32
                                                : cuda::AesVariant::constant_time;
    std::snprintf(detail_, sizeof(detail_), "cuda (GPU %d: %s, %s AES)", cfg.ordinal,
                  cfg.gpu_name, cuda::aes_variant_name(variant_));
    if (cudaError_t e = cudaSetDevice(cfg.ordinal); e != cudaSuccess) return cuda_error("cudaSetDevice", e);
    const std::size_t max_sectors = cfg.slot_bytes / 512;
    if (cudaError_t e = cudaMalloc(&keys_, cfg.key_capacity * sizeof(cuda::DeviceXtsKey)); e != cudaSuccess) {
      keys_ = nullptr;
      return cuda_error("cudaMalloc (key table)", e);
    }
    cudaMemset(keys_, 0, cfg.key_capacity * sizeof(cuda::DeviceXtsKey));
    slots_.resize(cfg.slot_count);  // at create, never again
    for (SlotDevice& s : slots_) {
      if (cudaError_t e = cudaMalloc(&s.data, cfg.slot_bytes); e != cudaSuccess) {
        s.data = nullptr;
        return cuda_error("cudaMalloc (slot)", e);
      }
      if (cudaError_t e = cudaMalloc(&s.iv, max_sectors * sizeof(uint64_t)); e != cudaSuccess) {
        s.iv = nullptr;
        return cuda_error("cudaMalloc (IV numbers)", e);
      }
      if (cudaError_t e = cudaMalloc(&s.key_index, max_sectors * sizeof(uint32_t)); e != cudaSuccess) {
        s.key_index = nullptr;
        return cuda_error("cudaMalloc (key indices)", e);
      }
      if (cudaError_t e = cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking); e != cudaSuccess) {
        s.stream = nullptr;
        return cuda_error("cudaStreamCreate", e);
      }
      // No cudaEventBlockingSync: finish() polls (see wait_for_event).
      if (cudaError_t e = cudaEventCreateWithFlags(&s.done, cudaEventDisableTiming);
          e != cudaSuccess) {
        s.done = nullptr;
        return cuda_error("cudaEventCreate", e);
      }
    }
    return Status();
  }

  BackendKind kind() const override { return BackendKind::cuda; }
  bool asynchronous() const override { return true; }
  const char* detail() const override { return detail_; }

  Status publish_key(uint32_t index, const XtsKey& key) override {
    cuda::DeviceXtsKey dk;
    cuda::to_device_key(key, &dk);
    cudaSetDevice(cfg_.ordinal);
    const cudaError_t e = cudaMemcpy(keys_ + index, &dk, sizeof(dk), cudaMemcpyHostToDevice);
    secure_zero(&dk, sizeof(dk));
    if (e != cudaSuccess) {
      return Status::error(Errc::backend_failure, "uploading the key to the GPU failed: %s",
                           cudaGetErrorString(e));
    }
    return Status();
  }

  void clear_key(uint32_t index) override {
    cudaSetDevice(cfg_.ordinal);
    cudaMemset(keys_ + index, 0, sizeof(cuda::DeviceXtsKey));
    cudaDeviceSynchronize();  // zeroed before the entry can be reused
  }

  void crypt(Batch& b) override {
    SlotDevice& s = slots_[b.slot];
    cudaSetDevice(cfg_.ordinal);
    stage_all(b);
    for (uint32_t k = 0; k < b.part_count; ++k) fill_sector_numbers(b, b.parts[k]);
    s.failed_step = "H2D copy";
    cudaError_t e = copy_async(s.data, b.data, b.used, cudaMemcpyHostToDevice, s.stream);
    if (e == cudaSuccess) {
      e = copy_async(s.iv, b.iv, b.sector_count * sizeof(uint64_t), cudaMemcpyHostToDevice, s.stream);
    }
    if (e == cudaSuccess) {
      e = copy_async(s.key_index, b.key_index, b.sector_count * sizeof(uint32_t),
                     cudaMemcpyHostToDevice, s.stream);
    }
    if (e == cudaSuccess) s.failed_step = "kernel launch";
    // One launch per run of parts with the same direction, sector size and IV mode:
    // their sectors are adjacent in the slot and in the per-sector arrays.
    uint32_t k = 0;
    while (e == cudaSuccess && k < b.part_count) {
      const Part& first = b.parts[k];
      const RequestRecord& r = *first.req;
      uint32_t end = k + 1;
      std::size_t sectors = first.sectors;
      while (end < b.part_count) {
        const RequestRecord& n = *b.parts[end].req;
        if (n.dir != r.dir || n.format.sector_size != r.format.sector_size ||
            n.format.iv_mode != r.format.iv_mode) {
          break;
        }
        sectors += b.parts[end].sectors;
        ++end;
      }
      cuda::GpuBatch gb{s.data + first.slot_offset, s.data + first.slot_offset, sectors,
                        r.format.sector_size, r.dir, r.format.iv_mode,
                        s.iv + first.first_sector, s.key_index + first.first_sector, keys_};
      e = SECTORCRYPT_FAULT(fault::Point::cuda_launch) ? cudaErrorLaunchFailure
                                                        : cuda::launch_xts(gb, variant_, s.stream);
      k = end;
    }
    if (e == cudaSuccess) {
      s.failed_step = "D2H copy";
      // From here the slot's bytes may be overwritten: a zero-copy batch's input is gone.
      if (b.zero_copy) b.rerunnable = false;
      e = copy_async(b.data, s.data, b.used, cudaMemcpyDeviceToHost, s.stream);
    }
    if (e == cudaSuccess) {
      s.failed_step = "event record";
      e = cudaEventRecord(s.done, s.stream);
    }
    s.enqueue_error = e;
  }

  void finish(Batch& b) override {
    SlotDevice& s = slots_[b.slot];
    cudaSetDevice(cfg_.ordinal);
    cudaError_t e = s.enqueue_error;
    if (e == cudaSuccess) {
      s.failed_step = "sync (kernel or copy)";
      e = wait_for_event(s.done);
      if (e == cudaSuccess && SECTORCRYPT_FAULT(fault::Point::kernel_error)) {
        s.failed_step = "kernel (injected fault at kernel_error)";
        e = cudaErrorLaunchFailure;
      }
    } else {
      cudaStreamSynchronize(s.stream);  // let whatever was enqueued drain
    }
    for (uint32_t k = 0; k < b.part_count; ++k) {
      b.parts[k].status = e == cudaSuccess
                              ? Status()
                              : Status::error(Errc::backend_failure, "GPU batch failed at %s: %s",
                                              s.failed_step, cudaGetErrorString(e));
    }
    if (e == cudaSuccess) scatter_results(b);
  }

 private:
  CudaBackendConfig cfg_;
  cuda::AesVariant variant_ = cuda::AesVariant::constant_time;
  cuda::DeviceXtsKey* keys_ = nullptr;
  std::vector<SlotDevice> slots_;
  char detail_[160] = {};
};

}  // namespace

Status make_cuda_backend(const CudaBackendConfig& config, std::unique_ptr<Backend>* out) {
  auto b = std::make_unique<CudaBackend>();
  if (Status s = b->init(config); !s) return s;  // the destructor frees what was made
  *out = std::move(b);
  return Status();
}

}  // namespace sectorcrypt::engine
