#include "host/nbdkit/filter_options.h"

#include <cerrno>
#include <cstdlib>

namespace sectorcrypt::nbd {
namespace {

bool parse_u64(const std::string& v, uint64_t* out) {
  if (v.empty() || v[0] == '-' || v[0] == '+') return false;
  errno = 0;
  char* end = nullptr;
  unsigned long long n = std::strtoull(v.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *out = n;
  return true;
}

bool parse_bool(const std::string& v, bool* out) {
  if (v == "1" || v == "true" || v == "yes" || v == "on") return *out = true, true;
  if (v == "0" || v == "false" || v == "no" || v == "off") return *out = false, true;
  return false;
}

int refuse(std::string* error, std::string why) {
  *error = std::move(why);
  return -1;
}

}  // namespace

const char kFilterHelp[] =
    "key-file=FILE            plain mode: raw XTS key, 32 or 64 bytes\n"
    "cipher=aes-xts-plain64|aes-xts-plain|aes-xts-plain64be   plain mode (default plain64)\n"
    "sector-size=512|1024|2048|4096                            plain mode (default 512)\n"
    "iv-large-sectors=true    plain mode: IVs count sector-size units, not 512 bytes\n"
    "offset=N                 plain mode: 512-byte sectors before the data\n"
    "skip=N                   plain mode: IV sector number of the first data sector\n"
    "passphrase=SECRET        LUKS2 mode: the passphrase (+FILE, -FD, - as nbdkit secrets)\n"
    "header=FILE              LUKS2 mode: detached header (default: in the image)\n"
    "keyslot=N                LUKS2 mode: only this keyslot\n"
    "backend=auto|cpu|cuda    where the engine crypts (default auto)\n"
    "threads=N slots=N slot-bytes=N idle-spin-us=N   engine sizing\n"
    "inline-max-bytes=N       crypt requests up to N bytes on the nbdkit thread (0: never)\n"
    "allow-discards=true      pass trim and extents through (they show which blocks are used)";

SectorFormat FilterOptions::plain_format() const {
  SectorFormat f;
  f.sector_size = sector_size.value_or(512);
  f.iv_mode = iv_mode.value_or(IvMode::plain64);
  f.iv_large_sectors = iv_large_sectors.value_or(false);
  return f;
}

int apply_option(const std::string& key, const std::string& value, FilterOptions* o,
                 std::string* error) {
  uint64_t n = 0;
  bool b = false;
  if (key == "key-file") {
    if (value.empty()) return refuse(error, "key-file= needs a file name");
    o->key_file = value;
  } else if (key == "cipher") {
    if (value == "aes-xts-plain64") o->iv_mode = IvMode::plain64;
    else if (value == "aes-xts-plain") o->iv_mode = IvMode::plain;
    else if (value == "aes-xts-plain64be") o->iv_mode = IvMode::plain64be;
    else return refuse(error, "cipher=" + value + " is not supported; use aes-xts-plain64, "
                              "aes-xts-plain or aes-xts-plain64be");
  } else if (key == "sector-size") {
    if (!parse_u64(value, &n) || (n != 512 && n != 1024 && n != 2048 && n != 4096)) {
      return refuse(error, "sector-size=" + value + " is not 512, 1024, 2048 or 4096");
    }
    o->sector_size = static_cast<uint32_t>(n);
  } else if (key == "iv-large-sectors") {
    if (!parse_bool(value, &b)) return refuse(error, "iv-large-sectors=" + value + " is not a boolean");
    o->iv_large_sectors = b;
  } else if (key == "offset" || key == "skip") {
    if (!parse_u64(value, &n) || n > (UINT64_MAX >> 9)) {
      return refuse(error, key + "=" + value + " is not a count of 512-byte sectors");
    }
    (key == "offset" ? o->offset_sectors : o->skip_sectors) = n;
  } else if (key == "header") {
    if (value.empty()) return refuse(error, "header= needs a file name");
    o->header = value;
  } else if (key == "keyslot") {
    if (!parse_u64(value, &n) || n > 31) return refuse(error, "keyslot=" + value + " is not 0..31");
    o->keyslot = static_cast<int>(n);
  } else if (key == "backend") {
    if (value == "auto") o->engine.backend = BackendKind::automatic;
    else if (value == "cpu") o->engine.backend = BackendKind::cpu;
    else if (value == "cuda") o->engine.backend = BackendKind::cuda;
    else return refuse(error, "backend=" + value + " is not auto, cpu or cuda");
  } else if (key == "threads") {
    if (!parse_u64(value, &n) || n > 1024) return refuse(error, "threads=" + value + " is not 0..1024");
    o->engine.threads = static_cast<unsigned>(n);
  } else if (key == "slots") {
    if (!parse_u64(value, &n) || n < 1 || n > 4096) return refuse(error, "slots=" + value + " is not 1..4096");
    o->engine.slot_count = n;
  } else if (key == "slot-bytes") {
    if (!parse_u64(value, &n) || n < 4096 || n % 4096 != 0 || n > (1ull << 30)) {
      return refuse(error, "slot-bytes=" + value + " is not a multiple of 4096 up to 1 GiB");
    }
    o->engine.slot_bytes = n;
  } else if (key == "idle-spin-us") {
    if (!parse_u64(value, &n) || n > 1000000) return refuse(error, "idle-spin-us=" + value + " is not 0..1000000");
    o->engine.idle_spin_us = static_cast<uint32_t>(n);
  } else if (key == "inline-max-bytes") {
    if (!parse_u64(value, &n) || n % 512 != 0 || n > (16u << 20)) {
      return refuse(error, "inline-max-bytes=" + value + " is not a multiple of 512 up to 16 MiB");
    }
    o->engine.inline_max_bytes = n;
  } else if (key == "allow-discards") {
    if (!parse_bool(value, &b)) return refuse(error, "allow-discards=" + value + " is not a boolean");
    o->allow_discards = b;
  } else {
    return 0;
  }
  return 1;
}

bool check_options(const FilterOptions& o, std::string* error) {
  const bool plain = !o.key_file.empty();
  if (plain == o.has_passphrase) {
    *error = plain ? "key-file= (plain mode) and passphrase= (LUKS2 mode) exclude each other"
                   : "name the key: key-file=FILE (plain mode) or passphrase=SECRET (LUKS2 mode)";
    return false;
  }
  if (o.has_passphrase) {
    const char* from_header = o.iv_mode ? "cipher=" : o.sector_size ? "sector-size="
                              : o.iv_large_sectors ? "iv-large-sectors=" : o.offset_sectors ? "offset="
                              : o.skip_sectors ? "skip=" : nullptr;
    if (from_header != nullptr) {
      *error = std::string(from_header) + " is a plain-mode option; in LUKS2 mode it comes from the header";
      return false;
    }
    return true;
  }
  if (!o.header.empty() || o.keyslot) {
    *error = std::string(o.keyslot ? "keyslot=" : "header=") + " is a LUKS2 option; plain mode takes key-file=";
    return false;
  }
  const SectorFormat f = o.plain_format();
  if (f.iv_large_sectors && (o.skip_sectors.value_or(0) * 512) % f.sector_size != 0) {
    *error = "skip=" + std::to_string(*o.skip_sectors) + " is not a whole number of " +
             std::to_string(f.sector_size) + "-byte sectors, which iv-large-sectors needs";
    return false;
  }
  return true;
}

}  // namespace sectorcrypt::nbd
