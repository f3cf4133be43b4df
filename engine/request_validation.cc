#include "engine/request_validation.h"

#include <cstdint>

#include "kernels/sector_format.h"

namespace sectorcrypt::engine {
namespace {

Status validate_segments(const iovec* v, std::size_t n, const char* side, uint64_t* total) {
  if (n == 0) return Status::error(Errc::invalid_length, "%s has no segments", side);
  if (n > kMaxSegments) {
    return Status::error(Errc::invalid_length, "%s has %zu segments; at most %zu (kMaxSegments)",
                         side, n, kMaxSegments);
  }
  if (v == nullptr) return Status::error(Errc::invalid_buffer, "%s segment list is null", side);
  uint64_t sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (v[i].iov_base == nullptr) {
      return Status::error(Errc::invalid_buffer, "%s segment %zu has a null base", side, i);
    }
    if (v[i].iov_len == 0) {
      return Status::error(Errc::invalid_length, "%s segment %zu is empty", side, i);
    }
    sum += v[i].iov_len;
  }
  *total = sum;
  return Status();
}

bool overlaps(const iovec& a, const iovec& b) {
  const auto a0 = reinterpret_cast<std::uintptr_t>(a.iov_base);
  const auto b0 = reinterpret_cast<std::uintptr_t>(b.iov_base);
  return a0 < b0 + b.iov_len && b0 < a0 + a.iov_len;
}

}  // namespace

Status validate_callback(CompletionCallback callback, const ForwardedCallback& forward) {
  if (callback != nullptr && forward.call != nullptr) {
    return Status::error(Errc::invalid_buffer,
                         "a request sets both callback and forward.call; set one");
  }
  return Status();
}

Status validate_request(const Request& req) {
  if (Status s = validate_callback(req.callback, req.forward); !s) return s;
  if (Status s = validate_format(req.format); !s) return s;
  uint64_t src_total = 0, dst_total = 0;
  if (Status s = validate_segments(req.src, req.src_count, "source", &src_total); !s) return s;
  if (src_total % req.format.sector_size != 0) {
    return Status::error(Errc::invalid_length,
                         "source holds %llu bytes: not a whole number of %u-byte sectors",
                         static_cast<unsigned long long>(src_total), req.format.sector_size);
  }
  if (req.dst_count != 0 || req.dst != nullptr) {
    if (Status s = validate_segments(req.dst, req.dst_count, "destination", &dst_total); !s) {
      return s;
    }
    if (dst_total != src_total) {
      return Status::error(Errc::invalid_length, "destination holds %llu bytes, source %llu",
                           static_cast<unsigned long long>(dst_total),
                           static_cast<unsigned long long>(src_total));
    }
    for (std::size_t i = 0; i < req.dst_count; ++i) {
      for (std::size_t j = 0; j < req.src_count; ++j) {
        if (overlaps(req.dst[i], req.src[j])) {
          return Status::error(Errc::invalid_buffer,
                               "destination segment %zu overlaps source segment %zu "
                               "(for in place, pass no destination)", i, j);
        }
      }
      for (std::size_t j = 0; j < i; ++j) {
        if (overlaps(req.dst[i], req.dst[j])) {
          return Status::error(Errc::invalid_buffer,
                               "destination segments %zu and %zu overlap", j, i);
        }
      }
    }
  } else {
    for (std::size_t i = 0; i < req.src_count; ++i) {
      for (std::size_t j = 0; j < i; ++j) {
        if (overlaps(req.src[i], req.src[j])) {
          return Status::error(Errc::invalid_buffer,
                               "in place: source segments %zu and %zu overlap", j, i);
        }
      }
    }
  }
  IvSequence seq{};
  return iv_sequence_for(req.format, req.start_sector, &seq);
}

Status validate_device_segments(const Backend& backend, const Request& req) {
  if (req.memory == MemoryKind::host) return Status();
  if (req.memory != MemoryKind::device) {
    return Status::error(Errc::invalid_buffer, "unknown memory kind %d",
                         static_cast<int>(req.memory));
  }
  const auto check = [&](const iovec* v, std::size_t n, const char* side) {
    for (std::size_t i = 0; i < n; ++i) {
      if (reinterpret_cast<std::uintptr_t>(v[i].iov_base) % 16 != 0) {
        return Status::error(Errc::invalid_buffer,
                             "device-resident %s segment %zu is not 16-byte aligned", side, i);
      }
      if (v[i].iov_len % req.format.sector_size != 0) {
        return Status::error(Errc::invalid_length,
                             "device-resident %s segment %zu holds %zu bytes: not whole "
                             "%u-byte sectors", side, i, v[i].iov_len, req.format.sector_size);
      }
      if (Status s = backend.check_device_buffer(v[i].iov_base, v[i].iov_len); !s) return s;
    }
    return Status();
  };
  if (Status s = check(req.src, req.src_count, "source"); !s) return s;
  return check(req.dst, req.dst_count, "destination");
}

}  // namespace sectorcrypt::engine
