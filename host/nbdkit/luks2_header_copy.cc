#include "host/nbdkit/luks2_header_copy.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

namespace sectorcrypt::nbd {
namespace {

constexpr uint8_t kMagic[6] = {'L', 'U', 'K', 'S', 0xba, 0xbe};
constexpr std::size_t kBinaryHeader = 4096;
// The largest LUKS2 metadata area is 4 MiB per copy; keyslot areas are at most 128 MiB.
constexpr uint64_t kMostHeaderBytes = 8ull << 20;
constexpr uint64_t kMostDataOffset = 256ull << 20;

uint64_t be64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

Status read_below(LowerDevice& lower, void* buf, uint64_t bytes, uint64_t offset) {
  int err = 0;
  if (lower.pread(buf, static_cast<uint32_t>(bytes), offset, &err) < 0) {
    return Status::error(Errc::backend_failure, "reading the LUKS2 header (%llu bytes at %llu) "
                         "failed: %s", static_cast<unsigned long long>(bytes),
                         static_cast<unsigned long long>(offset), std::strerror(err));
  }
  return Status();
}

}  // namespace

HeaderCopy::~HeaderCopy() {
  if (fd_ >= 0) ::close(fd_);
}

Status HeaderCopy::copy_from(LowerDevice& lower, uint64_t image_bytes) {
  if (image_bytes < kBinaryHeader) {
    return Status::error(Errc::invalid_format, "the image is %llu bytes: too small for a LUKS "
                         "header", static_cast<unsigned long long>(image_bytes));
  }
  std::vector<uint8_t> binary(kBinaryHeader);
  if (Status s = read_below(lower, binary.data(), binary.size(), 0); !s) return s;
  if (std::memcmp(binary.data(), kMagic, sizeof kMagic) != 0) {
    return Status::error(Errc::invalid_format, "the image has no LUKS header (a detached one is "
                         "named with header=FILE)");
  }
  const unsigned version = (binary[6] << 8) | binary[7];
  if (version != 2) {
    return Status::error(Errc::invalid_format, "the image has a LUKS%u header; sectorcrypt reads "
                         "LUKS2 only (convert with `cryptsetup convert --type luks2`)", version);
  }
  const uint64_t header_bytes = be64(binary.data() + 8);
  if (header_bytes <= kBinaryHeader || header_bytes > kMostHeaderBytes ||
      header_bytes > image_bytes) {
    return Status::error(Errc::invalid_format, "the LUKS2 header size %llu is not valid",
                         static_cast<unsigned long long>(header_bytes));
  }
  std::vector<uint8_t> json_area(header_bytes - kBinaryHeader);
  if (Status s = read_below(lower, json_area.data(), json_area.size(), kBinaryHeader); !s) {
    return s;
  }
  uint64_t data_offset = 0;
  try {
    const char* text = reinterpret_cast<const char*>(json_area.data());
    const auto j = nlohmann::json::parse(text, text + strnlen(text, json_area.size()));
    data_offset = UINT64_MAX;
    for (const auto& [name, seg] : j.at("segments").items()) {
      data_offset = std::min<uint64_t>(data_offset, std::stoull(seg.at("offset").get<std::string>()));
    }
  } catch (const std::exception& e) {
    return Status::error(Errc::invalid_format, "the LUKS2 JSON metadata cannot be read: %s",
                         e.what());
  }
  if (data_offset == 0 || data_offset == UINT64_MAX) {
    return Status::error(Errc::invalid_format, "the LUKS2 header in the image puts the data at "
                         "offset 0: the header is detached; name it with header=FILE");
  }
  if (data_offset > image_bytes || data_offset > kMostDataOffset) {
    return Status::error(Errc::invalid_format, "the LUKS2 data offset %llu lies beyond the "
                         "%llu-byte image", static_cast<unsigned long long>(data_offset),
                         static_cast<unsigned long long>(image_bytes));
  }

  fd_ = memfd_create("sectorcrypt-luks2-header", MFD_CLOEXEC);
  if (fd_ < 0) {
    return Status::error(Errc::backend_failure, "memfd_create failed: %s", std::strerror(errno));
  }
  path_ = "/proc/self/fd/" + std::to_string(fd_);
  constexpr uint64_t kChunk = 1u << 20;
  std::vector<uint8_t> chunk(kChunk);
  for (uint64_t at = 0; at < data_offset; at += kChunk) {
    const uint64_t n = std::min(kChunk, data_offset - at);
    if (Status s = read_below(lower, chunk.data(), n, at); !s) return s;
    if (::pwrite(fd_, chunk.data(), n, static_cast<off_t>(at)) != static_cast<ssize_t>(n)) {
      return Status::error(Errc::backend_failure, "copying the LUKS2 header to memory failed: %s",
                           std::strerror(errno));
    }
  }
  return Status();
}

}  // namespace sectorcrypt::nbd
