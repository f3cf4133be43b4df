// The AES block cipher and the shared tweak arithmetic, below XTS.
#include <gtest/gtest.h>

#include <cstring>

#include "kernels/aes_ct_core.h"
#include "kernels/aes_key_schedule.h"
#include "kernels/xts_reference.h"
#include "kernels/xts_tweak.h"
#include "tests/test_support.h"

namespace sectorcrypt {
namespace {

// FIPS-197 Appendix C.1 and C.3: plaintext 00112233..ff, key 000102...
TEST(AesBlock, Fips197AppendixC) {
  const uint8_t pt[16] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                          0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
  const uint8_t ct128[16] = {0x69, 0xc4, 0xe0, 0xd8, 0x6a, 0x7b, 0x04, 0x30,
                             0xd8, 0xcd, 0xb7, 0x80, 0x70, 0xb4, 0xc5, 0x5a};
  const uint8_t ct256[16] = {0x8e, 0xa2, 0xb7, 0xca, 0x51, 0x67, 0x45, 0xbf,
                             0xea, 0xfc, 0x49, 0x90, 0x4b, 0x49, 0x60, 0x89};
  uint8_t key[32];
  for (int i = 0; i < 32; ++i) key[i] = static_cast<uint8_t>(i);
  struct Case { std::size_t key_bytes; const uint8_t* ct; int rounds; };
  for (const Case& c : {Case{16, ct128, 10}, Case{32, ct256, 14}}) {
    AesRoundKeys enc, dec;
    aes_expand_encrypt_key(key, c.key_bytes, &enc);
    aes_make_decrypt_key(enc, &dec);
    EXPECT_EQ(enc.rounds, c.rounds);
    uint8_t out[16];
    ref::aes_encrypt_block(enc, pt, out);
    EXPECT_EQ(0, std::memcmp(out, c.ct, 16)) << "AES-" << 8 * c.key_bytes << " encrypt";
    ref::aes_decrypt_block(dec, c.ct, out);
    EXPECT_EQ(0, std::memcmp(out, pt, 16)) << "AES-" << 8 * c.key_bytes << " decrypt";
  }
}

// FIPS-197 Appendix A.1: the last round key of the AES-128 expansion of 2b7e1516...
TEST(AesBlock, Fips197KeyExpansion) {
  const uint8_t key[16] = {0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6,
                           0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c};
  const uint8_t last[16] = {0xd0, 0x14, 0xf9, 0xa8, 0xc9, 0xee, 0x25, 0x89,
                            0xe1, 0x3f, 0x0c, 0xc8, 0xb6, 0x63, 0x0c, 0xa6};
  AesRoundKeys enc;
  aes_expand_encrypt_key(key, 16, &enc);
  EXPECT_EQ(0, std::memcmp(enc.rk[10], last, 16));
}

// The constant-time S-box: known values, and the inverse undoes it for all 256 bytes.
TEST(AesBlock, ConstantTimeSboxIsABijectionWithKnownValues) {
  EXPECT_EQ(aes_ct::sub_bytes8(0x00) & 0xff, 0x63u);
  EXPECT_EQ(aes_ct::sub_bytes8(0x53) & 0xff, 0xedu);  // FIPS-197 §5.1.1 example
  EXPECT_EQ(aes_ct::sub_bytes8(0xff) & 0xff, 0x16u);
  bool seen[256] = {};
  for (uint64_t x = 0; x < 256; ++x) {
    const uint64_t s = aes_ct::sub_bytes8(x) & 0xff;
    EXPECT_FALSE(seen[s]) << "S-box collision at " << x;
    seen[s] = true;
    EXPECT_EQ(aes_ct::inv_sub_bytes8(s) & 0xff, x);
  }
}

TEST(XtsTweak, MulXPowEqualsRepeatedMulX) {
  auto& gen = testing::rng();
  for (int trial = 0; trial < 200; ++trial) {
    xts::Tweak t{gen(), gen()};
    if (trial == 0) t = xts::Tweak{~0ull, ~0ull};  // every carry at once
    xts::Tweak stepped = t;
    for (int k = 0; k <= 56; ++k) {
      const xts::Tweak jumped = xts::mul_x_pow(t, k);
      ASSERT_EQ(jumped.lo, stepped.lo) << "k=" << k;
      ASSERT_EQ(jumped.hi, stepped.hi) << "k=" << k;
      stepped = xts::mul_x(stepped);
    }
  }
}

// x^128 = x^7 + x^2 + x + 1: the top bit folds back as 0x87.
TEST(XtsTweak, MulXReducesByX128) {
  const xts::Tweak top{0, 1ull << 63};
  const xts::Tweak r = xts::mul_x(top);
  EXPECT_EQ(r.lo, 0x87u);
  EXPECT_EQ(r.hi, 0u);
}

}  // namespace
}  // namespace sectorcrypt
