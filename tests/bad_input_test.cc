// Bad input is refused with a clear error that names what was wrong, and the output
// buffer is left untouched.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "kernels/xts_key.h"
#include "kernels/xts_reference.h"
#include "tests/test_support.h"

namespace sectorcrypt {
namespace {

constexpr uint8_t kPoison = 0xa5;

void expect_error(const Status& s, Errc code, const char* phrase) {
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), code) << s.message();
  EXPECT_NE(std::strstr(s.message(), phrase), nullptr)
      << "message '" << s.message() << "' should mention '" << phrase << "'";
}

XtsKey good_key() {
  const auto raw = testing::random_xts_key(32);
  XtsKey key;
  EXPECT_TRUE(XtsKey::create(raw.data(), raw.size(), &key));
  return key;
}

TEST(BadInput, WrongKeyLengthsAreRefused) {
  for (std::size_t len : {0u, 16u, 24u, 31u, 33u, 48u, 63u, 65u, 128u}) {
    const auto raw = testing::random_bytes(len == 0 ? 1 : len);
    XtsKey key;
    const Status s = XtsKey::create(raw.data(), len, &key);
    expect_error(s, Errc::invalid_key, (std::to_string(len) + " bytes").c_str());
    EXPECT_TRUE(key.empty());
  }
}

TEST(BadInput, EqualHalvesRefusedUnlessOptedIn) {
  for (std::size_t len : {32u, 64u}) {
    std::vector<uint8_t> raw = testing::random_bytes(len / 2);
    raw.insert(raw.end(), raw.begin(), raw.end());
    XtsKey key;
    expect_error(XtsKey::create(raw.data(), len, &key), Errc::invalid_key, "equal");
    EXPECT_TRUE(key.empty());
    KeyOptions opt_in;
    opt_in.allow_equal_halves = true;
    EXPECT_TRUE(XtsKey::create(raw.data(), len, &key, opt_in));
    EXPECT_EQ(key.xts_key_bytes(), len);
  }
}

TEST(BadInput, NullKeyIsRefused) {
  XtsKey key;
  expect_error(XtsKey::create(nullptr, 32, &key), Errc::invalid_key, "null");
}

TEST(BadInput, DataUnitShorterThan16Bytes) {
  const XtsKey key = good_key();
  uint8_t iv[16] = {};
  for (std::size_t len : {0u, 1u, 15u}) {
    std::vector<uint8_t> in(16, 1), out(16, kPoison);
    expect_error(ref::xts_crypt_unit(key, Direction::encrypt, iv, in.data(), out.data(), len),
                 Errc::invalid_length, "at least 16");
    EXPECT_EQ(out, std::vector<uint8_t>(16, kPoison));
  }
}

TEST(BadInput, UnsupportedSectorSize) {
  const XtsKey key = good_key();
  std::vector<uint8_t> in(8192, 1), out(8192, kPoison);
  for (uint32_t size : {256u, 520u, 8192u}) {
    SectorFormat f;
    f.sector_size = size;
    expect_error(ref::xts_crypt_sectors(key, Direction::encrypt, f, 0, in.data(), out.data(),
                                        in.size()),
                 Errc::invalid_format, "sector size");
    EXPECT_EQ(out, std::vector<uint8_t>(8192, kPoison));
  }
}

TEST(BadInput, LengthNotAWholeNumberOfSectors) {
  const XtsKey key = good_key();
  std::vector<uint8_t> in(4096, 1), out(4096, kPoison);
  SectorFormat f;
  f.sector_size = 4096;
  for (std::size_t len : {0u, 512u, 4095u}) {
    expect_error(ref::xts_crypt_sectors(key, Direction::encrypt, f, 0, in.data(), out.data(), len),
                 Errc::invalid_length, "whole number");
  }
  EXPECT_EQ(out, std::vector<uint8_t>(4096, kPoison));
}

TEST(BadInput, NullAndPartlyOverlappingBuffers) {
  const XtsKey key = good_key();
  SectorFormat f;
  std::vector<uint8_t> buf(2048, kPoison);
  expect_error(ref::xts_crypt_sectors(key, Direction::encrypt, f, 0, nullptr, buf.data(), 512),
               Errc::invalid_buffer, "input");
  expect_error(ref::xts_crypt_sectors(key, Direction::encrypt, f, 0, buf.data(), nullptr, 512),
               Errc::invalid_buffer, "output");
  expect_error(ref::xts_crypt_sectors(key, Direction::encrypt, f, 0, buf.data(),
                                      buf.data() + 512, 1024),
               Errc::invalid_buffer, "overlap");
  EXPECT_EQ(buf, std::vector<uint8_t>(2048, kPoison));
  uint8_t iv[16] = {};
  expect_error(ref::xts_crypt_unit(key, Direction::encrypt, iv, buf.data(), buf.data() + 1, 64),
               Errc::invalid_buffer, "overlap");
  EXPECT_EQ(buf, std::vector<uint8_t>(2048, kPoison));
}

TEST(BadInput, MisalignedStartWithLargeSectorIvs) {
  const XtsKey key = good_key();
  SectorFormat f{4096, IvMode::plain64, true};
  std::vector<uint8_t> in(4096, 1), out(4096, kPoison);
  expect_error(ref::xts_crypt_sectors(key, Direction::encrypt, f, 3, in.data(), out.data(),
                                      in.size()),
               Errc::invalid_buffer, "aligned");
  EXPECT_EQ(out, std::vector<uint8_t>(4096, kPoison));
}

TEST(BadInput, EmptyKeyIsRefused) {
  XtsKey empty;
  SectorFormat f;
  std::vector<uint8_t> in(512, 1), out(512, kPoison);
  expect_error(ref::xts_crypt_sectors(empty, Direction::encrypt, f, 0, in.data(), out.data(), 512),
               Errc::invalid_key, "empty");
  EXPECT_EQ(out, std::vector<uint8_t>(512, kPoison));
}

// Released keys leave no key bytes behind in the object's storage.
TEST(KeyHygiene, ClearZeroesAllKeyMaterial) {
  alignas(XtsKey) unsigned char storage[sizeof(XtsKey)];
  auto* key = new (storage) XtsKey();
  const auto raw = testing::random_xts_key(64);
  ASSERT_TRUE(XtsKey::create(raw.data(), raw.size(), key));
  key->~XtsKey();
  for (unsigned char b : storage) ASSERT_EQ(b, 0);
}

}  // namespace
}  // namespace sectorcrypt
