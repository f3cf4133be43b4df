// The Highway AES-XTS batch kernels: one BatchFn per compiled Highway target, chosen at
// run time by Highway's dynamic dispatch. xts_cpu.cc picks between these and the
// VAES-AVX2 path; tests call crypt_batch() under hwy::SetSupportedTargetsForTest to run
// each target in turn.
#pragma once

#include <cstdint>

#include "kernels/cpu/xts_batch_args.h"

namespace sectorcrypt::cpu::highway {

// Runs a validated batch on the target Highway dispatches to now: the best one this CPU
// supports, or the one forced with hwy::SetSupportedTargetsForTest.
void crypt_batch(const BatchArgs& args);

// The target crypt_batch() runs on now, as an HWY_* bit (hwy::TargetName names it).
int64_t current_target();

// The kernel of current_target(), for callers that choose once and keep the pointer.
BatchFn current_batch_fn();

// Every HWY_* target compiled into this module, the EMU128 fallback included (bits as in
// HWY_TARGETS), so tests can iterate exactly what dispatch may pick.
int64_t compiled_targets();

}  // namespace sectorcrypt::cpu::highway
