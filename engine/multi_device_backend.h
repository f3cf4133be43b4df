// The multi-device backend: one Backend over N device backends (several GPUs, or the
// same GPU opened more than once to test this path). Each device owns its own slots:
// engine slot i belongs to device i % N, where it is that device's slot i / N, so a batch
// (one slot) always runs on its slot's device and finish() goes to the same one. Each
// device backend is made with multi_device_slot_count() slots of its own (streams,
// device buffers), and a key table of its own.
//
// Keys reach every device: publish_key publishes on 0..N-1 and, when device k fails,
// clears the key from 0..k-1 before it returns the error (no key half published).
// Registered memory reaches every device the same way (undone on failure), except where
// the devices say a registration is process-wide (Backend::registers_process_wide: CUDA's
// cudaHostRegisterPortable pins a range for every GPU at once, and a second registration
// of the range fails): then device 0 registers it once for all of them.
// A device-resident buffer is accepted only when every device accepts it: a request's
// batches go to whichever devices own their slots, and a GPU's kernels reach only its
// own memory (no peer access is set up). Two different GPUs therefore refuse device-
// resident requests; the same GPU opened twice accepts them.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "engine/backend.h"

namespace sectorcrypt::engine {

// How many of `slot_count` engine slots device `device` of `devices` owns.
inline std::size_t multi_device_slot_count(std::size_t slot_count, std::size_t devices,
                                           std::size_t device) {
  return device < slot_count ? (slot_count - device + devices - 1) / devices : 0;
}

// devices: at least one (with one it only adds the slot-to-device step; the engine
// wraps only when there are two or more). Each device must own
// multi_device_slot_count(slot_count, devices.size(), d) slots.
std::unique_ptr<Backend> make_multi_device_backend(std::vector<std::unique_ptr<Backend>> devices);

}  // namespace sectorcrypt::engine
