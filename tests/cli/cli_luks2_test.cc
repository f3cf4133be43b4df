// `sectorcrypt encrypt|decrypt --type luks2` and `sectorcrypt info IMAGE` against LUKS2
// images that the real cryptsetup made on regular files: the data segment cryptsetup
// encrypted decrypts to the original data, encrypting the original with the same header
// gives cryptsetup's ciphertext byte for byte, and each misuse gets one clear error.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "tests/cli/subprocess.h"
#include "tests/test_support.h"

namespace sectorcrypt::clitest {
namespace {

using sectorcrypt::testing::random_bytes;

const std::string kFastKdf = " --pbkdf pbkdf2 --pbkdf-force-iterations 1000 -q --batch-mode";

void sh(const std::string& cmd) {
  std::string full = cmd + " 2>&1";
  FILE* p = popen(full.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  ASSERT_EQ(pclose(p), 0) << cmd << "\n" << out;
}

std::vector<uint8_t> slice(const std::vector<uint8_t>& v, std::size_t from, std::size_t n) {
  return std::vector<uint8_t>(v.begin() + from, v.begin() + from + n);
}

class CliLuks2 : public ::testing::Test {
 protected:
  void SetUp() override { write_file(dir.file("pass"), std::string("a passphrase")); }
  std::string cryptsetup() const { return CRYPTSETUP_PROGRAM; }
  TempDir dir;
};

TEST_F(CliLuks2, DetachedHeaderBothDirectionsMatchCryptsetup) {
  const auto plain = random_bytes(1 << 20);
  write_file(dir.file("plain"), plain);
  write_file(dir.file("image"), plain);
  sh(cryptsetup() + " reencrypt --encrypt --type luks2 --header " + dir.file("hdr") +
     " --key-file " + dir.file("pass") + " --key-size 256 --sector-size 4096" + kFastKdf + " " +
     dir.file("image"));
  const auto cipher = read_file(dir.file("image"));
  ASSERT_NE(cipher, plain);

  RunResult r = run_cli({"decrypt", "--type", "luks2", "--key-file", dir.file("pass"), "--header",
                         dir.file("hdr"), dir.file("image"), dir.file("dec")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(dir.file("dec")), plain);

  r = run_cli({"encrypt", "--type", "luks2", "--key-file", dir.file("pass"), "--header",
               dir.file("hdr"), dir.file("plain"), dir.file("enc")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(dir.file("enc")), cipher);
}

TEST_F(CliLuks2, HeaderInTheImageGivesOnlyTheDataSegment) {
  const auto plain = random_bytes(1 << 20);
  auto padded = plain;
  padded.resize(plain.size() + (4 << 20));
  write_file(dir.file("image"), padded);
  sh(cryptsetup() + " reencrypt --encrypt --type luks2 --reduce-device-size 4M --key-file " +
     dir.file("pass") + " --key-size 512 --sector-size 512" + kFastKdf + " " + dir.file("image"));
  RunResult r = run_cli({"decrypt", "--type", "luks2", "--key-file", dir.file("pass"),
                         dir.file("image"), dir.file("dec")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto dec = read_file(dir.file("dec"));
  ASSERT_GE(dec.size(), plain.size());
  EXPECT_EQ(slice(dec, 0, plain.size()), plain);

  r = run_cli({"info", dir.file("image")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("type:           LUKS2\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("aes-xts-plain64, 512-bit volume key (XTS-AES-256)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("sector size:    512 bytes"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("keyslot 0:      512-bit key, pbkdf2"), std::string::npos) << r.out;
  const std::string segment_bytes = std::to_string(dec.size()) + " bytes)";
  EXPECT_NE(r.out.find(segment_bytes), std::string::npos) << r.out;
}

TEST_F(CliLuks2, InfoOfADetachedHeaderAndJson) {
  write_file(dir.file("image"), random_bytes(1 << 20));
  sh(cryptsetup() + " reencrypt --encrypt --type luks2 --header " + dir.file("hdr") +
     " --key-file " + dir.file("pass") + " --key-size 256 --sector-size 4096 --label vol" +
     kFastKdf + " " + dir.file("image"));
  RunResult r = run_cli({"info", "--header", dir.file("hdr"), dir.file("image"), "--json",
                         dir.file("info.json")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("LUKS2 (detached header)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("label:          vol"), std::string::npos) << r.out;
  const auto json = read_file(dir.file("info.json"));
  const std::string text(json.begin(), json.end());
  EXPECT_NE(text.find("\"sector_size\": 4096"), std::string::npos) << text;
  EXPECT_NE(text.find("\"data_offset_bytes\": 0"), std::string::npos) << text;
  EXPECT_EQ(text.find("key\":"), std::string::npos) << "no key in the report";
}

// --zone-size is checked against the header's sector size, which only --type luks2
// knows: 6 KiB is whole 512-byte sectors but not whole 4096-byte ones.
TEST_F(CliLuks2, ZoneSizeMustBeWholeSectorsOfTheHeader) {
  write_file(dir.file("l2"), random_bytes(20 << 20));
  sh(cryptsetup() + " luksFormat --type luks2 --sector-size 4096 --key-file " +
     dir.file("pass") + kFastKdf + " " + dir.file("l2"));
  const auto before = read_file(dir.file("l2"));
  const RunResult r = run_cli({"decrypt", "--type", "luks2", "--key-file", dir.file("pass"),
                               "--zone-size", "6K", "--no-progress", dir.file("l2"),
                               dir.file("l2")});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("--zone-size 6K must be a whole number of 4096-byte sectors"),
            std::string::npos) << r.err;
  EXPECT_EQ(read_file(dir.file("l2")), before);
  EXPECT_FALSE(file_exists(dir.file(".l2.sectorcrypt-resume")));
}

TEST_F(CliLuks2, MisuseGetsOneClearError) {
  write_file(dir.file("image"), random_bytes(4 << 20));
  sh(cryptsetup() + " luksFormat --type luks1 --key-file " + dir.file("pass") + kFastKdf + " " +
     dir.file("image"));
  write_file(dir.file("l2"), random_bytes(20 << 20));
  sh(cryptsetup() + " luksFormat --type luks2 --key-file " + dir.file("pass") + kFastKdf + " " +
     dir.file("l2"));
  write_file(dir.file("wrong"), std::string("not it"));
  struct Case {
    std::vector<std::string> args;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {{"decrypt", "--type", "luks2", "--key-file", dir.file("pass"), dir.file("image"),
        dir.file("out")}, "LUKS1 header; sectorcrypt reads LUKS2 only"},
      {{"decrypt", "--type", "luks2", "--key-file", dir.file("wrong"), dir.file("l2"),
        dir.file("out")}, "wrong passphrase"},
      {{"decrypt", "--type", "luks2", "--key-file", dir.file("pass"), "--header",
        dir.file("nohdr"), dir.file("l2"), dir.file("out")}, "cannot open header"},
      {{"decrypt", "--type", "luks2", "--sector-size", "4096", "--key-file", dir.file("pass"),
        dir.file("l2"), dir.file("out")}, "--sector-size is a plain-mode option"},
      {{"decrypt", "--type", "luks2", "--offset", "8", "--key-file", dir.file("pass"),
        dir.file("l2"), dir.file("out")}, "--offset is a plain-mode option"},
      {{"decrypt", "--type", "luks3", "--key-file", dir.file("pass"), dir.file("l2"),
        dir.file("out")}, "--type luks3: use plain or luks2"},
      {{"decrypt", "--header", dir.file("l2"), "--key-file", dir.file("pass"), dir.file("l2"),
        dir.file("out")}, "--header is a LUKS2 option"},
      {{"decrypt", "--type", "luks2", "--key-file", dir.file("pass"), "-", dir.file("out")},
       "cannot be stdin"},
      {{"info", "--header", dir.file("l2")}, "--header needs the IMAGE"},
      {{"info", dir.file("image")}, "LUKS1 header"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.needle);
    const RunResult r = run_cli(c.args);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    const auto ls = lines(r.err);
    ASSERT_EQ(ls.size(), 1u) << r.err;
    EXPECT_NE(ls[0].find(c.needle), std::string::npos) << ls[0];
    EXPECT_FALSE(file_exists(dir.file("out")));
  }
}

}  // namespace
}  // namespace sectorcrypt::clitest
