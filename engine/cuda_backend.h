// The CUDA backend (built only with SECTORCRYPT_HAVE_CUDA): per slot, a device buffer,
// device IV/key-index arrays, a stream and an event, all made at create. crypt(), on the
// worker that admitted the batch, gathers unregistered copy parts into the slot's pinned
// memory, enqueues H2D -> cuda::launch_xts -> D2H on the slot's own stream (registered
// memory is DMA'd straight from and to the caller, device-resident parts only run the
// kernel), waits for the slot's event by polling, and scatters. Each slot has a stream,
// so one slot's H2D, another's kernel and a third's D2H overlap, both copy engines busy.
// register_memory pins the caller's range (cudaHostRegister); add_key uploads into a
// device key table.
#pragma once

#include <cstddef>
#include <memory>

#include "engine/backend.h"

namespace sectorcrypt::engine {

struct CudaBackendConfig {
  int ordinal = 0;
  std::size_t slot_count = 0;
  std::size_t slot_bytes = 0;
  std::size_t key_capacity = 0;
  GpuAes aes = GpuAes::constant_time;
  const char* gpu_name = "";
};

// RETURN VALUE: ok and *out; resource_exhausted / unavailable naming the CUDA call that
// failed. On error nothing is left allocated on the device.
Status make_cuda_backend(const CudaBackendConfig& config, std::unique_ptr<Backend>* out);

}  // namespace sectorcrypt::engine
