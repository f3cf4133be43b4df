// sectorcrypt-selfcheck: runs every known-answer vector shipped in tests/data/vectors
// through the reference AES-XTS, both directions, and prints one line per file.
// Exit status 0 when all byte-aligned vectors pass.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "host/kat_vectors.h"

namespace {

struct Tally {
  int passed = 0, failed = 0, skipped = 0;
};

Tally check_file(const std::string& label, const std::vector<sectorcrypt::kat::KnownAnswer>& vs) {
  Tally t;
  for (const auto& v : vs) {
    if (!v.byte_aligned()) { ++t.skipped; continue; }
    std::string why;
    if (sectorcrypt::kat::check_with_reference(v, &why)) {
      ++t.passed;
    } else {
      ++t.failed;
      std::fprintf(stderr, "FAIL %s: %s\n", v.name.c_str(), why.c_str());
    }
  }
  std::printf("%-34s %5d passed, %d failed, %d skipped (data unit not a whole number of bytes)\n",
              label.c_str(), t.passed, t.failed, t.skipped);
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : sectorcrypt::kat::default_vector_dir();
  Tally total;
  try {
    auto add = [&](const Tally& t) {
      total.passed += t.passed; total.failed += t.failed; total.skipped += t.skipped;
    };
    add(check_file("IEEE 1619-2007 Annex B", sectorcrypt::kat::read_ieee1619(dir + "/ieee1619-2007.txt")));
    for (const char* f : {"XTSGenAES128.rsp", "XTSGenAES256.rsp", "tweak/XTSGenAES128.rsp",
                          "tweak/XTSGenAES256.rsp"}) {
      add(check_file(std::string("NIST CAVP ") + f,
                     sectorcrypt::kat::read_cavp_rsp(dir + "/nist-cavp/" + f)));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sectorcrypt-selfcheck: %s\n", e.what());
    return 2;
  }
  std::printf("self-check: %d passed, %d failed, %d skipped\n", total.passed, total.failed,
              total.skipped);
  return total.failed == 0 ? 0 : 1;
}
