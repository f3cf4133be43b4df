// Readers for the AES-XTS known-answer files in tests/data/vectors: the IEEE 1619-2007
// Annex B transcription and the NIST CAVP XTSGen .rsp files (tweak given either as a
// decimal DataUnitSeqNumber or as a 128-bit hex `i`). Host-side code: it allocates.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/sector_format.h"

namespace sectorcrypt::kat {

struct KnownAnswer {
  std::string name;             // e.g. "ieee1619 vector 10", "XTSGenAES128.rsp ENCRYPT #7"
  std::vector<uint8_t> key;     // Key1 || Key2
  uint8_t iv[16];               // tweak input before encryption with Key2
  uint64_t length_bits;         // data unit length; may be not a whole number of bytes
  std::vector<uint8_t> plaintext;
  std::vector<uint8_t> ciphertext;
  Direction direction;          // CAVP section; IEEE vectors are run both ways anyway
  bool byte_aligned() const { return length_bits % 8 == 0; }
};

// Parse a file; throws std::runtime_error naming the file and line on malformed input.
std::vector<KnownAnswer> read_ieee1619(const std::string& path);
std::vector<KnownAnswer> read_cavp_rsp(const std::string& path);

// The data directory compiled into this build (tests/data/vectors of the source tree).
std::string default_vector_dir();

}  // namespace sectorcrypt::kat

namespace sectorcrypt::kat {

// Runs a byte-aligned known answer through the reference both ways (plaintext to
// ciphertext and back). Returns true when both match; otherwise *why says which failed.
bool check_with_reference(const KnownAnswer& v, std::string* why);

}  // namespace sectorcrypt::kat
