// The CUDA backend (built only with SECTORCRYPT_HAVE_CUDA): per slot, a device buffer,
// device IV/key-index arrays, a stream and an event, all made at create. crypt() gathers
// the batch into the slot's pinned memory and enqueues H2D -> cuda::launch_xts -> D2H on
// the slot's stream (several slots in flight at once); finish() waits on the slot's event
// (blocking sync, no spinning) and scatters. add_key uploads into a device key table.
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
