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
// yields for about a 16 MiB batch's round trip (a sleep there costs its timer slack,
// 50 us or more, on every batch), then sleeps in short steps so a long wait (a large
// slot, a busy GPU) does not hold a core: one waiting worker per batch in flight.
cudaError_t wait_for_event(cudaEvent_t done) {
  constexpr auto kPollFor = std::chrono::microseconds(1000);
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
    variant_ = cfg.aes == GpuAes::table       ? cuda::AesVariant::table
               : cfg.aes == GpuAes::fixsliced ? cuda::AesVariant::constant_time
                                              : cuda::AesVariant::bitsliced32;
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

  Status register_host(void* ptr, std::size_t len) override {
    cudaSetDevice(cfg_.ordinal);
    const cudaError_t e = cudaHostRegister(ptr, len, cudaHostRegisterPortable);
    if (e != cudaSuccess) {
      return Status::error(Errc::backend_failure,
                           "register_memory: cudaHostRegister of %zu bytes failed: %s", len,
                           cudaGetErrorString(e));
    }
    return Status();
  }

  // cudaHostRegisterPortable: pinned for every GPU in the process, once.
  bool registers_process_wide() const override { return true; }

  void unregister_host(void* ptr) override {
    cudaSetDevice(cfg_.ordinal);
    (void)cudaHostUnregister(ptr);
  }

  Status check_device_buffer(const void* ptr, std::size_t len) const override {
    for (const void* p : {ptr, static_cast<const void*>(static_cast<const uint8_t*>(ptr) + len - 1)}) {
      cudaPointerAttributes a{};
      const cudaError_t e = cudaPointerGetAttributes(&a, p);
      if (e != cudaSuccess || (a.type != cudaMemoryTypeDevice && a.type != cudaMemoryTypeManaged) ||
          a.device != cfg_.ordinal) {
        (void)cudaGetLastError();
        return Status::error(Errc::invalid_buffer,
                             "device-resident request: [%p, +%zu) is not device memory of GPU %d",
                             ptr, len, cfg_.ordinal);
      }
    }
    return Status();
  }

  // Stages copy parts in on this worker, runs H2D, kernels and D2H on the slot's stream,
  // waits, and stages the results out: each step of a batch on the thread that admitted
  // it, so many batches stage at once. Registered parts are DMA'd from and to the
  // caller's memory, device-resident parts only go through the kernel.
  void crypt(Batch& b) override {
    SlotDevice& s = slots_[b.slot];
    cudaSetDevice(cfg_.ordinal);
    b.on_gpu = true;
    for (uint32_t k = 0; k < b.part_count; ++k) {
      Part& p = b.parts[k];
      const RequestRecord& r = *p.req;
      p.mode = b.zero_copy                          ? Part::Mode::staged
               : r.memory == MemoryKind::device     ? Part::Mode::device
               : r.registered                       ? Part::Mode::dma
                                                    : Part::Mode::staged;
      if (p.mode == Part::Mode::device) b.rerunnable = false;  // the CPU cannot reach it
      if (p.mode == Part::Mode::staged) stage_in(b, p);
      fill_sector_numbers(b, p);
    }
    cudaError_t e = enqueue(b, s);
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

  void finish(Batch&) override {}

 private:
  // The batch's H2D copies, kernels, D2H copies and event, in stream order.
  cudaError_t enqueue(Batch& b, SlotDevice& s) {
    s.failed_step = "H2D copy";
    cudaError_t e = copy_async(s.iv, b.iv, b.sector_count * sizeof(uint64_t),
                               cudaMemcpyHostToDevice, s.stream);
    if (e == cudaSuccess) {
      e = copy_async(s.key_index, b.key_index, b.sector_count * sizeof(uint32_t),
                     cudaMemcpyHostToDevice, s.stream);
    }
    if (e == cudaSuccess) e = move_data(b, s, cudaMemcpyHostToDevice);
    if (e == cudaSuccess) s.failed_step = "kernel launch";
    for (uint32_t k = 0; e == cudaSuccess && k < b.part_count;) {
      const uint32_t end = launch_run(b, s, k, &e);
      k = end;
    }
    if (e == cudaSuccess) {
      s.failed_step = "D2H copy";
      // From here the input may be overwritten: a zero-copy slot, or registered memory
      // crypted in place.
      for (uint32_t k = 0; k < b.part_count; ++k) {
        const Part& p = b.parts[k];
        if (b.zero_copy || (p.mode == Part::Mode::dma && p.req->in_place)) b.rerunnable = false;
      }
      e = move_data(b, s, cudaMemcpyDeviceToHost);
    }
    if (e == cudaSuccess) {
      s.failed_step = "event record";
      e = cudaEventRecord(s.done, s.stream);
    }
    return e;
  }

  // Host <-> the device slot, per part: staged parts in runs (adjacent in the slot,
  // one copy each), registered parts by DMA straight from or to the caller's segments.
  cudaError_t move_data(const Batch& b, SlotDevice& s, cudaMemcpyKind kind) {
    const bool in = kind == cudaMemcpyHostToDevice;
    cudaError_t e = cudaSuccess;
    uint32_t run_begin = 0, run_bytes = 0;  // staged bytes not yet copied
    auto flush_run = [&] {
      if (run_bytes == 0 || e != cudaSuccess) return;
      e = in ? copy_async(s.data + run_begin, b.data + run_begin, run_bytes, kind, s.stream)
             : copy_async(b.data + run_begin, s.data + run_begin, run_bytes, kind, s.stream);
      run_bytes = 0;
    };
    for (uint32_t k = 0; k < b.part_count && e == cudaSuccess; ++k) {
      const Part& p = b.parts[k];
      if (p.mode == Part::Mode::staged) {
        if (run_bytes != 0 && run_begin + run_bytes != p.slot_offset) flush_run();
        if (run_bytes == 0) run_begin = p.slot_offset;
        run_bytes += p.bytes;
        continue;
      }
      flush_run();
      if (p.mode != Part::Mode::dma) continue;
      const RequestRecord& r = *p.req;
      const iovec* segs = in ? r.src : r.dst;
      const uint32_t count = in ? r.src_count : r.dst_count;
      uint8_t* dev = s.data + p.slot_offset;
      for_each_piece(segs, count, segs, count, p.req_offset, p.bytes,
                     [&](const uint8_t* host, uint8_t* host_out, std::size_t n, uint64_t pos) {
                       if (e != cudaSuccess) return;
                       e = in ? copy_async(dev + pos, host, n, kind, s.stream)
                              : copy_async(host_out, dev + pos, n, kind, s.stream);
                     });
    }
    flush_run();
    return e;
  }

  // Launches the kernel for parts [k, end) and returns end: a run of slot parts (staged
  // or DMA'd, adjacent in the slot and the per-sector arrays) with one direction, sector
  // size and IV mode in one launch; a device-resident part once per piece contiguous in
  // both its source and destination.
  uint32_t launch_run(const Batch& b, SlotDevice& s, uint32_t k, cudaError_t* e) {
    const Part& first = b.parts[k];
    const RequestRecord& r = *first.req;
    auto launch = [&](const uint8_t* in, uint8_t* out, std::size_t sectors, uint32_t sector0) {
      if (*e != cudaSuccess) return;
      cuda::GpuBatch gb{in, out, sectors, r.format.sector_size, r.dir, r.format.iv_mode,
                        s.iv + sector0, s.key_index + sector0, keys_};
      *e = SECTORCRYPT_FAULT(fault::Point::cuda_launch) ? cudaErrorLaunchFailure
                                                         : cuda::launch_xts(gb, variant_, s.stream);
    };
    if (first.mode == Part::Mode::device) {
      const uint32_t ss = r.format.sector_size;
      for_each_piece(r.src, r.src_count, r.dst, r.dst_count, first.req_offset, first.bytes,
                     [&](const uint8_t* in, uint8_t* out, std::size_t n, uint64_t pos) {
                       launch(in, out, n / ss, first.first_sector + static_cast<uint32_t>(pos / ss));
                     });
      return k + 1;
    }
    uint32_t end = k + 1;
    std::size_t sectors = first.sectors;
    while (end < b.part_count) {
      const Part& p = b.parts[end];
      const RequestRecord& n = *p.req;
      if (p.mode == Part::Mode::device || n.dir != r.dir ||
          n.format.sector_size != r.format.sector_size || n.format.iv_mode != r.format.iv_mode) {
        break;
      }
      sectors += p.sectors;
      ++end;
    }
    uint8_t* slot = s.data + first.slot_offset;
    launch(slot, slot, sectors, first.first_sector);
    return end;
  }

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
