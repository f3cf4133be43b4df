// Fault injection for tests: named points on the data path where a failure can be
// forced. Compiled in only when SECTORCRYPT_FAULT_INJECTION is defined (the
// `sectorcrypt_fi` library the fault tests, fuzzers and sectorcrypt_stress link); in the
// shipped `sectorcrypt` SECTORCRYPT_FAULT(p) is the constant false and no hook exists.
#pragma once

namespace sectorcrypt::engine::fault {

enum class Point : unsigned {
  cuda_copy,     // a cudaMemcpyAsync (H2D or D2H) fails (CUDA backend)
  cuda_launch,   // cuda::launch_xts fails (CUDA backend)
  kernel_error,  // the kernel reports an error for the batch (CPU: before it runs;
                 // CUDA: at the event sync)
  crypt_throw,   // the crypt worker throws before it runs the backend
  fallback_error,  // the CPU re-run of a failed batch (cpu_fallback) fails as well
  count,
};

const char* point_name(Point p);  // "cuda_copy", ...

#ifdef SECTORCRYPT_FAULT_INJECTION
// Returns true to make the point fail. Called on engine threads, concurrently; must not
// block on the engine. nullptr: no faults.
using Hook = bool (*)(Point p, void* context);
void set_hook(Hook hook, void* context);
bool fire(Point p);
#define SECTORCRYPT_FAULT(point) (::sectorcrypt::engine::fault::fire(point))
#else
#define SECTORCRYPT_FAULT(point) false
#endif

}  // namespace sectorcrypt::engine::fault
