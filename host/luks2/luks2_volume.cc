#include "host/luks2/luks2_volume.h"

#include <fcntl.h>
#include <libcryptsetup.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

namespace sectorcrypt::luks2 {
namespace {

// libcryptsetup reports through a log callback; its last error line goes into our message
// instead of onto the program's stderr.
struct CryptLog {
  std::string last_error;
};

void capture_log(int level, const char* msg, void* usrptr) {
  if (level != CRYPT_LOG_ERROR || msg == nullptr) return;
  std::string line = msg;
  while (!line.empty() && (line.back() == '\n' || line.back() == ' ')) line.pop_back();
  static_cast<CryptLog*>(usrptr)->last_error = line;
}

class CryptDevice {
 public:
  ~CryptDevice() {
    if (cd_ != nullptr) crypt_free(cd_);
  }
  crypt_device* get() const { return cd_; }

  // crypt_init(_data_device) + crypt_load of any LUKS version; LUKS1 is refused by name.
  Status open(const HeaderLocation& where) {
    if (where.image_bytes && where.header.empty()) {
      return Status::error(Errc::invalid_buffer, "an image given by size needs a header file");
    }
    if (!where.image_bytes) {
      if (Status s = check_readable(where.image, "image"); !s) return s;
    }
    if (!where.header.empty()) {
      if (Status s = check_readable(where.header, "header"); !s) return s;
    }
    const char* header = where.header.empty() ? where.image.c_str() : where.header.c_str();
    int r = where.header.empty() || where.image_bytes
                ? crypt_init(&cd_, header)
                : crypt_init_data_device(&cd_, header, where.image.c_str());
    if (r < 0) {
      return Status::error(Errc::unavailable, "cannot open '%s': %s", header, std::strerror(-r));
    }
    crypt_set_log_callback(cd_, capture_log, &log_);
    r = crypt_load(cd_, CRYPT_LUKS, nullptr);
    if (r < 0) {
      return Status::error(Errc::invalid_format, "'%s' has no LUKS header%s", header,
                           r == -EINVAL ? "" : " that libcryptsetup can read");
    }
    const char* type = crypt_get_type(cd_);
    if (type == nullptr || std::strcmp(type, CRYPT_LUKS2) != 0) {
      return Status::error(Errc::invalid_format,
                           "'%s' is a %s header; sectorcrypt reads LUKS2 only (convert with "
                           "`cryptsetup convert --type luks2`)",
                           header, type != nullptr ? type : "unknown");
    }
    return Status();
  }

  const std::string& last_error() const { return log_.last_error; }

 private:
  static Status check_readable(const std::string& path, const char* what) {
    if (path.empty()) return Status::error(Errc::unavailable, "no %s file named", what);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return Status::error(Errc::unavailable, "cannot open %s '%s': %s", what, path.c_str(),
                           std::strerror(errno));
    }
    ::close(fd);
    return Status();
  }

