#include "engine/tbb_workers.h"

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/info.h>

#include <algorithm>
#include <memory>
#include <mutex>

namespace sectorcrypt::engine {
namespace {

std::mutex g_mu;
unsigned g_workers = 0;
std::unique_ptr<tbb::global_control> g_control;

void apply_locked() {
  g_control.reset();  // the minimum over live controls wins: drop ours before raising
  if (g_workers == 0) return;
  const auto hw = static_cast<unsigned>(std::max(1, tbb::info::default_concurrency()));
  // +1: the limit counts the external (engine) threads' share as one.
  const unsigned want = std::max(hw, g_workers + 1);
  g_control = std::make_unique<tbb::global_control>(
      tbb::global_control::max_allowed_parallelism, want);
}

}  // namespace

TbbWorkerReservation::TbbWorkerReservation(unsigned workers) : workers_(workers) {
  std::lock_guard lock(g_mu);
  g_workers += workers_;
  apply_locked();
}

TbbWorkerReservation::~TbbWorkerReservation() {
  if (workers_ == 0) return;
  std::lock_guard lock(g_mu);
  g_workers -= workers_;
  apply_locked();
}

}  // namespace sectorcrypt::engine
