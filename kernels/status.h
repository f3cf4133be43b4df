// The error vocabulary every layer of sectorcrypt shares. It sits in kernels/ because that
// is the bottom layer; nothing here allocates, so a Status can be made on the data path.
#pragma once

#include <cstddef>

namespace sectorcrypt {

enum class Errc {
  ok = 0,
  invalid_key,          // wrong key length, equal XTS halves, unknown key handle
  invalid_format,       // sector size or IV generator not supported
  invalid_length,       // not a whole number of sectors, data unit < 16 bytes, size mismatch
  invalid_buffer,       // null or partly overlapping buffers, misaligned sector number
  would_block,          // no free slot right now: "full", never "invalid"
  shut_down,            // submitted after shutdown, or cancelled by it
  backend_failure,      // a backend (GPU, kernel) failed; the request's output is not valid
  unavailable,          // a requested backend or resource does not exist on this machine
  resource_exhausted,   // create could not get memory, locked memory, streams...
  internal,             // a broken invariant; a bug
};

// Name of the error class, e.g. "invalid_key".
const char* errc_name(Errc code);

// An error code with a human-readable message held inline (no heap), e.g.
// "key is 48 bytes; XTS-AES needs 32 (AES-128) or 64 (AES-256)". Messages never contain
// key bytes.
class Status {
 public:
  // ok. Only the first message byte is set: an ok Status is made on every fast path,
  // and zero-filling the whole buffer there showed up in one-sector batch timings.
  Status() { message_[0] = '\0'; }
  // printf-style message.
  [[gnu::format(printf, 2, 3)]] static Status error(Errc code, const char* fmt, ...);

  bool ok() const { return code_ == Errc::ok; }
  explicit operator bool() const { return ok(); }
  Errc code() const { return code_; }
  const char* message() const { return ok() ? "ok" : message_; }

 private:
  static constexpr std::size_t kMessageCapacity = 192;
  Errc code_ = Errc::ok;
  char message_[kMessageCapacity];
};

}  // namespace sectorcrypt
