// nbdkit-sectorcrypt-filter: the nbdkit callbacks. Reads decrypt and writes encrypt
// through the engine (encrypted_volume.h); the key comes from a raw key file (plain mode)
// or from a LUKS2 header through libcryptsetup (host/luks2), opened at the first
// connection because an in-image header is only reachable through the plugin.
#include <nbdkit-filter.h>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "engine/engine.h"
#include "host/luks2/luks2_volume.h"
#include "host/nbdkit/encrypted_volume.h"
#include "host/nbdkit/filter_options.h"
#include "host/nbdkit/luks2_header_copy.h"
#include "kernels/secure_zero.h"
#include "kernels/xts_key.h"

namespace sectorcrypt::nbd {
namespace {

class NextDevice : public LowerDevice {
 public:
  explicit NextDevice(nbdkit_next* next) : next_(next) {}
  int pread(void* buf, uint32_t count, uint64_t offset, int* err) override {
    return next_->pread(next_, buf, count, offset, 0, err);
  }
  int pwrite(const void* buf, uint32_t count, uint64_t offset, bool fua, int* err) override {
    return next_->pwrite(next_, buf, count, offset, fua ? NBDKIT_FLAG_FUA : 0, err);
  }

 private:
  nbdkit_next* next_;
};

struct FilterState {
  FilterOptions options;
  luks2::VolumeKey secret;  // plain: the XTS key; LUKS2: the passphrase (until opened)
  std::unique_ptr<Engine> engine;
  KeyHandle key;
  std::mutex open_mutex;                    // the first connection opens the LUKS2 header
  std::unique_ptr<EncryptedVolume> volume;  // set once, then read without the mutex
  std::atomic<bool> volume_ready{false};
  uint64_t luks2_data_bytes = 0;            // the LUKS2 segment's length
};

FilterState* state = nullptr;

void sc_load() { state = new FilterState; }

void sc_unload() {
  if (state == nullptr) return;
  state->volume.reset();
  if (state->engine) {
    if (state->key.valid()) (void)state->engine->remove_key(state->key);  // zeroes the entry
    state->engine.reset();
  }
  state->secret.reset();
  delete state;
  state = nullptr;
}

int sc_config(nbdkit_next_config* next, nbdkit_backend* nxdata, const char* key,
              const char* value) {
  if (std::strcmp(key, "passphrase") == 0) {
    char* password = nullptr;
    if (nbdkit_read_password(value, &password) == -1) return -1;
    const std::size_t len = std::strlen(password);
    Status s = state->secret.allocate(len + 1);
    if (s) {
      std::memcpy(state->secret.data(), password, len);
      state->secret.set_size(len);
    }
    secure_zero(password, len);
    std::free(password);
    if (!s) {
      nbdkit_error("sectorcrypt: no memory for the passphrase: %s", s.message());
      return -1;
    }
    state->options.has_passphrase = true;
    return 0;
  }
  std::string error;
  switch (apply_option(key, value, &state->options, &error)) {
    case 1: return 0;
    case 0: return next(nxdata, key, value);
    default:
      nbdkit_error("sectorcrypt: %s", error.c_str());
      return -1;
  }
}

// Plain mode: the raw key, checked now so that a bad key stops nbdkit before it serves.
int read_key_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    nbdkit_error("sectorcrypt: cannot open key-file '%s': %s", path.c_str(), std::strerror(errno));
    return -1;
  }
  if (Status s = state->secret.allocate(65); !s) {
    ::close(fd);
    nbdkit_error("sectorcrypt: no memory for the key: %s", s.message());
    return -1;
  }
  std::size_t got = 0;
  for (;;) {
    ssize_t n = ::read(fd, state->secret.data() + got, 65 - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      nbdkit_error("sectorcrypt: reading key-file '%s' failed: %s", path.c_str(), std::strerror(errno));
      ::close(fd);
      return -1;
    }
    if (n == 0 || (got += static_cast<std::size_t>(n)) == 65) break;
  }
  ::close(fd);
  if (got != 32 && got != 64) {
    nbdkit_error("sectorcrypt: key-file '%s' holds %s%zu bytes; XTS-AES needs a raw key of 32 "
                 "(AES-128) or 64 (AES-256)", path.c_str(), got == 65 ? "more than " : "",
                 got == 65 ? std::size_t{64} : got);
    return -1;
  }
  state->secret.set_size(got);
  XtsKey check;
  if (Status s = XtsKey::create(state->secret.data(), got, &check); !s) {
    nbdkit_error("sectorcrypt: key-file '%s': %s", path.c_str(), s.message());
    return -1;
  }
  return 0;
}

