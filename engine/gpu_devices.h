// GPU discovery: which CUDA devices this process can use, or why none is usable.
// Works in every build: without CUDA support it reports that plainly.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace sectorcrypt {

struct GpuInfo {
  int ordinal = -1;
  std::string name;
  std::size_t memory_bytes = 0;
  int compute_major = 0;
  int compute_minor = 0;
  std::string pci_bus_id;  // "0000:3b:00.0"
  int numa_node = -1;      // the NUMA node it hangs off; -1: unknown or a single node
};

struct GpuInventory {
  std::vector<GpuInfo> gpus;  // usable devices (runnable with this build's code)
  std::string why_none;       // set when gpus is empty, e.g. "CUDA driver not found
                              // (cudaGetDeviceCount: ...)", "built without CUDA"
  bool usable() const { return !gpus.empty(); }
};

// Queries the CUDA runtime once per call; cheap enough for create-time use.
GpuInventory discover_gpus();

}  // namespace sectorcrypt
