// Everything about a request that can be checked before anything is taken: shared by
// Engine::submit/try_submit and Channel::submit, so "invalid" is decided the same way on
// every path (and never confused with "full").
#pragma once

#include "engine/backend.h"
#include "engine/engine.h"

namespace sectorcrypt::engine {

inline Status shut_down_status() {
  return Status::error(Errc::shut_down, "the engine is shut down");
}

// At most one of callback and forward.call.
Status validate_callback(CompletionCallback callback, const ForwardedCallback& forward);

// Format, segment lists (count, null bases, empty segments, whole sectors, equal totals,
// no overlap between destination and source or within either), the IV of the start.
Status validate_request(const Request& req);

// Device-resident requests, beyond validate_request: the backend must run kernels on
// every segment, each 16-byte aligned (the kernels' loads) and of whole sectors (a
// sector never spans two device allocations).
Status validate_device_segments(const Backend& backend, const Request& req);

}  // namespace sectorcrypt::engine
