#include "engine/fault_injection.h"

#include <atomic>

namespace sectorcrypt::engine::fault {

const char* point_name(Point p) {
  switch (p) {
    case Point::cuda_copy: return "cuda_copy";
    case Point::cuda_launch: return "cuda_launch";
    case Point::kernel_error: return "kernel_error";
    case Point::crypt_throw: return "crypt_throw";
    case Point::fallback_error: return "fallback_error";
    case Point::count: break;
  }
  return "?";
}

#ifdef SECTORCRYPT_FAULT_INJECTION
namespace {
// The pair is published hook-last, so a firing thread that sees the hook sees its context.
std::atomic<void*> g_context{nullptr};
std::atomic<Hook> g_hook{nullptr};
}  // namespace

void set_hook(Hook hook, void* context) {
  g_hook.store(nullptr);
  g_context.store(context);
  g_hook.store(hook);
}

bool fire(Point p) {
  const Hook h = g_hook.load();
  return h != nullptr && h(p, g_context.load());
}
#endif

}  // namespace sectorcrypt::engine::fault
