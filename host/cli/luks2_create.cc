// LUKS2 header creation, and keyslot removal, through libcryptsetup.
#include "host/cli/luks2_create.h"

#include <fcntl.h>
#include <libcryptsetup.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "host/cli/cli_common.h"

namespace sectorcrypt::cli {
namespace {

class Device {
 public:
  ~Device() {
    if (cd_ != nullptr) crypt_free(cd_);
  }
  crypt_device** out() { return &cd_; }
  crypt_device* get() const { return cd_; }

 private:
  crypt_device* cd_ = nullptr;
};

}  // namespace

void create_detached_header(const NewHeader& h) {
  // libcryptsetup writes into an existing file; whatever of it the header does not use
  // stays zeros.
  const int fd = ::open(h.path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) fail("cannot create the header file '{}': {}", h.path, std::strerror(errno));
  const bool sized = ::ftruncate(fd, static_cast<off_t>(h.file_bytes)) == 0;
  ::close(fd);
  if (!sized) fail("cannot size the header file '{}': {}", h.path, std::strerror(errno));

  Device dev;
  int r = crypt_init_data_device(dev.out(), h.path.c_str(), h.data_device.c_str());
  if (r < 0) fail("libcryptsetup cannot open '{}' with data device '{}': {}", h.path, h.data_device, std::strerror(-r));
  crypt_pbkdf_type pbkdf{};
  pbkdf.type = h.pbkdf.c_str();
  pbkdf.hash = "sha256";
  if (h.pbkdf_iterations > 0) {
    pbkdf.iterations = h.pbkdf_iterations;
    pbkdf.flags = CRYPT_PBKDF_NO_BENCHMARK;
    if (h.pbkdf != "pbkdf2") {
      pbkdf.max_memory_kb = 32;
      pbkdf.parallel_threads = 1;
    }
  } else {
    pbkdf.time_ms = 2000;
    if (h.pbkdf != "pbkdf2") {
      pbkdf.max_memory_kb = 1024 * 1024;
      pbkdf.parallel_threads = 4;
    }
  }
  crypt_params_luks2 params{};
  params.pbkdf = &pbkdf;
  params.sector_size = h.sector_size;
  params.data_device = h.data_device.c_str();
  if ((r = crypt_set_data_offset(dev.get(), h.data_offset_bytes / 512)) < 0) {
    fail("libcryptsetup refused data offset {} for '{}': {}", h.data_offset_bytes, h.path,
         std::strerror(-r));
  }
  // The metadata areas as cryptsetup's: 16 KiB each.
  if (h.keyslots_bytes != 0 && (r = crypt_set_metadata_size(dev.get(), 16384, h.keyslots_bytes)) < 0) {
    fail("libcryptsetup refused a keyslots area of {} bytes for '{}': {}", h.keyslots_bytes,
         h.path, std::strerror(-r));
  }
  r = crypt_format(dev.get(), CRYPT_LUKS2, "aes", h.cipher_mode.c_str(),
                   h.uuid.empty() ? nullptr : h.uuid.c_str(),
                   reinterpret_cast<const char*>(h.volume_key), h.volume_key_bytes, &params);
  if (r < 0) fail("libcryptsetup cannot format the LUKS2 header '{}': {}", h.path, std::strerror(-r));
  if (!h.label.empty() && (r = crypt_set_label(dev.get(), h.label.c_str(), nullptr)) < 0) {
    fail("libcryptsetup cannot set the label of '{}': {}", h.path, std::strerror(-r));
  }
  r = crypt_keyslot_add_by_volume_key(dev.get(), CRYPT_ANY_SLOT,
                                      reinterpret_cast<const char*>(h.volume_key),
                                      h.volume_key_bytes, h.passphrase.data(), h.passphrase.size());
  if (r < 0) fail("libcryptsetup cannot add a keyslot to '{}': {}", h.path, std::strerror(-r));
  const int sync_fd = ::open(h.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (sync_fd < 0 || ::fsync(sync_fd) != 0) {
    const int e = errno;
    if (sync_fd >= 0) ::close(sync_fd);
    fail("cannot flush the header file '{}': {}", h.path, std::strerror(e));
  }
  ::close(sync_fd);
}

bool has_keyslots(const std::string& path) {
  Device dev;
  if (crypt_init(dev.out(), path.c_str()) < 0 || crypt_load(dev.get(), CRYPT_LUKS2, nullptr) < 0) {
    return true;
  }
  for (int slot = 0; slot < crypt_keyslot_max(CRYPT_LUKS2); ++slot) {
    if (crypt_keyslot_status(dev.get(), slot) >= CRYPT_SLOT_ACTIVE) return true;
  }
  return false;
}

void remove_all_keyslots(const std::string& path) {
  Device dev;
  int r = crypt_init(dev.out(), path.c_str());
  if (r < 0) fail("libcryptsetup cannot open '{}': {}", path, std::strerror(-r));
  if ((r = crypt_load(dev.get(), CRYPT_LUKS2, nullptr)) < 0) {
    fail("libcryptsetup cannot load the LUKS2 header '{}': {}", path, std::strerror(-r));
  }
  const int slots = crypt_keyslot_max(CRYPT_LUKS2);
  for (int slot = 0; slot < slots; ++slot) {
    const crypt_keyslot_info info = crypt_keyslot_status(dev.get(), slot);
    if (info != CRYPT_SLOT_ACTIVE && info != CRYPT_SLOT_ACTIVE_LAST && info != CRYPT_SLOT_UNBOUND) continue;
    if ((r = crypt_keyslot_destroy(dev.get(), slot)) < 0) {
      fail("libcryptsetup cannot remove keyslot {} of '{}': {}", slot, path, std::strerror(-r));
    }
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    const int e = errno;
    if (fd >= 0) ::close(fd);
    fail("cannot flush the header file '{}': {}", path, std::strerror(e));
  }
  ::close(fd);
}

}  // namespace sectorcrypt::cli
