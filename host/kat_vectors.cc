#include "host/kat_vectors.h"

#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>

namespace sectorcrypt::kat {
namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

[[noreturn]] void fail(const std::string& path, int line, const std::string& what) {
  throw std::runtime_error(path + ":" + std::to_string(line) + ": " + what);
}

std::vector<uint8_t> parse_hex(const std::string& hex, const std::string& path, int line) {
  if (hex.size() % 2 != 0) fail(path, line, "odd number of hex digits");
  std::vector<uint8_t> out(hex.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i) {
    auto nibble = [&](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      fail(path, line, std::string("not a hex digit: '") + c + "'");
    };
    out[i] = static_cast<uint8_t>(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
  }
  return out;
}

uint64_t parse_u64(const std::string& s, const std::string& path, int line) {
  std::size_t used = 0;
  unsigned long long v = 0;
  try {
    v = std::stoull(s, &used, 10);
  } catch (const std::exception&) {
    fail(path, line, "not a decimal number: " + s);
  }
  if (used != s.size()) fail(path, line, "not a decimal number: " + s);
  return v;
}

// Blocks of `field = value` lines separated by blank lines or [SECTION] headers.
struct Record {
  std::map<std::string, std::string> fields;
  std::string section;
  int line = 0;
};

std::vector<Record> read_records(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
  std::vector<Record> records;
  Record current;
  std::string section;
  std::string raw;
  int line = 0;
  auto flush = [&] {
    if (!current.fields.empty()) records.push_back(current);
    current = Record{};
  };
  while (std::getline(in, raw)) {
    ++line;
    const std::string s = trim(raw);
    if (s.empty()) { flush(); continue; }
    if (s[0] == '#') continue;
    if (s.front() == '[' && s.back() == ']') { flush(); section = s.substr(1, s.size() - 2); continue; }
    const auto eq = s.find('=');
    if (eq == std::string::npos) fail(path, line, "expected 'field = value'");
    if (current.fields.empty()) { current.line = line; current.section = section; }
    current.fields[trim(s.substr(0, eq))] = trim(s.substr(eq + 1));
  }
  flush();
  return records;
}

const std::string& field(const Record& r, const char* name, const std::string& path) {
  auto it = r.fields.find(name);
  if (it == r.fields.end()) fail(path, r.line, std::string("missing field ") + name);
  return it->second;
}

std::string basename(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

void check_lengths(const KnownAnswer& v, const std::string& path, int line) {
  const std::size_t bytes = (v.length_bits + 7) / 8;
  if (v.plaintext.size() != bytes || v.ciphertext.size() != bytes) {
    fail(path, line, "plaintext/ciphertext length does not match the data unit length");
  }
}

}  // namespace

std::vector<KnownAnswer> read_ieee1619(const std::string& path) {
  std::vector<KnownAnswer> out;
  for (const Record& r : read_records(path)) {
    KnownAnswer v;
    v.name = "ieee1619 vector " + field(r, "vector", path);
    v.key = parse_hex(field(r, "key", path), path, r.line);
    const auto tweak = parse_hex(field(r, "tweak", path), path, r.line);
    if (tweak.size() != 16) fail(path, r.line, "tweak is not 16 bytes");
    std::memcpy(v.iv, tweak.data(), 16);
    v.length_bits = 8 * parse_u64(field(r, "len_bytes", path), path, r.line);
    v.plaintext = parse_hex(field(r, "pt", path), path, r.line);
    v.ciphertext = parse_hex(field(r, "ct", path), path, r.line);
    v.direction = Direction::encrypt;
    // The sector field must agree with the tweak: plain64 of the sector number.
    uint8_t from_sector[16];
    make_iv(IvMode::plain64, parse_u64(field(r, "sector", path), path, r.line), from_sector);
    if (std::memcmp(from_sector, v.iv, 16) != 0) fail(path, r.line, "sector and tweak disagree");
    check_lengths(v, path, r.line);
    out.push_back(std::move(v));
  }
  return out;
}

std::vector<KnownAnswer> read_cavp_rsp(const std::string& path) {
  std::vector<KnownAnswer> out;
  for (const Record& r : read_records(path)) {
    KnownAnswer v;
    v.name = basename(path) + " " + r.section + " #" + field(r, "COUNT", path);
    if (r.section == "ENCRYPT") {
      v.direction = Direction::encrypt;
    } else if (r.section == "DECRYPT") {
      v.direction = Direction::decrypt;
    } else {
      fail(path, r.line, "record outside [ENCRYPT]/[DECRYPT]");
    }
    v.key = parse_hex(field(r, "Key", path), path, r.line);
    if (r.fields.count("i")) {
      const auto tweak = parse_hex(r.fields.at("i"), path, r.line);
      if (tweak.size() != 16) fail(path, r.line, "i is not 16 bytes");
      std::memcpy(v.iv, tweak.data(), 16);
    } else {
      make_iv(IvMode::plain64, parse_u64(field(r, "DataUnitSeqNumber", path), path, r.line),
              v.iv);
    }
    v.length_bits = parse_u64(field(r, "DataUnitLen", path), path, r.line);
    v.plaintext = parse_hex(field(r, "PT", path), path, r.line);
    v.ciphertext = parse_hex(field(r, "CT", path), path, r.line);
    check_lengths(v, path, r.line);
    out.push_back(std::move(v));
  }
  return out;
}

std::string default_vector_dir() { return SECTORCRYPT_VECTOR_DIR; }

}  // namespace sectorcrypt::kat

#include "kernels/xts_key.h"
#include "kernels/xts_reference.h"

namespace sectorcrypt::kat {

bool check_with_reference(const KnownAnswer& v, std::string* why) {
  XtsKey key;
  KeyOptions options;
  options.allow_equal_halves = true;  // IEEE vector 1 has Key1 == Key2
  if (Status s = XtsKey::create(v.key.data(), v.key.size(), &key, options); !s) {
    *why = std::string("key: ") + s.message();
    return false;
  }
  const std::size_t len = v.plaintext.size();
  std::vector<uint8_t> out(len);
  struct Way { Direction dir; const std::vector<uint8_t>* from; const std::vector<uint8_t>* to; };
  for (const Way& way : {Way{Direction::encrypt, &v.plaintext, &v.ciphertext},
                         Way{Direction::decrypt, &v.ciphertext, &v.plaintext}}) {
    if (Status s = ref::xts_crypt_unit(key, way.dir, v.iv, way.from->data(), out.data(), len);
        !s) {
      *why = s.message();
      return false;
    }
    if (out != *way.to) {
      *why = way.dir == Direction::encrypt ? "encryption differs from the ciphertext"
                                           : "decryption differs from the plaintext";
      return false;
    }
  }
  return true;
}

}  // namespace sectorcrypt::kat