int sc_config_complete(nbdkit_next_config_complete* next, nbdkit_backend* nxdata) {
  std::string error;
  if (!check_options(state->options, &error)) {
    nbdkit_error("sectorcrypt: %s", error.c_str());
    return -1;
  }
  if (state->options.mode() == KeyMode::plain && read_key_file(state->options.key_file) < 0) {
    return -1;
  }
  // A detached header that is not there is a start-up error, not a connection error.
  const std::string& header = state->options.header;
  if (!header.empty() && ::access(header.c_str(), R_OK) != 0) {
    nbdkit_error("sectorcrypt: cannot open header '%s': %s", header.c_str(), std::strerror(errno));
    return -1;
  }
  return next(nxdata);
}

// The engine's threads are started after nbdkit has forked into the background.
int sc_after_fork(nbdkit_backend* nxdata) {
  Status s = Engine::create(state->options.engine, &state->engine);
  if (!s) {
    nbdkit_error("sectorcrypt: cannot start the engine: %s", s.message());
    return -1;
  }
  nbdkit_debug("sectorcrypt: engine %s, memory %s", state->engine->backend_detail(),
               state->engine->memory_detail());
  if (state->options.mode() == KeyMode::plain) {
    s = state->engine->add_key(state->secret.data(), state->secret.size(), KeyOptions{}, &state->key);
    state->secret.reset();
    if (!s) {
      nbdkit_error("sectorcrypt: key-file '%s': %s", state->options.key_file.c_str(), s.message());
      return -1;
    }
    VolumeLayout layout;
    layout.format = state->options.plain_format();
    layout.data_offset = state->options.offset_sectors.value_or(0) * 512;
    layout.iv_base = state->options.skip_sectors.value_or(0);
    state->volume = std::make_unique<EncryptedVolume>(*state->engine, state->key, layout);
    state->volume_ready.store(true, std::memory_order_release);
  }
  (void)nxdata;
  return 0;
}

int open_luks2(nbdkit_next* next) {
  const int64_t image_bytes = next->get_size(next);
  if (image_bytes < 0) return -1;
  NextDevice lower(next);
  HeaderCopy copy;
  luks2::HeaderLocation where;
  where.image_bytes = static_cast<uint64_t>(image_bytes);
  if (state->options.header.empty()) {
    if (Status s = copy.copy_from(lower, where.image_bytes.value()); !s) {
      nbdkit_error("sectorcrypt: %s", s.message());
      return -1;
    }
    where.header = copy.path();
  } else {
    where.header = state->options.header;
  }
  luks2::Volume v;
  Status s = luks2::open_volume(where, reinterpret_cast<const char*>(state->secret.data()),
                                state->secret.size(), state->options.keyslot.value_or(-1), &v);
  if (!s) {
    nbdkit_error("sectorcrypt: %s", s.message());
    return -1;
  }
  s = state->engine->add_key(v.key.data(), v.key.size(), KeyOptions{}, &state->key);
  v.key.reset();
  if (!s) {
    nbdkit_error("sectorcrypt: the LUKS2 volume key: %s", s.message());
    return -1;
  }
  state->secret.reset();  // the passphrase is not needed again
  VolumeLayout layout;
  layout.format = v.layout.format;
  layout.data_offset = v.layout.data_offset_bytes;
  layout.iv_base = v.layout.iv_offset;
  state->luks2_data_bytes = v.layout.data_bytes;
  nbdkit_debug("sectorcrypt: LUKS2 keyslot %d, %s, %u-byte sectors, data at %llu, %llu bytes",
               v.keyslot, v.layout.cipher.c_str(), layout.format.sector_size,
               static_cast<unsigned long long>(layout.data_offset),
               static_cast<unsigned long long>(v.layout.data_bytes));
  state->volume = std::make_unique<EncryptedVolume>(*state->engine, state->key, layout);
  state->volume_ready.store(true, std::memory_order_release);
  return 0;
}

