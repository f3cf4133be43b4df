// Key hygiene (issue 7): a removed key's table entry is zeroed (read back from the
// released storage), equal XTS halves are refused by default on every path, no key
// byte appears in an error message, and slot memory is locked where the limit allows.
#include <sys/resource.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "engine/key_table.h"
#include "engine_test_support.h"
#include "tests/test_support.h"
#include "sectorcrypt.h"

namespace sectorcrypt::testing {
namespace {

bool all_zero(const void* p, std::size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  for (std::size_t i = 0; i < n; ++i) {
    if (b[i] != 0) return false;
  }
  return true;
}


// The engine's key table (Engine::remove_key is KeyTable::remove plus the backend's
// clear): the entry's storage, read after the remove, holds no key material.
TEST(KeyHygiene, RemovedTableEntryIsZeroed) {
  engine::KeyTable table;
  table.init(1);
  const auto raw = key_of(64, 5);
  KeyHandle h;
  ASSERT_TRUE(table.add(raw.data(), raw.size(), {}, nullptr, nullptr, &h).ok());
  const XtsKey& stored = table.key(0);
  ASSERT_FALSE(all_zero(&stored, sizeof stored));
  ASSERT_TRUE(table.remove(h, nullptr, nullptr).ok());
  EXPECT_TRUE(all_zero(&stored, sizeof stored)) << "key bytes left in a removed entry";
}

TEST(KeyHygiene, EqualHalvesRefusedByDefaultEverywhere) {
  auto e = make_engine(small_config());
  auto k = key_of(64, 6);
  std::memcpy(k.data() + 32, k.data(), 32);
  KeyHandle h;
  const Status s = e->add_key(k.data(), k.size(), {}, &h);
  EXPECT_EQ(s.code(), Errc::invalid_key);
  EXPECT_EQ(std::string(s.message()).find(to_hex(k.data(), 8)), std::string::npos) << s.message();

  sectorcrypt_config cfg;
  sectorcrypt_config_init(&cfg);
  cfg.backend = SECTORCRYPT_BACKEND_CPU;
  sectorcrypt_engine* ce = nullptr;
  ASSERT_EQ(sectorcrypt_create(&cfg, &ce), SECTORCRYPT_OK);
  sectorcrypt_key ck = 0;
  EXPECT_EQ(sectorcrypt_add_key(ce, k.data(), k.size(), 0, &ck), SECTORCRYPT_EINVAL_KEY);
  const std::string msg = sectorcrypt_last_error();
  EXPECT_EQ(msg.find(to_hex(k.data(), 8)), std::string::npos) << msg;
  EXPECT_EQ(msg.find(std::string(reinterpret_cast<const char*>(k.data()), 8)), std::string::npos);
  // A good key through the C API, then removed: its handle is dead.
  const auto good = key_of(32, 7);
  ASSERT_EQ(sectorcrypt_add_key(ce, good.data(), good.size(), 0, &ck), SECTORCRYPT_OK);
  EXPECT_EQ(sectorcrypt_remove_key(ce, ck), SECTORCRYPT_OK);
  EXPECT_EQ(sectorcrypt_remove_key(ce, ck), SECTORCRYPT_EINVAL_KEY);
  EXPECT_EQ(std::string(sectorcrypt_last_error()).find(to_hex(good.data(), 8)), std::string::npos);
  sectorcrypt_destroy(ce);
}

TEST(KeyHygiene, KeyErrorsNeverEchoKeyBytes) {
  auto e = make_engine(small_config());
  for (std::size_t len : {0u, 1u, 16u, 31u, 33u, 48u, 63u, 65u, 128u}) {
    auto k = key_of(std::max<std::size_t>(len, 8), 100 + len);
    KeyHandle h;
    const Status s = e->add_key(k.data(), len, {}, &h);
    EXPECT_EQ(s.code(), Errc::invalid_key) << len;
    const std::string m = s.message();
    EXPECT_EQ(m.find(to_hex(k.data(), 4)), std::string::npos) << m;
  }
}

TEST(KeyHygiene, SlotMemoryIsLockedWhereTheLimitAllows) {
  rlimit lim{};
  ASSERT_EQ(getrlimit(RLIMIT_MEMLOCK, &lim), 0);
  EngineConfig c = small_config();
  const std::size_t need = c.slot_count * c.slot_bytes;
  if (geteuid() != 0 && lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < 2 * need) {
    GTEST_SKIP() << "RLIMIT_MEMLOCK " << lim.rlim_cur << " too small, not root";
  }
  c.require_locked_memory = true;
  auto e = make_engine(c);
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(e->memory_locked()) << e->memory_detail();
  EXPECT_TRUE(e->stats().memory_locked);
}

}  // namespace
}  // namespace sectorcrypt::testing
