// What the pipeline asks of a backend. crypt() runs in the parallel stage (several
// batches at once, one per call); finish() runs in the serial complete stage, in
// admission order. A backend sets every part's status; it never allocates after create.
#pragma once

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

  // Parallel stage: get the batch's input, run (or start) the cipher.
  virtual void crypt(Batch& b) = 0;
  // Serial stage: wait for what crypt() started, put results where they belong.
  virtual void finish(Batch& b) = 0;
  // True when crypt() only starts the work and finish() waits for it (a GPU stream):
  // the pipeline then waits in a thread of its own so workers keep launching.
  virtual bool asynchronous() const { return false; }
};

}  // namespace sectorcrypt::engine
