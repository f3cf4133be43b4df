// The ways a program hands the engine its bytes. On a GPU each is a different data path,
// and `bench` and `compare` show them as separate rows so a figure says which it means:
//   copy        ordinary (pageable) memory: staged through the engine's pinned slots
//   registered  memory given to register_memory(): the GPU DMAs from and to it directly
//   slots       zero-copy slots: the caller fills a pinned slot, the GPU DMAs from it
//   device      device-resident: the bytes are already on the GPU, only the kernel runs
// On the CPU backend all four crypt the same way; only copy is shown there. The hybrid
// backend (CPU workers and the GPU together) is shown with copy and registered memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace sectorcrypt::cli {

enum class DataPath { copy, registered, slots, device };

// "cpu", "cuda", "cuda-registered", "cuda-slots", "cuda-device" (and "gpu" for "cuda"),
// "hybrid", "hybrid-registered".
// Fails with a message naming the accepted names.
void parse_engine_subject(const std::string& name, BackendKind* backend, DataPath* path);
// The GPU rows shown by default when a GPU is usable.
std::vector<std::string> gpu_subject_names();

// `depth` request buffers of up to `batch_max` bytes in the memory the path needs
// (registered with the engine, slots lent by it, or device memory), given back by the
// destructor. Fails (throws the CLI's Error) when the memory cannot be had.
class PathBuffers {
 public:
  PathBuffers(Engine& engine, DataPath path, std::size_t batch_max, std::size_t depth);
  ~PathBuffers();
  PathBuffers(const PathBuffers&) = delete;
  PathBuffers& operator=(const PathBuffers&) = delete;

  // Request i over buffer i, in place, with post_completion and user_context = i.
  Status submit(KeyHandle key, Direction dir, const SectorFormat& format, std::size_t i,
                std::size_t bytes);
  // One request over buffer 0, waited for.
  void run_one(KeyHandle key, Direction dir, const SectorFormat& format, std::size_t bytes);
  // host `in` -> host `out` through the path (for the byte-for-byte check): copied into
  // buffer 0, run_one, copied back.
  void crypt_once(KeyHandle key, Direction dir, const SectorFormat& format, uint64_t start,
                  const uint8_t* in, uint8_t* out, std::size_t bytes);

 private:
  Status submit_at(KeyHandle key, Direction dir, const SectorFormat& format, uint64_t start,
                   std::size_t i, std::size_t bytes);
  Engine& engine_;
  DataPath path_;
  std::size_t batch_max_, depth_;
  uint8_t* memory_ = nullptr;   // copy/registered: host; device: device memory
  std::vector<SlotHandle> slots_;
  std::vector<iovec> iov_;
};

}  // namespace sectorcrypt::cli
