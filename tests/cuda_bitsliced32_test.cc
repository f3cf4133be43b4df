// The bitsliced32 CUDA kernel's host/device code, run on the host: the S-box circuits on
// every byte, the slice layout, the round-key slices, AES on 32 blocks against the
// reference, and whole warp groups emulated lane by lane exactly as xts_bs32.cu runs them
// (columns, passes per key size, gather/crypt/scatter), against the reference and OpenSSL.
// Needs no CUDA: only SC_HOST_DEVICE headers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "host/peer_ciphers.h"
#include "kernels/cuda/aes_bitsliced32_core.h"
#include "kernels/cuda/aes_bitsliced_core.h"
#include "kernels/cuda/aes_tables.h"
#include "kernels/cuda/xts_block_core.h"
#include "kernels/xts_key.h"
#include "kernels/xts_reference.h"
#include "tests/test_support.h"

namespace sectorcrypt {
namespace {

using bitsliced32::kBlocks;
using bitsliced32::kWords;
using bitsliced32::Slice;
using cuda_core::Block;
using cuda_core::ByteRoundKeys;

// Eight words whose bit j is bit k of byte `base + j`.
void byte_planes(int base, uint32_t (&b)[8]) {
  for (int k = 0; k < 8; ++k) {
    b[k] = 0;
    for (int j = 0; j < 32; ++j) b[k] |= uint32_t{((base + j) >> k) & 1u} << j;
  }
}

uint8_t byte_of(const uint32_t (&b)[8], int j) {
  uint8_t v = 0;
  for (int k = 0; k < 8; ++k) v |= static_cast<uint8_t>(((b[k] >> j) & 1u) << k);
  return v;
}

TEST(Bitsliced32, SboxCircuitsOnEveryByte) {
  for (int base = 0; base < 256; base += 32) {
    uint32_t fwd[8], inv[8];
    byte_planes(base, fwd);
    byte_planes(base, inv);
    bitsliced32::sbox(fwd[0], fwd[1], fwd[2], fwd[3], fwd[4], fwd[5], fwd[6], fwd[7]);
    Slice s{};
    for (int k = 0; k < 8; ++k) s.w[8 * 5 + k] = inv[k];
    bitsliced32::inv_sub_byte<5>(s.w);
    for (int k = 0; k < 8; ++k) inv[k] = s.w[8 * 5 + k];
    for (int j = 0; j < 32; ++j) {
      const auto x = static_cast<uint8_t>(base + j);
      ASSERT_EQ(byte_of(fwd, j), aes_tables::sbox(x)) << int(x);
      ASSERT_EQ(byte_of(inv, j), aes_tables::inv_sbox(x)) << int(x);
    }
  }
}

std::vector<Block> random_blocks(std::size_t n) {
  const auto bytes = testing::random_bytes(16 * n);
  std::vector<Block> b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = cuda_core::load_block(bytes.data() + 16 * i);
  return b;
}

Slice pack(const std::vector<Block>& blocks) {
  Slice s;
  for (int j = 0; j < kBlocks; ++j) {
    for (int k = 0; k < 4; ++k) s.w[32 * k + j] = blocks[j].w[k];
  }
  bitsliced32::transpose(s);
  return s;
}

std::vector<Block> unpack(Slice s) {
  bitsliced32::transpose(s);
  std::vector<Block> blocks(kBlocks);
  for (int j = 0; j < kBlocks; ++j) {
    for (int k = 0; k < 4; ++k) blocks[j].w[k] = s.w[32 * k + j];
  }
  return blocks;
}

// The branch-free lane tweak equals T * x^lane by serial doubling, for every lane, with the
// top bits set so that every fold is exercised.
TEST(Bitsliced32, LaneTweakIsSerialDoubling) {
  auto& gen = testing::rng();
  for (int trial = 0; trial < 64; ++trial) {
    const xts::Tweak t0{gen(), trial < 2 ? ~uint64_t{0} : gen()};
    xts::Tweak serial = t0;
    for (int lane = 0; lane < 32; ++lane) {
      const xts::Tweak got = bitsliced32::lane_tweak(t0, lane);
      ASSERT_EQ(got.lo, serial.lo) << lane;
      ASSERT_EQ(got.hi, serial.hi) << lane;
      serial = xts::mul_x(serial);
    }
  }
}

// Bit k of state byte i of block j is bit j of word 8 i + k, and unpacking inverts.
TEST(Bitsliced32, SliceLayoutAndRoundTrip) {
  for (int trial = 0; trial < 8; ++trial) {
    const auto blocks = random_blocks(kBlocks);
    const Slice s = pack(blocks);
    for (int j = 0; j < kBlocks; ++j) {
      uint8_t bytes[16];
      cuda_core::store_block(blocks[j], bytes);
      for (int i = 0; i < 16; ++i) {
        for (int k = 0; k < 8; ++k) {
          ASSERT_EQ((s.w[8 * i + k] >> j) & 1u, (bytes[i] >> k) & 1u) << j << " " << i << " " << k;
        }
      }
    }
    const auto back = unpack(s);
    for (int j = 0; j < kBlocks; ++j) {
      ASSERT_EQ(0, std::memcmp(back[j].w, blocks[j].w, 16)) << j;
    }
  }
}

// The uniform shortcut the kernel takes when every column uses one key equals the general
// transpose of 32 copies of the key.
TEST(Bitsliced32, UniformKeySlicesEqualTheTranspose) {
  for (int trial = 0; trial < 8; ++trial) {
    const Block rk = random_blocks(1)[0];
    Block cols[kBlocks];
    for (auto& c : cols) c = rk;
    uint32_t slices[kWords];
    bitsliced32::key_slices_from_columns(cols, slices);
    for (int i = 0; i < kWords; ++i) ASSERT_EQ(slices[i], bitsliced32::uniform_key_word(rk, i)) << i;
  }
}

// Round-key slices of round r from one schedule per column (the same for unused ones).
void slices_for_columns(const std::vector<const AesRoundKeys*>& columns, int rounds,
                        uint32_t (*out)[kWords]) {
  for (int r = 0; r <= rounds; ++r) {
    Block cols[kBlocks];
    for (int j = 0; j < kBlocks; ++j) cols[j] = cuda_core::load_block(columns[j]->rk[r]);
    bitsliced32::key_slices_from_columns(cols, out[r]);
  }
}

// AES on 32 blocks, each under its own key, against the reference, both directions and
// key sizes.
TEST(Bitsliced32, CryptMatchesReferencePerColumnKey) {
  auto& gen = testing::rng();
  for (std::size_t key_len : {32u, 64u}) {
    std::vector<XtsKey> keys(kBlocks);
    for (auto& k : keys) {
      const auto raw = testing::random_xts_key(key_len, gen);
      ASSERT_TRUE(XtsKey::create(raw.data(), raw.size(), &k));
    }
    const int rounds = keys[0].data_encrypt().rounds;
    for (Direction dir : {Direction::encrypt, Direction::decrypt}) {
      std::vector<const AesRoundKeys*> schedules;
      for (const auto& k : keys) {
        schedules.push_back(dir == Direction::encrypt ? &k.data_encrypt() : &k.data_decrypt());
      }
      uint32_t slices[bitsliced32::kMaxRounds + 1][kWords];
      slices_for_columns(schedules, rounds, slices);
      const auto blocks = random_blocks(kBlocks);
      Slice s = pack(blocks);
      if (dir == Direction::encrypt) {
        bitsliced32::crypt<Direction::encrypt>(s, bitsliced32::ArrayKeys{slices}, rounds);
      } else {
        bitsliced32::crypt<Direction::decrypt>(s, bitsliced32::ArrayKeys{slices}, rounds);
      }
      const auto got = unpack(s);
      for (int j = 0; j < kBlocks; ++j) {
        uint8_t in[16], want[16], have[16];
        cuda_core::store_block(blocks[j], in);
        cuda_core::store_block(got[j], have);
        if (dir == Direction::encrypt) {
          ref::aes_encrypt_block(*schedules[j], in, want);
        } else {
          ref::aes_decrypt_block(*schedules[j], in, want);
        }
        ASSERT_EQ(0, std::memcmp(want, have, 16))
            << "key " << key_len << (dir == Direction::encrypt ? " enc" : " dec") << " block " << j;
      }
    }
  }
}

// A warp's group (up to 64 sectors) as xts_bs32.cu runs it: phase 1 (lane l encrypts the
// tweaks of sectors l and l + 32 with the two-block cipher), then steps of 32 columns, once per key size present in the step, each
// lane gathering, crypting and scattering its blocks. Sector i uses keys[i] and IV number
// ivs[i]; `in` may equal `out`.
void emulate_group(const std::vector<const XtsKey*>& keys, Direction dir, IvMode mode,
                   const std::vector<uint64_t>& ivs, const uint8_t* in, uint8_t* out,
                   uint32_t sector_size) {
  const uint32_t n = static_cast<uint32_t>(keys.size());
  std::vector<xts::Tweak> tweaks(n);
  using Packed = bitsliced::PackedKeys<Direction::encrypt, ByteRoundKeys>;
  for (uint32_t s0 = 0; s0 < n && s0 < 32; ++s0) {  // lane s0: sectors s0 and s0 + 32
    const uint32_t n1 = s0 + 32 < n ? s0 + 32 : s0;
    const ByteRoundKeys k0{keys[s0]->tweak_encrypt().rk}, k1{keys[n1]->tweak_encrypt().rk};
    const int r0 = keys[s0]->tweak_encrypt().rounds, r1 = keys[n1]->tweak_encrypt().rounds;
    const Block iv0 = cuda_core::iv_block(mode, ivs[s0]), iv1 = cuda_core::iv_block(mode, ivs[n1]);
    Block t0, t1, unused;
    if (r0 == r1) {
      bitsliced::crypt_pair<Direction::encrypt>(Packed{k0, k1}, r0, iv0, iv1, &t0, &t1);
    } else {
      bitsliced::crypt_pair<Direction::encrypt>(Packed{k0, k0}, r0, iv0, iv0, &t0, &unused);
      bitsliced::crypt_pair<Direction::encrypt>(Packed{k1, k1}, r1, iv1, iv1, &t1, &unused);
    }
    tweaks[s0] = cuda_core::to_tweak(t0);
    tweaks[n1] = cuda_core::to_tweak(t1);
  }
  const uint32_t blocks = sector_size / 16;
  const uint32_t segments = (blocks + 31) / 32;
  const uint32_t columns = n * segments;
  const auto schedule = [&](uint32_t sector) {
    return dir == Direction::encrypt ? &keys[sector]->data_encrypt() : &keys[sector]->data_decrypt();
  };
  for (uint32_t base = 0; base < columns; base += 32) {
    for (int pass : {10, 14}) {
      uint32_t take = 0;
      for (uint32_t j = 0; j < 32; ++j) {
        const uint32_t c = base + j;
        if (c < columns && (keys[c / segments]->data_encrypt().rounds == 10 ? 10 : 14) == pass) {
          take |= 1u << j;
        }
      }
      if (take == 0) continue;
      const uint32_t leader = (base + static_cast<uint32_t>(__builtin_ctz(take))) / segments;
      std::vector<const AesRoundKeys*> column_keys;
      for (uint32_t j = 0; j < 32; ++j) {
        column_keys.push_back(((take >> j) & 1u) ? schedule((base + j) / segments) : schedule(leader));
      }
      uint32_t slices[bitsliced32::kMaxRounds + 1][kWords];
      slices_for_columns(column_keys, pass, slices);
      const bitsliced32::StepGeometry g{base, segments, blocks, columns, take};
      const auto sector_tweak = [&](uint32_t s) { return tweaks[s < n ? s : 0]; };
      const auto load = [&](uint32_t s, uint32_t block) {
        return cuda_core::load_block(in + std::size_t{s} * sector_size + 16 * block);
      };
      const auto store = [&](uint32_t s, uint32_t block, const Block& b) {
        cuda_core::store_block(b, out + std::size_t{s} * sector_size + 16 * block);
      };
      for (int lane = 0; lane < 32; ++lane) {
        Slice s;
        bitsliced32::gather(s, g, lane, sector_tweak, load);
        if (dir == Direction::encrypt) {
          bitsliced32::crypt<Direction::encrypt>(s, bitsliced32::ArrayKeys{slices}, pass);
        } else {
          bitsliced32::crypt<Direction::decrypt>(s, bitsliced32::ArrayKeys{slices}, pass);
        }
        bitsliced32::scatter(s, g, lane, sector_tweak, store);
      }
    }
  }
}

// Groups of every dm-crypt sector size and some uneven ones, every IV mode, both key sizes
// and directions, one key or mixed keys of both sizes, group sizes up to 64 that fill a
// step, leave it partly empty or take several; out of place and in place; against the
// reference per sector and OpenSSL for the single-key groups.
TEST(Bitsliced32, EmulatedWarpGroupsMatchReferenceAndOpenssl) {
  auto& gen = testing::rng();
  std::vector<XtsKey> table(4);
  std::vector<std::vector<uint8_t>> raw(table.size());
  for (std::size_t k = 0; k < table.size(); ++k) {
    raw[k] = testing::random_xts_key(k % 2 ? 64 : 32, gen);
    ASSERT_TRUE(XtsKey::create(raw[k].data(), raw[k].size(), &table[k]));
  }
  int cases = 0;
  for (uint32_t size : {512u, 1024u, 2048u, 4096u, 528u, 1008u, 4080u}) {
    for (Direction dir : {Direction::encrypt, Direction::decrypt}) {
      for (IvMode mode : {IvMode::plain64, IvMode::plain, IvMode::plain64be}) {
        // key choice: 0 = AES-128 only, 1 = AES-256 only, 2 = mixed keys and sizes
        for (int choice = 0; choice < 3; ++choice) {
          // Up to 64 sectors where they are small; fewer, still several steps, where large.
          const std::size_t segments = (size / 16 + 31) / 32;
          const std::size_t count = 1 + gen() % std::min<std::size_t>(64, 64 / segments + 8);
          std::vector<const XtsKey*> keys;
          std::vector<uint64_t> ivs;
          for (std::size_t i = 0; i < count; ++i) {
            keys.push_back(&table[choice < 2 ? static_cast<std::size_t>(choice) : gen() % table.size()]);
            ivs.push_back(i == 0 ? ~uint64_t{0} : gen());
          }
          const auto in = testing::random_bytes(count * size, gen);
          std::vector<uint8_t> ours(in.size(), 0xa5), inplace = in;
          emulate_group(keys, dir, mode, ivs, in.data(), ours.data(), size);
          emulate_group(keys, dir, mode, ivs, inplace.data(), inplace.data(), size);
          const std::string what = "size " + std::to_string(size) + " " + iv_mode_name(mode) +
                                   (dir == Direction::encrypt ? " enc" : " dec") + " keys " +
                                   std::to_string(choice) + " count " + std::to_string(count);
          const auto openssl = choice < 2 && size % 512 == 0
                                   ? peers::make_openssl_xts(raw[choice].data(), raw[choice].size(), dir)
                                   : nullptr;
          for (std::size_t i = 0; i < count; ++i) {
            uint8_t iv[16];
            make_iv(mode, ivs[i], iv);
            std::vector<uint8_t> want(size);
            ASSERT_TRUE(ref::xts_crypt_unit(*keys[i], dir, iv, in.data() + i * size, want.data(), size));
            ASSERT_EQ(0, std::memcmp(want.data(), ours.data() + i * size, size)) << what << " sector " << i;
            ASSERT_EQ(0, std::memcmp(want.data(), inplace.data() + i * size, size))
                << what << " in place, sector " << i;
            if (openssl) {
              std::vector<uint8_t> theirs(size);
              std::string error;
              ASSERT_TRUE(openssl->crypt_unit(iv, in.data() + i * size, theirs.data(), size, &error)) << error;
              ASSERT_EQ(0, std::memcmp(theirs.data(), ours.data() + i * size, size))
                  << what << " OpenSSL differs, sector " << i;
            }
          }
          ++cases;
        }
      }
    }
  }
  EXPECT_EQ(cases, 7 * 2 * 3 * 3);
}

}  // namespace
}  // namespace sectorcrypt
