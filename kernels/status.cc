#include "kernels/status.h"

#include <cstdarg>
#include <cstdio>

namespace sectorcrypt {

const char* errc_name(Errc code) {
  switch (code) {
    case Errc::ok: return "ok";
    case Errc::invalid_key: return "invalid_key";
    case Errc::invalid_format: return "invalid_format";
    case Errc::invalid_length: return "invalid_length";
    case Errc::invalid_buffer: return "invalid_buffer";
    case Errc::would_block: return "would_block";
    case Errc::shut_down: return "shut_down";
    case Errc::backend_failure: return "backend_failure";
    case Errc::unavailable: return "unavailable";
    case Errc::resource_exhausted: return "resource_exhausted";
    case Errc::internal: return "internal";
  }
  return "unknown";
}

Status Status::error(Errc code, const char* fmt, ...) {
  Status s;
  s.code_ = code;
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(s.message_, kMessageCapacity, fmt, args);
  va_end(args);
  return s;
}

}  // namespace sectorcrypt
