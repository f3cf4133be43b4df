// What the pipeline asks of a backend. crypt() runs in the parallel stage (several
// batches at once, one per call); finish() runs in the complete stage: for ordered
// batches one at a time in admission order, for batches of whole channel requests on
// the worker that crypted them, concurrently with other finishes (batch.h, `ordered`).
// A backend sets every part's status; it never allocates after create.
#pragma once

#include <cstddef>
#include <cstdint>

#include "engine/batch.h"
#include "engine/engine.h"
#include "kernels/xts_key.h"

namespace sectorcrypt::engine {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual BackendKind kind() const = 0;
  virtual const char* detail() const = 0;

  // Key table changes (off the data path; the entry is not in use).
  virtual Status publish_key(uint32_t index, const XtsKey& key) = 0;
  virtual void clear_key(uint32_t index) = 0;

  // Registered memory (off the data path): make [ptr, ptr + len) DMA-able, and undo it.
  // The CPU needs nothing.
  virtual Status register_host(void* /*ptr*/, std::size_t /*len*/) { return Status(); }
  virtual void unregister_host(void* /*ptr*/) {}
  // True when one register_host makes the range DMA-able for every device of this kind
  // in the process (CUDA: cudaHostRegisterPortable; registering it again fails), so a
  // set of such devices registers it once (engine/multi_device_backend.h).
  virtual bool registers_process_wide() const { return false; }
  // Device-resident requests: ok when [ptr, ptr + len) is memory this backend's kernels
  // can read and write.
  virtual Status check_device_buffer(const void* /*ptr*/, std::size_t /*len*/) const {
    return Status::error(Errc::invalid_buffer,
                         "a device-resident request (memory = device) needs the cuda "
                         "backend; this engine runs on the CPU");
  }

  // Parallel stage: get the batch's input, run the cipher, put the results where they
  // belong. A GPU backend waits here for its slot's stream, so the worker that admitted
  // a batch also stages it in and out: the copies run on as many threads as batches.
  virtual void crypt(Batch& b) = 0;
  // Complete stage, before the batch's completions (ordered batches: in admission
  // order). Nothing, for the backends today; the CPU fallback reruns through it.
  virtual void finish(Batch& b) = 0;
};

}  // namespace sectorcrypt::engine
