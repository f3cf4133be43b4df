#include "kernels/sector_format.h"

#include <cstdint>

namespace sectorcrypt {

const char* iv_mode_name(IvMode mode) {
  switch (mode) {
    case IvMode::plain64: return "plain64";
    case IvMode::plain: return "plain";
    case IvMode::plain64be: return "plain64be";
  }
  return "unknown";
}

Status validate_format(const SectorFormat& format) {
  switch (format.sector_size) {
    case 512: case 1024: case 2048: case 4096: break;
    default:
      return Status::error(Errc::invalid_format,
                           "sector size %u is not supported; use 512, 1024, 2048 or 4096",
                           format.sector_size);
  }
  switch (format.iv_mode) {
    case IvMode::plain64: case IvMode::plain: case IvMode::plain64be: break;
    default:
      return Status::error(Errc::invalid_format, "IV generator %d is not one of "
                           "plain64, plain, plain64be", static_cast<int>(format.iv_mode));
  }
  return Status();
}

Status iv_sequence_for(const SectorFormat& format, uint64_t start_sector, IvSequence* out) {
  const uint64_t units = format.sector_size / 512;
  if (!format.iv_large_sectors) {
    *out = IvSequence{start_sector, units};
    return Status();
  }
  if (start_sector % units != 0) {
    return Status::error(Errc::invalid_buffer,
                         "start sector %llu is not aligned to the %u-byte sector size "
                         "(iv_large_sectors needs a multiple of %llu)",
                         static_cast<unsigned long long>(start_sector), format.sector_size,
                         static_cast<unsigned long long>(units));
  }
  *out = IvSequence{start_sector / units, 1};
  return Status();
}

Status validate_sector_run(const SectorFormat& format, uint64_t start_sector, const void* in,
                           void* out, std::size_t bytes, IvSequence* ivs) {
  if (Status s = validate_format(format); !s) return s;
  if (in == nullptr || out == nullptr) {
    return Status::error(Errc::invalid_buffer, "%s buffer is null",
                         in == nullptr ? "input" : "output");
  }
  if (bytes == 0 || bytes % format.sector_size != 0) {
    return Status::error(Errc::invalid_length,
                         "length %zu bytes is not a positive whole number of %u-byte sectors",
                         bytes, format.sector_size);
  }
  const auto a = reinterpret_cast<std::uintptr_t>(in);
  const auto b = reinterpret_cast<std::uintptr_t>(out);
  if (a != b && a < b + bytes && b < a + bytes) {
    return Status::error(Errc::invalid_buffer,
                         "input and output overlap without being the same buffer "
                         "(in place needs out == in)");
  }
  return iv_sequence_for(format, start_sector, ivs);
}

}  // namespace sectorcrypt
