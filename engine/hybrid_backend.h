// The hybrid backend: the CPU workers and the GPU take batches from the same admission.
// Each batch goes to one side, chosen by HybridSplit (engine/hybrid_split.h); the bytes
// come out identical either way, since both run the same XTS. Keys reach both sides;
// registered memory and device-resident buffers are the GPU side's. A batch the GPU
// fails is re-run on the CPU by the engine's fallback (hybrid always has one).
#pragma once

#include <cstdint>
#include <memory>

#include "engine/backend.h"

namespace sectorcrypt::engine {

// gpu_percent -1: adaptive; 0..100: forced share (EngineConfig::hybrid_gpu_percent).
std::unique_ptr<Backend> make_hybrid_backend(std::unique_ptr<Backend> gpu,
                                             std::unique_ptr<Backend> cpu, int gpu_percent,
                                             uint64_t min_gpu_bytes);

}  // namespace sectorcrypt::engine
