// host/luks2 against LUKS2 (and LUKS1) headers written by the real cryptsetup: the data
// segment that `cryptsetup reencrypt --encrypt` produced must decrypt, with the key and
// layout open_volume() returns, to the data that was there before; and every header it
// cannot serve is refused with a message that says why.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "host/luks2/luks2_volume.h"
#include "kernels/xts_key.h"
#include "kernels/xts_reference.h"

namespace sectorcrypt::luks2 {
namespace {

const std::string kPass = "correct horse battery staple";
// Fast key derivation: these images only exist for the tests.
const std::string kFastKdf = " --pbkdf pbkdf2 --pbkdf-force-iterations 1000 -q --batch-mode";

std::string cryptsetup() { return CRYPTSETUP_PROGRAM; }

HeaderLocation loc(const std::string& image, const std::string& header,
                   std::optional<uint64_t> image_bytes = std::nullopt) {
  HeaderLocation where;
  where.image = image;
  where.header = header;
  where.image_bytes = image_bytes;
  return where;
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/sectorcrypt-luks2-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Runs a shell command; fails the test with its output when it exits non-zero.
void sh(const std::string& cmd) {
  std::string full = cmd + " 2>&1";
  FILE* p = popen(full.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  int rc = pclose(p);
  ASSERT_EQ(rc, 0) << cmd << "\n" << out;
}

std::vector<uint8_t> random_bytes(std::size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

void write_file(const std::string& path, const std::vector<uint8_t>& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  ASSERT_TRUE(f.good());
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  ASSERT_TRUE(f.good());
}

std::vector<uint8_t> read_range(const std::string& path, uint64_t offset, uint64_t len) {
  std::ifstream f(path, std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  std::vector<uint8_t> v(len);
  f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(len));
  EXPECT_EQ(static_cast<uint64_t>(f.gcount()), len) << path;
  return v;
}

// Decrypts the data segment with the reference XTS and the layout/key from the header.
std::vector<uint8_t> decrypt_segment(const Volume& v, const std::string& image, uint64_t len) {
  std::vector<uint8_t> data = read_range(image, v.layout.data_offset_bytes, len);
  XtsKey key;
  EXPECT_TRUE(XtsKey::create(v.key.data(), v.key.size(), &key).ok());
  Status s = ref::xts_crypt_sectors(key, Direction::decrypt, v.layout.format, v.layout.iv_offset,
                                    data.data(), data.data(), data.size());
  EXPECT_TRUE(s.ok()) << s.message();
  return data;
}

class Luks2Images : public ::testing::Test {
 protected:
  void SetUp() override { write_text(dir_.file("pass"), kPass); }
  std::string pass_file() const { return dir_.file("pass"); }
  TempDir dir_;
};

struct Case {
  unsigned key_bits;   // cryptsetup --key-size: 256 = AES-128, 512 = AES-256
  unsigned sector_size;
};

class DetachedHeader : public Luks2Images, public ::testing::WithParamInterface<Case> {};

// cryptsetup encrypts the data where it lies, the header in a file of its own (offset 0).
TEST_P(DetachedHeader, SegmentDecryptsToTheDataCryptsetupEncrypted) {
  const Case c = GetParam();
  const auto plain = random_bytes(1 << 20, c.key_bits + c.sector_size);
  const std::string image = dir_.file("image"), header = dir_.file("header");
  write_file(image, plain);
  sh(cryptsetup() + " reencrypt --encrypt --type luks2 --header " + header + " --key-file " +
     pass_file() + " --cipher aes-xts-plain64 --key-size " + std::to_string(c.key_bits) +
     " --sector-size " + std::to_string(c.sector_size) + kFastKdf + " " + image);
  ASSERT_NE(read_range(image, 0, plain.size()), plain) << "cryptsetup left the data as it was";

  Volume v;
  Status s = open_volume(loc(image, header), kPass.data(), kPass.size(), -1, &v);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(v.layout.cipher, "aes-xts-plain64");
  EXPECT_EQ(v.layout.format.sector_size, c.sector_size);
  EXPECT_EQ(v.layout.format.iv_mode, IvMode::plain64);
  EXPECT_FALSE(v.layout.format.iv_large_sectors);
  EXPECT_EQ(v.layout.data_offset_bytes, 0u);
  EXPECT_EQ(v.layout.data_bytes, plain.size());
  EXPECT_EQ(v.layout.volume_key_bytes, c.key_bits / 8);
  EXPECT_EQ(v.key.size(), c.key_bits / 8);
  EXPECT_EQ(v.keyslot, 0);
  EXPECT_EQ(decrypt_segment(v, image, plain.size()), plain);
}

INSTANTIATE_TEST_SUITE_P(KeyAndSectorSizes, DetachedHeader,
                         ::testing::Values(Case{256, 512}, Case{512, 512}, Case{256, 4096},
                                           Case{512, 4096}),
                         [](const auto& info) {
                           return "aes" + std::to_string(info.param.key_bits / 2) + "_sector" +
                                  std::to_string(info.param.sector_size);
                         });

// The header inside the image: cryptsetup moves the data up and records where it starts.
TEST_F(Luks2Images, HeaderInTheImageGivesTheDataOffset) {
  const auto plain = random_bytes(1 << 20, 7);
  const std::string image = dir_.file("image");
  auto padded = plain;
  padded.resize(plain.size() + (4 << 20));  // room for the header cryptsetup adds
  write_file(image, padded);
  sh(cryptsetup() + " reencrypt --encrypt --type luks2 --reduce-device-size 4M --key-file " +
     pass_file() + " --key-size 512 --sector-size 4096" + kFastKdf + " " + image);

  Volume v;
  Status s = open_volume(loc(image, ""), kPass.data(), kPass.size(), -1, &v);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_GT(v.layout.data_offset_bytes, 0u);
  EXPECT_EQ(v.layout.data_offset_bytes % 4096, 0u);
  EXPECT_GE(v.layout.data_bytes, plain.size());
  EXPECT_EQ(decrypt_segment(v, image, plain.size()), plain);

  // A reader that sees the image only through someone else (an nbdkit plugin): a copy of
  // the bytes before the data offset as the header, the image known by its size.
  const std::string prefix = dir_.file("prefix");
  write_file(prefix, read_range(image, 0, v.layout.data_offset_bytes));
  Volume by_size;
  s = open_volume(loc("", prefix, padded.size()), kPass.data(), kPass.size(), -1, &by_size);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(by_size.layout.data_offset_bytes, v.layout.data_offset_bytes);
  EXPECT_EQ(by_size.layout.data_bytes, v.layout.data_bytes);
  EXPECT_EQ(std::vector<uint8_t>(by_size.key.data(), by_size.key.data() + by_size.key.size()),
            std::vector<uint8_t>(v.key.data(), v.key.data() + v.key.size()));
  s = open_volume(loc("", prefix, v.layout.data_offset_bytes - 512), kPass.data(), kPass.size(), -1,
                  &by_size);
  EXPECT_EQ(s.code(), Errc::invalid_format);
  EXPECT_NE(std::string(s.message()).find("shorter than the LUKS2 data offset"), std::string::npos)
      << s.message();
}

TEST_F(Luks2Images, NamedKeyslotOpensAndAnUnusedOneIsRefused) {
  const std::string image = dir_.file("image");
  write_file(image, random_bytes(16 << 20, 3));
  sh(cryptsetup() + " luksFormat --type luks2 --key-file " + pass_file() + kFastKdf + " " + image);
  write_text(dir_.file("pass2"), "second passphrase");
  sh(cryptsetup() + " luksAddKey --key-file " + pass_file() + " --new-keyfile " +
     dir_.file("pass2") + " --new-key-slot 3" + kFastKdf + " " + image);

  Volume v;
  const std::string pass2 = "second passphrase";
  Status s = open_volume(loc(image, ""), pass2.data(), pass2.size(), 3, &v);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(v.keyslot, 3);
  Volume v0;
  ASSERT_TRUE(open_volume(loc(image, ""), kPass.data(), kPass.size(), 0, &v0).ok());
  EXPECT_EQ(std::vector<uint8_t>(v.key.data(), v.key.data() + v.key.size()),
            std::vector<uint8_t>(v0.key.data(), v0.key.data() + v0.key.size()));

  s = open_volume(loc(image, ""), kPass.data(), kPass.size(), 3, &v);
  EXPECT_EQ(s.code(), Errc::invalid_key);
  EXPECT_NE(std::string(s.message()).find("keyslot 3"), std::string::npos) << s.message();
  s = open_volume(loc(image, ""), kPass.data(), kPass.size(), 5, &v);
  EXPECT_EQ(s.code(), Errc::invalid_key);
  EXPECT_NE(std::string(s.message()).find("keyslot 5 is not in use"), std::string::npos)
      << s.message();
}

TEST_F(Luks2Images, WrongPassphraseIsRefused) {
  const std::string image = dir_.file("image");
  write_file(image, random_bytes(16 << 20, 4));
  sh(cryptsetup() + " luksFormat --type luks2 --key-file " + pass_file() + kFastKdf + " " + image);
  Volume v;
  const std::string wrong = kPass + "!";
  Status s = open_volume(loc(image, ""), wrong.data(), wrong.size(), -1, &v);
  EXPECT_EQ(s.code(), Errc::invalid_key);
  EXPECT_NE(std::string(s.message()).find("wrong passphrase"), std::string::npos) << s.message();
  EXPECT_EQ(v.key.size(), 0u);
  EXPECT_EQ(v.key.data(), nullptr);
}

TEST_F(Luks2Images, Luks1IsRefusedByName) {
  const std::string image = dir_.file("image");
  write_file(image, random_bytes(4 << 20, 5));
  sh(cryptsetup() + " luksFormat --type luks1 --key-file " + pass_file() + kFastKdf + " " + image);
  Volume v;
  Status s = open_volume(loc(image, ""), kPass.data(), kPass.size(), -1, &v);
  EXPECT_EQ(s.code(), Errc::invalid_format);
  EXPECT_NE(std::string(s.message()).find("LUKS1"), std::string::npos) << s.message();
  HeaderSummary h;
  EXPECT_EQ(read_header(loc(image, ""), &h).code(), Errc::invalid_format);
}

TEST_F(Luks2Images, UnsupportedCipherIsRefusedByName) {
  const std::string image = dir_.file("image");
  write_file(image, random_bytes(16 << 20, 6));
  sh(cryptsetup() + " luksFormat --type luks2 --cipher aes-cbc-essiv:sha256 --key-size 256"
     " --key-file " + pass_file() + kFastKdf + " " + image);
  Volume v;
  Status s = open_volume(loc(image, ""), kPass.data(), kPass.size(), -1, &v);
  EXPECT_EQ(s.code(), Errc::invalid_format);
  EXPECT_NE(std::string(s.message()).find("aes-cbc-essiv:sha256"), std::string::npos)
      << s.message();
}

TEST_F(Luks2Images, MissingFilesAndNonLuksDataAreNamed) {
  const std::string image = dir_.file("image");
  write_file(image, random_bytes(1 << 20, 8));
  Volume v;
  Status s = open_volume(loc(image, dir_.file("no-such-header")), kPass.data(), kPass.size(), -1, &v);
  EXPECT_EQ(s.code(), Errc::unavailable);
  EXPECT_NE(std::string(s.message()).find("no-such-header"), std::string::npos) << s.message();
  s = open_volume(loc(dir_.file("no-such-image"), ""), kPass.data(), kPass.size(), -1, &v);
  EXPECT_EQ(s.code(), Errc::unavailable);
  EXPECT_NE(std::string(s.message()).find("no-such-image"), std::string::npos) << s.message();
  s = open_volume(loc(image, ""), kPass.data(), kPass.size(), -1, &v);
  EXPECT_EQ(s.code(), Errc::invalid_format);
  EXPECT_NE(std::string(s.message()).find("no LUKS header"), std::string::npos) << s.message();
}

TEST_F(Luks2Images, SummaryNeedsNoPassphraseAndHoldsNoKey) {
  const std::string image = dir_.file("image");
  write_file(image, random_bytes(16 << 20, 9));
  sh(cryptsetup() + " luksFormat --type luks2 --label backup --key-size 256 --sector-size 4096"
     " --key-file " + pass_file() + kFastKdf + " " + image);
  HeaderSummary h;
  Status s = read_header(loc(image, ""), &h);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(h.label, "backup");
  EXPECT_EQ(h.uuid.size(), 36u);
  EXPECT_FALSE(h.detached);
  EXPECT_EQ(h.layout.cipher, "aes-xts-plain64");
  EXPECT_EQ(h.layout.format.sector_size, 4096u);
  EXPECT_EQ(h.layout.volume_key_bytes, 32u);
  EXPECT_EQ(h.layout.data_offset_bytes + h.layout.data_bytes, 16u << 20);
  ASSERT_EQ(h.keyslots.size(), 1u);
  EXPECT_EQ(h.keyslots[0].index, 0);
  EXPECT_EQ(h.keyslots[0].key_bytes, 32u);
  EXPECT_EQ(h.keyslots[0].kdf, "pbkdf2");
}

// A header whose reencryption was interrupted must not be served as if it were whole.
TEST_F(Luks2Images, ReencryptionInProgressIsRefused) {
  const std::string image = dir_.file("image"), header = dir_.file("header");
  write_file(image, random_bytes(1 << 20, 10));
  sh(cryptsetup() + " reencrypt --encrypt --init-only --type luks2 --header " + header +
     " --key-file " + pass_file() + kFastKdf + " " + image);
  Volume v;
  Status s = open_volume(loc(image, header), kPass.data(), kPass.size(), -1, &v);
  EXPECT_EQ(s.code(), Errc::invalid_format);
  EXPECT_NE(std::string(s.message()).find("reencryption in progress"), std::string::npos)
      << s.message();
}

TEST(VolumeKeyMemory, ResetReleasesTheKey) {
  VolumeKey key;
  ASSERT_TRUE(key.allocate(64).ok());
  for (int i = 0; i < 64; ++i) key.data()[i] = static_cast<uint8_t>(i + 1);
  key.set_size(64);
  VolumeKey moved = std::move(key);
  EXPECT_EQ(moved.size(), 64u);
  EXPECT_EQ(moved.data()[63], 64);
  moved.reset();
  EXPECT_EQ(moved.size(), 0u);
  EXPECT_EQ(moved.data(), nullptr);
}

}  // namespace
}  // namespace sectorcrypt::luks2
