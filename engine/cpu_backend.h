// The CPU backend: cpu::xts_crypt_sectors / xts_crypt_gathered straight on the caller's
// memory where a part is contiguous (no staging copy), through the slot only for sectors
// that straddle segment boundaries. Parallelism comes from several batches in flight in
// the crypt stage, one worker thread each.
#pragma once

#include <memory>

#include "engine/backend.h"

namespace sectorcrypt::engine {

// fallback: the instance that re-runs failed batches (cpu_fallback); only its fault
// point differs.
std::unique_ptr<Backend> make_cpu_backend(unsigned threads, bool fallback = false);

}  // namespace sectorcrypt::engine
