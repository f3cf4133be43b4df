// The IV generators and sector numbering, byte for byte as dm-crypt defines them.
#include <gtest/gtest.h>

#include <cstring>

#include "kernels/sector_format.h"

namespace sectorcrypt {
namespace {

TEST(IvGenerators, Plain64IsLittleEndian64Bit) {
  uint8_t iv[16];
  make_iv(IvMode::plain64, 0x0102030405060708ull, iv);
  const uint8_t want[16] = {8, 7, 6, 5, 4, 3, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(0, std::memcmp(iv, want, 16));
}

TEST(IvGenerators, PlainKeepsLow32Bits) {
  uint8_t iv[16];
  make_iv(IvMode::plain, 0x0102030405060708ull, iv);
  const uint8_t want[16] = {8, 7, 6, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(0, std::memcmp(iv, want, 16));
}

TEST(IvGenerators, Plain64BeIsBigEndianInTheLastEightBytes) {
  uint8_t iv[16];
  make_iv(IvMode::plain64be, 0x0102030405060708ull, iv);
  const uint8_t want[16] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
  EXPECT_EQ(0, std::memcmp(iv, want, 16));
}

// LUKS2 with 4096-byte sectors: the IV of the sector at byte offset o is o / 512.
TEST(SectorNumbering, DefaultCounts512ByteUnits) {
  SectorFormat f;
  f.sector_size = 4096;
  IvSequence s;
  ASSERT_TRUE(iv_sequence_for(f, 24, &s));  // byte offset 12288
  EXPECT_EQ(s.first, 24u);
  EXPECT_EQ(s.step, 8u);
}

TEST(SectorNumbering, LargeSectorsCountSectorSizeUnits) {
  SectorFormat f;
  f.sector_size = 4096;
  f.iv_large_sectors = true;
  IvSequence s;
  ASSERT_TRUE(iv_sequence_for(f, 24, &s));
  EXPECT_EQ(s.first, 3u);
  EXPECT_EQ(s.step, 1u);
  const Status misaligned = iv_sequence_for(f, 25, &s);
  EXPECT_EQ(misaligned.code(), Errc::invalid_buffer);
  EXPECT_NE(std::strstr(misaligned.message(), "not aligned"), nullptr) << misaligned.message();
}

TEST(SectorFormatValidation, AcceptsDmCryptSizesOnly) {
  for (uint32_t size : {512u, 1024u, 2048u, 4096u}) {
    SectorFormat f;
    f.sector_size = size;
    EXPECT_TRUE(validate_format(f)) << size;
  }
  for (uint32_t size : {0u, 16u, 256u, 520u, 8192u}) {
    SectorFormat f;
    f.sector_size = size;
    const Status s = validate_format(f);
    EXPECT_EQ(s.code(), Errc::invalid_format) << size;
    EXPECT_NE(std::strstr(s.message(), "sector size"), nullptr) << s.message();
  }
}

}  // namespace
}  // namespace sectorcrypt