  crypt_device* cd_ = nullptr;
  CryptLog log_;
};

uint64_t json_number(const nlohmann::json& v) {
  // LUKS2 writes 64-bit values as decimal strings.
  if (v.is_string()) return std::stoull(v.get<std::string>());
  return v.get<uint64_t>();
}

Status image_size(const std::string& image, uint64_t* out) {
  int fd = ::open(image.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Status::error(Errc::unavailable, "cannot open image '%s': %s", image.c_str(),
                         std::strerror(errno));
  }
  off_t end = ::lseek(fd, 0, SEEK_END);
  int err = errno;
  ::close(fd);
  if (end < 0) {
    return Status::error(Errc::unavailable, "cannot size image '%s': %s", image.c_str(),
                         std::strerror(err));
  }
  *out = static_cast<uint64_t>(end);
  return Status();
}

// The data segment, checked against what sectorcrypt can crypt.
Status read_layout(const CryptDevice& dev, const HeaderLocation& where, SegmentLayout* out) {
  crypt_device* cd = dev.get();
  crypt_params_reencrypt params{};
  crypt_reencrypt_info reenc = crypt_reencrypt_status(cd, &params);
  if (reenc != CRYPT_REENCRYPT_NONE) {
    return Status::error(Errc::invalid_format,
                         "the LUKS2 header records a reencryption in progress; finish it "
                         "with `cryptsetup reencrypt --resume-only` first");
  }
  const char* cipher = crypt_get_cipher(cd);
  const char* mode = crypt_get_cipher_mode(cd);
  std::string name = std::string(cipher ? cipher : "?") + "-" + (mode ? mode : "?");
  SectorFormat format;
  if (name == "aes-xts-plain64") {
    format.iv_mode = IvMode::plain64;
  } else if (name == "aes-xts-plain") {
    format.iv_mode = IvMode::plain;
  } else if (name == "aes-xts-plain64be") {
    format.iv_mode = IvMode::plain64be;
  } else {
    return Status::error(Errc::invalid_format,
                         "the LUKS2 data segment uses cipher %s; sectorcrypt crypts "
                         "aes-xts-plain64, aes-xts-plain and aes-xts-plain64be only",
                         name.c_str());
  }
  crypt_params_integrity integrity{};
  if (crypt_get_integrity_info(cd, &integrity) == 0 && integrity.integrity != nullptr &&
      integrity.integrity[0] != '\0') {
    return Status::error(Errc::invalid_format,
                         "the LUKS2 data segment has integrity protection (%s), which "
                         "sectorcrypt does not implement",
                         integrity.integrity);
  }
  int sector_size = crypt_get_sector_size(cd);
  format.sector_size = static_cast<uint32_t>(sector_size);
  if (Status s = validate_format(format); !s) {
    return Status::error(Errc::invalid_format, "the LUKS2 data segment: %s", s.message());
  }
  int key_size = crypt_get_volume_key_size(cd);
  if (key_size != 32 && key_size != 64) {
    return Status::error(Errc::invalid_format,
                         "the LUKS2 volume key is %d bytes; XTS-AES needs 32 or 64", key_size);
  }

  SegmentLayout layout;
  layout.cipher = name;
  layout.format = format;
  layout.data_offset_bytes = crypt_get_data_offset(cd) * 512;
  layout.iv_offset = crypt_get_iv_offset(cd);
  layout.volume_key_bytes = static_cast<unsigned>(key_size);

  // The segment's length is only in the JSON metadata: "dynamic" or a byte count.
  const char* json_text = nullptr;
  if (crypt_dump_json(cd, &json_text, 0) < 0 || json_text == nullptr) {
    return Status::error(Errc::invalid_format, "cannot read the LUKS2 JSON metadata");
  }
  try {
    const auto j = nlohmann::json::parse(json_text);
    const auto& segments = j.at("segments");
    if (segments.size() != 1) {
      return Status::error(Errc::invalid_format,
                           "the LUKS2 header has %zu data segments; sectorcrypt reads one",
                           segments.size());
    }
    const auto& seg = segments.begin().value();
    if (seg.at("type").get<std::string>() != "crypt") {
      return Status::error(Errc::invalid_format, "the LUKS2 data segment is of type '%s', not crypt",
                           seg.at("type").get<std::string>().c_str());
    }
    uint64_t total = 0;
    if (where.image_bytes) {
      total = *where.image_bytes;
    } else if (Status s = image_size(where.image, &total); !s) {
      return s;
    }
    if (total < layout.data_offset_bytes) {
      return Status::error(Errc::invalid_format,
                           "the image is %llu bytes, shorter than the LUKS2 data offset %llu", static_cast<unsigned long long>(total),
                           static_cast<unsigned long long>(layout.data_offset_bytes));
    }
    const auto& size = seg.at("size");
    if (size.is_string() && size.get<std::string>() == "dynamic") {
      layout.data_bytes = total - layout.data_offset_bytes;
      layout.data_bytes -= layout.data_bytes % format.sector_size;
    } else {
      layout.data_bytes = json_number(size);
      if (layout.data_bytes > total - layout.data_offset_bytes) {
        return Status::error(Errc::invalid_format,
                             "the LUKS2 data segment is %llu bytes but the image holds only "
                             "%llu after the data offset",
                             static_cast<unsigned long long>(layout.data_bytes),
                             static_cast<unsigned long long>(total - layout.data_offset_bytes));
      }
    }
  } catch (const std::exception& e) {
    return Status::error(Errc::invalid_format, "malformed LUKS2 JSON metadata: %s", e.what());
  }
  *out = layout;
  return Status();
}

}  // namespace

