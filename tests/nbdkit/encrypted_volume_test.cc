// The filter's data path and option parsing without nbdkit, against an in-memory lower
// device, so they also run under the sanitizers (the nbdkit.* tests load the filter into
// the system's nbdkit, which cannot take a sanitizer-built module): any byte range reads
// and writes like a plain array, the device holds exactly the reference XTS of it, lower
// failures are reported and never as success, and the range lock serialises only overlaps.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "engine/engine.h"
#include "host/nbdkit/encrypted_volume.h"
#include "host/nbdkit/filter_options.h"
#include "host/nbdkit/range_lock.h"
#include "kernels/xts_key.h"
#include "kernels/xts_reference.h"

namespace sectorcrypt::nbd {
namespace {

class MemoryDevice : public LowerDevice {
 public:
  explicit MemoryDevice(std::size_t bytes) : data(bytes) {}
  int pread(void* buf, uint32_t count, uint64_t offset, int* err) override {
    if (fail_reads || offset + count > data.size()) return *err = EIO, -1;
    std::memcpy(buf, data.data() + offset, count);
    return 0;
  }
  int pwrite(const void* buf, uint32_t count, uint64_t offset, bool fua, int* err) override {
    if (fail_writes || offset + count > data.size()) return *err = ENOSPC, -1;
    std::memcpy(data.data() + offset, buf, count);
    writes++;
    fua_writes += fua;
    return 0;
  }
  std::vector<uint8_t> data;
  bool fail_reads = false, fail_writes = false;
  int writes = 0, fua_writes = 0;
};

std::vector<uint8_t> random_bytes(std::size_t n, std::mt19937& rng) {
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

class VolumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EngineConfig config;
    config.backend = BackendKind::cpu;
    config.threads = 2;
    config.slot_count = 4;
    config.slot_bytes = 64 << 10;  // requests larger than a slot are split by the engine
    ASSERT_TRUE(Engine::create(config, &engine).ok());
    std::mt19937 rng(1);
    key_bytes = random_bytes(64, rng);
    ASSERT_TRUE(engine->add_key(key_bytes.data(), key_bytes.size(), KeyOptions{}, &key).ok());
  }
  std::unique_ptr<Engine> engine;
  std::vector<uint8_t> key_bytes;
  KeyHandle key;
};

TEST_F(VolumeTest, AnyByteRangeReadsWhatWasWrittenAndTheDeviceHoldsReferenceXts) {
  VolumeLayout layout;
  layout.format.sector_size = 4096;
  layout.data_offset = 3 * 512;  // the data need not start on a sector boundary below
  layout.iv_base = 40;
  constexpr std::size_t kVolume = 1 << 20;
  MemoryDevice dev(layout.data_offset + kVolume);
  EncryptedVolume vol(*engine, key, layout, 64 << 10);  // larger writes go in chunks
  std::vector<uint8_t> model(kVolume, 0);
  int err = 0;
  ASSERT_TRUE(vol.write_zeroes(dev, kVolume, 0, false, &err).ok());
  std::mt19937 rng(2);
  for (int i = 0; i < 400; ++i) {
    const uint32_t len = 1 + rng() % (i % 3 == 0 ? 200000 : 9000);
    const uint64_t off = rng() % (kVolume - len);
    if (i % 5 == 4) {
      ASSERT_TRUE(vol.write_zeroes(dev, len, off, false, &err).ok());
      std::fill(model.begin() + off, model.begin() + off + len, 0);
    } else {
      const auto buf = random_bytes(len, rng);
      Status s = vol.write(dev, buf.data(), len, off, false, &err);
      ASSERT_TRUE(s.ok()) << s.message();
      std::copy(buf.begin(), buf.end(), model.begin() + off);
    }
    const uint32_t rlen = 1 + rng() % 20000;
    const uint64_t roff = rng() % (kVolume - rlen);
    std::vector<uint8_t> got(rlen);
    ASSERT_TRUE(vol.read(dev, got.data(), rlen, roff, &err).ok());
    ASSERT_TRUE(std::equal(got.begin(), got.end(), model.begin() + roff)) << "op " << i;
  }
  XtsKey xts;
  ASSERT_TRUE(XtsKey::create(key_bytes.data(), key_bytes.size(), &xts).ok());
  std::vector<uint8_t> expected(kVolume);
  ASSERT_TRUE(ref::xts_crypt_sectors(xts, Direction::encrypt, layout.format, layout.iv_base,
                                     model.data(), expected.data(), kVolume).ok());
  EXPECT_TRUE(std::equal(expected.begin(), expected.end(), dev.data.begin() + layout.data_offset));
  EXPECT_TRUE(std::all_of(dev.data.begin(), dev.data.begin() + layout.data_offset,
                          [](uint8_t b) { return b == 0; }))
      << "bytes before the data were touched";
}

TEST_F(VolumeTest, LargeWritesGoInChunksWithFuaOnTheLast) {
  VolumeLayout layout;
  layout.format.sector_size = 4096;
  MemoryDevice dev(1 << 20);
  EncryptedVolume vol(*engine, key, layout, 64 << 10);
  std::mt19937 rng(3);
  const auto buf = random_bytes(300000, rng);
  int err = 0;
  ASSERT_TRUE(vol.write(dev, buf.data(), buf.size(), 1000, true, &err).ok());
  EXPECT_EQ(dev.writes, 5);  // 64 KiB - 1000 bytes, three of 64 KiB, the rest
  EXPECT_EQ(dev.fua_writes, 1);
  std::vector<uint8_t> got(buf.size());
  ASSERT_TRUE(vol.read(dev, got.data(), got.size(), 1000, &err).ok());
  EXPECT_EQ(got, buf);
}

TEST_F(VolumeTest, LowerFailuresAreReportedWithTheirErrno) {
  VolumeLayout layout;
  MemoryDevice dev(1 << 16);
  EncryptedVolume vol(*engine, key, layout);
  std::vector<uint8_t> buf(1000, 7);
  int err = 0;
  dev.fail_reads = true;
  Status s = vol.read(dev, buf.data(), 512, 0, &err);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(err, EIO);
  EXPECT_NE(std::string(s.message()).find("reading"), std::string::npos) << s.message();
  // An unaligned write needs its edge sectors: a failed read fails it, nothing written.
  err = 0;
  s = vol.write(dev, buf.data(), 100, 10, false, &err);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(err, EIO);
  EXPECT_EQ(dev.writes, 0);
  dev.fail_reads = false;
  dev.fail_writes = true;
  err = 0;
  s = vol.write(dev, buf.data(), 512, 512, true, &err);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(err, ENOSPC);
  EXPECT_NE(std::string(s.message()).find("writing"), std::string::npos) << s.message();
}

TEST_F(VolumeTest, ZeroesAreCiphertextAndFuaReachesOnlyTheLastChunk) {
  VolumeLayout layout;
  MemoryDevice dev(4 << 20);
  std::fill(dev.data.begin(), dev.data.end(), 0xaa);
  EncryptedVolume vol(*engine, key, layout);
  int err = 0;
  ASSERT_TRUE(vol.write_zeroes(dev, 3 << 20, 0, true, &err).ok());
  EXPECT_EQ(dev.fua_writes, 1);
  EXPECT_GE(dev.writes, 3);
  EXPECT_FALSE(std::all_of(dev.data.begin(), dev.data.begin() + 4096, [](uint8_t b) { return b == 0; }));
  std::vector<uint8_t> got(3 << 20, 1);
  ASSERT_TRUE(vol.read(dev, got.data(), got.size(), 0, &err).ok());
  EXPECT_TRUE(std::all_of(got.begin(), got.end(), [](uint8_t b) { return b == 0; }));
}

TEST(RangeLockTest, OverlapsWaitDisjointRangesDoNot) {
  RangeLock lock;
  lock.lock(0, 4096);
  std::atomic<bool> disjoint_done{false}, overlap_done{false};
  std::thread disjoint([&] {
    RangeGuard g(lock, 4096, 8192);  // touches, does not overlap
    disjoint_done = true;
  });
  std::thread overlap([&] {
    RangeGuard g(lock, 4095, 4097);
    overlap_done = true;
  });
  disjoint.join();
  EXPECT_TRUE(disjoint_done);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(overlap_done) << "an overlapping range did not wait";
  lock.unlock(0, 4096);
  overlap.join();
  EXPECT_TRUE(overlap_done);
  EXPECT_EQ(lock.held(), 0u);
}

TEST(FilterOptionsTest, EachBadValueIsNamedAndModesDoNotMix) {
  FilterOptions o;
  std::string error;
  EXPECT_EQ(apply_option("file", "x", &o, &error), 0);  // the plugin's, passed on
  EXPECT_EQ(apply_option("sector-size", "4096", &o, &error), 1);
  EXPECT_EQ(o.plain_format().sector_size, 4096u);
  EXPECT_EQ(apply_option("sector-size", "4000", &o, &error), -1);
  EXPECT_NE(error.find("sector-size=4000"), std::string::npos) << error;
  EXPECT_EQ(apply_option("offset", "18446744073709551615", &o, &error), -1);
  EXPECT_EQ(apply_option("threads", "-1", &o, &error), -1);
  EXPECT_EQ(o.engine.inline_max_bytes, std::size_t{4} << 20) << "the filter's default";
  EXPECT_EQ(apply_option("inline-max-bytes", "1000", &o, &error), -1);
  EXPECT_NE(error.find("inline-max-bytes=1000"), std::string::npos) << error;
  EXPECT_EQ(apply_option("inline-max-bytes", "0", &o, &error), 1);
  EXPECT_EQ(o.engine.inline_max_bytes, 0u);
  EXPECT_EQ(apply_option("cipher", "aes-xts-plain64be", &o, &error), 1);
  EXPECT_EQ(o.plain_format().iv_mode, IvMode::plain64be);
  EXPECT_FALSE(check_options(o, &error));
  EXPECT_NE(error.find("name the key"), std::string::npos) << error;
  o.key_file = std::string(1, 'k');  // (not = "k": GCC 12 warns -Wrestrict wrongly)
  EXPECT_TRUE(check_options(o, &error)) << error;
  o.has_passphrase = true;
  EXPECT_FALSE(check_options(o, &error));
  o.key_file.clear();
  EXPECT_FALSE(check_options(o, &error));
  EXPECT_NE(error.find("plain-mode option"), std::string::npos) << error;
}

}  // namespace
}  // namespace sectorcrypt::nbd