int sc_prepare(nbdkit_next* next, void*, int) {
  if (state->volume_ready.load(std::memory_order_acquire)) return 0;
  std::lock_guard<std::mutex> guard(state->open_mutex);
  if (state->volume_ready.load(std::memory_order_acquire)) return 0;
  return open_luks2(next);
}

EncryptedVolume& volume() { return *state->volume; }

int64_t sc_get_size(nbdkit_next* next, void*) {
  const VolumeLayout& layout = volume().layout();
  // Asked on every connection: nbdkit checks each request to the plugin against the
  // size the plugin reported on that connection.
  const int64_t below = next->get_size(next);
  if (below < 0) return -1;
  if (state->options.mode() == KeyMode::luks2) {
    if (static_cast<uint64_t>(below) < layout.data_offset + state->luks2_data_bytes) {
      nbdkit_error("sectorcrypt: the plugin's %lld bytes end before the LUKS2 data segment does",
                   static_cast<long long>(below));
      return -1;
    }
    return static_cast<int64_t>(state->luks2_data_bytes);
  }
  if (static_cast<uint64_t>(below) < layout.data_offset) {
    nbdkit_error("sectorcrypt: the plugin's %lld bytes end before offset=%llu sectors",
                 static_cast<long long>(below),
                 static_cast<unsigned long long>(layout.data_offset / 512));
    return -1;
  }
  const uint64_t bytes = static_cast<uint64_t>(below) - layout.data_offset;
  return static_cast<int64_t>(bytes / layout.format.sector_size * layout.format.sector_size);
}

int sc_block_size(nbdkit_next*, void*, uint32_t* minimum, uint32_t* preferred,
                  uint32_t* maximum) {
  // Any byte range works (edge sectors are read-modify-written); whole sectors avoid that.
  *minimum = 1;
  *preferred = std::max<uint32_t>(4096, volume().layout().format.sector_size);
  *maximum = 0xffffffff;
  return 0;
}

int sc_can_zero(nbdkit_next* next, void*) {
  const int writable = next->can_write(next);
  if (writable < 0) return -1;
  return writable ? NBDKIT_ZERO_NATIVE : NBDKIT_ZERO_NONE;
}

int sc_can_fast_zero(nbdkit_next*, void*) { return 0; }

// dm-crypt's rule: discards, and the extents that show where they went, leak which blocks
// are in use, so both are off unless asked for.
int sc_can_trim(nbdkit_next* next, void*) {
  return state->options.allow_discards ? next->can_trim(next) : 0;
}
int sc_can_extents(nbdkit_next* next, void*) {
  return state->options.allow_discards ? next->can_extents(next) : 0;
}

// A cache request names plaintext offsets; the plugin would warm the wrong bytes.
int sc_can_cache(nbdkit_next*, void*) { return NBDKIT_CACHE_NONE; }

int fail(const Status& s) {
  nbdkit_error("sectorcrypt: %s", s.message());
  return -1;
}

int sc_pread(nbdkit_next* next, void*, void* buf, uint32_t count, uint64_t offset, uint32_t,
             int* err) {
  NextDevice lower(next);
  Status s = volume().read(lower, buf, count, offset, err);
  return s ? 0 : fail(s);
}