Status VolumeKey::allocate(std::size_t bytes) {
  reset();
  PinnedMemory memory;
  if (Status s = PinnedMemory::allocate(bytes, PinnedMemory::Options{}, &memory); !s) return s;
  memory_ = std::move(memory);
  size_ = 0;
  return Status();
}

Status open_volume(const HeaderLocation& where, const char* passphrase,
                   std::size_t passphrase_len, int keyslot, Volume* out) {
  CryptDevice dev;
  if (Status s = dev.open(where); !s) return s;
  SegmentLayout layout;
  if (Status s = read_layout(dev, where, &layout); !s) return s;

  if (keyslot != CRYPT_ANY_SLOT) {
    crypt_keyslot_info info = crypt_keyslot_status(dev.get(), keyslot);
    if (info != CRYPT_SLOT_ACTIVE && info != CRYPT_SLOT_ACTIVE_LAST) {
      return Status::error(Errc::invalid_key, "keyslot %d is not in use in the LUKS2 header",
                           keyslot);
    }
  }
  VolumeKey key;
  if (Status s = key.allocate(layout.volume_key_bytes); !s) return s;
  std::size_t key_len = layout.volume_key_bytes;
  int r = crypt_volume_key_get(dev.get(), keyslot, reinterpret_cast<char*>(key.data()), &key_len,
                               passphrase, passphrase_len);
  if (r < 0) {
    if (r == -EPERM) {
      if (keyslot == CRYPT_ANY_SLOT) {
        return Status::error(Errc::invalid_key, "wrong passphrase: no LUKS2 keyslot opens with it");
      }
      return Status::error(Errc::invalid_key, "wrong passphrase for LUKS2 keyslot %d", keyslot);
    }
    return Status::error(Errc::invalid_key, "cannot unlock the LUKS2 volume key: %s",
                         dev.last_error().empty() ? std::strerror(-r) : dev.last_error().c_str());
  }
  if (key_len != layout.volume_key_bytes) {
    return Status::error(Errc::invalid_format, "the LUKS2 volume key came back as %zu bytes, not %u",
                         key_len, layout.volume_key_bytes);
  }
  key.set_size(key_len);
  out->layout = layout;
  out->key = std::move(key);
  out->keyslot = r;
  return Status();
}

Status read_header(const HeaderLocation& where, HeaderSummary* out) {
  CryptDevice dev;
  if (Status s = dev.open(where); !s) return s;
  HeaderSummary summary;
  if (Status s = read_layout(dev, where, &summary.layout); !s) return s;
  const char* uuid = crypt_get_uuid(dev.get());
  const char* label = crypt_get_label(dev.get());
  summary.uuid = uuid ? uuid : "";
  summary.label = label ? label : "";
  summary.detached = !where.header.empty();
  const char* json_text = nullptr;
  if (crypt_dump_json(dev.get(), &json_text, 0) < 0 || json_text == nullptr) {
    return Status::error(Errc::invalid_format, "cannot read the LUKS2 JSON metadata");
  }
  try {
    const auto j = nlohmann::json::parse(json_text);
    for (const auto& [index, slot] : j.at("keyslots").items()) {
      KeyslotSummary k;
      k.index = std::stoi(index);
      k.key_bytes = slot.value("key_size", 0u);
      if (slot.contains("kdf")) k.kdf = slot.at("kdf").value("type", "");
      summary.keyslots.push_back(k);
    }
  } catch (const std::exception& e) {
    return Status::error(Errc::invalid_format, "malformed LUKS2 JSON metadata: %s", e.what());
  }
  *out = std::move(summary);
  return Status();
}

}  // namespace sectorcrypt::luks2