int sc_pwrite(nbdkit_next* next, void*, const void* buf, uint32_t count, uint64_t offset,
              uint32_t flags, int* err) {
  NextDevice lower(next);
  Status s = volume().write(lower, buf, count, offset, (flags & NBDKIT_FLAG_FUA) != 0, err);
  return s ? 0 : fail(s);
}

int sc_zero(nbdkit_next* next, void*, uint32_t count, uint64_t offset, uint32_t flags, int* err) {
  if (flags & NBDKIT_FLAG_FAST_ZERO) {
    *err = ENOTSUP;  // encrypted zeros are written like data, never fast
    return -1;
  }
  NextDevice lower(next);
  Status s = volume().write_zeroes(lower, count, offset, (flags & NBDKIT_FLAG_FUA) != 0, err);
  return s ? 0 : fail(s);
}

// Only whole sectors are discarded: a partial one would destroy the rest of its data.
int sc_trim(nbdkit_next* next, void*, uint32_t count, uint64_t offset, uint32_t flags,
            int* err) {
  const VolumeLayout& layout = volume().layout();
  const uint64_t ss = layout.format.sector_size;
  const uint64_t begin = (offset + ss - 1) / ss * ss;
  const uint64_t end = (offset + count) / ss * ss;
  if (end <= begin) return 0;
  return next->trim(next, static_cast<uint32_t>(end - begin), layout.data_offset + begin, flags,
                    err);
}

// Holes below pass through; "reads as zero" does not (zero ciphertext is not zero data).
int sc_extents(nbdkit_next* next, void*, uint32_t count, uint64_t offset, uint32_t flags,
               struct nbdkit_extents* extents, int* err) {
  const VolumeLayout& layout = volume().layout();
  const int64_t size = sc_get_size(next, nullptr);
  if (size < 0) return -1;
  struct nbdkit_extents* below =
      nbdkit_extents_new(layout.data_offset + offset, layout.data_offset + size);
  if (below == nullptr) return -1;
  if (next->extents(next, count, layout.data_offset + offset, flags, below, err) < 0) {
    nbdkit_extents_free(below);
    return -1;
  }
  for (std::size_t i = 0; i < nbdkit_extents_count(below); ++i) {
    const struct nbdkit_extent e = nbdkit_get_extent(below, i);
    if (nbdkit_add_extent(extents, e.offset - layout.data_offset, e.length,
                          e.type & NBDKIT_EXTENT_HOLE) < 0) {
      nbdkit_extents_free(below);
      *err = errno;
      return -1;
    }
  }
  nbdkit_extents_free(below);
  return 0;
}

struct nbdkit_filter make_filter() {
  struct nbdkit_filter f = {};
  f.name = "sectorcrypt";
  f.longname = "sectorcrypt AES-XTS filter (dm-crypt plain and LUKS2 compatible)";
  f.load = sc_load;
  f.unload = sc_unload;
  f.config = sc_config;
  f.config_complete = sc_config_complete;
  f.config_help = kFilterHelp;
  f.after_fork = sc_after_fork;
  f.prepare = sc_prepare;
  f.get_size = sc_get_size;
  f.block_size = sc_block_size;
  f.can_zero = sc_can_zero;
  f.can_fast_zero = sc_can_fast_zero;
  f.can_trim = sc_can_trim;
  f.can_extents = sc_can_extents;
  f.can_cache = sc_can_cache;
  f.pread = sc_pread;
  f.pwrite = sc_pwrite;
  f.zero = sc_zero;
  f.trim = sc_trim;
  f.extents = sc_extents;
  return f;
}

struct nbdkit_filter filter = make_filter();

}  // namespace
}  // namespace sectorcrypt::nbd

using sectorcrypt::nbd::filter;
NBDKIT_REGISTER_FILTER(filter)
