// The size members of the C structs: the library never reads or writes past the size a
// caller was compiled with, takes missing members as their defaults, zero-fills members a
// newer caller has and it does not know, and refuses a newer caller's setting it cannot
// honour. (tests/capi/old_layout_caller.c does the same from C against the shared
// library.)
#include <sectorcrypt.h>

#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "tests/capi/guarded_struct.h"
#include "tests/test_support.h"

namespace {

using sectorcrypt::capitest::Guarded;

constexpr std::size_t kOldConfigSize = offsetof(sectorcrypt_config, gpu_aes);
constexpr std::size_t kOldStatsSize = offsetof(sectorcrypt_stats, submit_waits);

TEST(CApiStructSize, OlderConfigLayoutGetsDefaultsForTheRest) {
  Guarded<sectorcrypt_config> old(kOldConfigSize);
  sectorcrypt_config_init_sized(old.get(), old.size);
  EXPECT_TRUE(old.guard_intact());
  EXPECT_EQ(old.get()->size, kOldConfigSize);
  old.get()->backend = SECTORCRYPT_BACKEND_CPU;
  old.get()->threads = 1;
  sectorcrypt_engine* e = nullptr;
  ASSERT_EQ(sectorcrypt_create(old.get(), &e), SECTORCRYPT_OK) << sectorcrypt_last_error();

  Guarded<sectorcrypt_config> got(kOldConfigSize);
  ASSERT_EQ(sectorcrypt_get_config_sized(e, got.get(), got.size), SECTORCRYPT_OK);
  EXPECT_TRUE(got.guard_intact());
  EXPECT_EQ(got.get()->threads, 1u);
  sectorcrypt_config full;
  ASSERT_EQ(sectorcrypt_get_config(e, &full), SECTORCRYPT_OK);
  EXPECT_EQ(full.gpu_aes, SECTORCRYPT_GPU_AES_CONSTANT_TIME);  // appended: the defaults
  EXPECT_EQ(full.max_parts_per_batch, 256u);  // min(slot_bytes / 512, 256), resolved

  Guarded<sectorcrypt_stats> st(kOldStatsSize);
  ASSERT_EQ(sectorcrypt_get_stats_sized(e, st.get(), st.size), SECTORCRYPT_OK);
  EXPECT_TRUE(st.guard_intact());
  EXPECT_EQ(sectorcrypt_get_stats_sized(e, st.get(), kOldStatsSize - 8), SECTORCRYPT_EINVAL);
  EXPECT_EQ(sectorcrypt_get_config_sized(e, got.get(), kOldConfigSize - 4), SECTORCRYPT_EINVAL);
  sectorcrypt_destroy(e);
}

TEST(CApiStructSize, TooSmallOrUnknownMembersAreRefused) {
  sectorcrypt_engine* e = nullptr;
  Guarded<sectorcrypt_config> small(kOldConfigSize - sizeof(int));
  sectorcrypt_config_init_sized(small.get(), small.size);
  EXPECT_TRUE(small.guard_intact());
  EXPECT_EQ(sectorcrypt_create(small.get(), &e), SECTORCRYPT_EINVAL);
  EXPECT_NE(std::string(sectorcrypt_last_error()).find("smaller"), std::string::npos);

  sectorcrypt_config zero{};  // never initialised
  EXPECT_EQ(sectorcrypt_create(&zero, &e), SECTORCRYPT_EINVAL);
  EXPECT_NE(std::string(sectorcrypt_last_error()).find("init"), std::string::npos);
  // Garbage in size: refused without reading past the struct (ASan would see that).
  sectorcrypt_config garbage;
  sectorcrypt_config_init(&garbage);
  garbage.size = std::size_t{1} << 40;
  EXPECT_EQ(sectorcrypt_create(&garbage, &e), SECTORCRYPT_EINVAL);
  EXPECT_NE(std::string(sectorcrypt_last_error()).find("init"), std::string::npos);

  // A newer caller: members past this library's set to nonzero are refused, zero is fine.
  struct Newer {
    sectorcrypt_config known;
    uint64_t future_member;
  } newer;
  sectorcrypt_config_init_sized(&newer.known, sizeof newer);
  EXPECT_EQ(newer.future_member, 0u);  // zero-filled by init
  newer.known.backend = SECTORCRYPT_BACKEND_CPU;
  newer.known.threads = 1;
  newer.future_member = 3;
  EXPECT_EQ(sectorcrypt_create(&newer.known, &e), SECTORCRYPT_EINVAL);
  EXPECT_NE(std::string(sectorcrypt_last_error()).find("does not know"), std::string::npos);
  EXPECT_EQ(e, nullptr);
  newer.future_member = 0;
  ASSERT_EQ(sectorcrypt_create(&newer.known, &e), SECTORCRYPT_OK) << sectorcrypt_last_error();
  sectorcrypt_request req;
  sectorcrypt_request_init(&req);
  req.size = sizeof req + 4096;
  EXPECT_EQ(sectorcrypt_try_submit(e, &req), SECTORCRYPT_EINVAL);
  EXPECT_NE(std::string(sectorcrypt_last_error()).find("large"), std::string::npos);

  // Outputs to a newer caller: what this library knows, then zeros.
  struct NewerStats {
    sectorcrypt_stats known;
    uint64_t future_member;
  } nst;
  nst.future_member = ~0ull;
  ASSERT_EQ(sectorcrypt_get_stats_sized(e, &nst.known, sizeof nst), SECTORCRYPT_OK);
  EXPECT_EQ(nst.future_member, 0u);

  // Polled completions in an array of larger elements: the library steps by their size.
  const auto raw = sectorcrypt::testing::random_xts_key(32);
  sectorcrypt_key k = 0;
  ASSERT_EQ(sectorcrypt_add_key(e, raw.data(), raw.size(), 0, &k), SECTORCRYPT_OK);
  std::vector<uint8_t> buf(2 * 512);
  iovec segs[2] = {{buf.data(), 512}, {buf.data() + 512, 512}};
  for (int i = 0; i < 2; ++i) {
    sectorcrypt_request r;
    sectorcrypt_request_init(&r);
    r.key = k;
    r.src = &segs[i];
    r.src_count = 1;
    r.user_data = &segs[i];
    r.flags = SECTORCRYPT_REQ_POLL | SECTORCRYPT_REQ_FLUSH;
    ASSERT_EQ(sectorcrypt_submit(e, &r), SECTORCRYPT_OK) << sectorcrypt_last_error();
  }
  ASSERT_EQ(sectorcrypt_drain(e), SECTORCRYPT_OK);
  struct NewerCompletion {
    sectorcrypt_completion known;
    uint64_t future_member;
  } nc[3];
  std::memset(nc, 0xee, sizeof nc);
  ASSERT_EQ(sectorcrypt_poll_sized(e, &nc[0].known, 3, sizeof nc[0]), 2);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(nc[i].known.status, SECTORCRYPT_OK);
    EXPECT_EQ(nc[i].known.user_data, &segs[i]);
    EXPECT_EQ(nc[i].known.bytes, 512u);
    EXPECT_EQ(nc[i].future_member, 0u);
  }
  EXPECT_EQ(nc[2].future_member, 0xeeeeeeeeeeeeeeeeull);  // untouched: not filled
  EXPECT_EQ(sectorcrypt_poll_sized(e, &nc[0].known, 1, sizeof(sectorcrypt_completion) - 8),
            SECTORCRYPT_EINVAL);
  sectorcrypt_destroy(e);
}

TEST(CApiStructSize, InitNeverWritesPastTheGivenSize) {
  Guarded<sectorcrypt_request> req(sizeof(sectorcrypt_request));
  sectorcrypt_request_init_sized(req.get(), req.size);
  EXPECT_TRUE(req.guard_intact());
  EXPECT_EQ(req.get()->size, sizeof(sectorcrypt_request));
  EXPECT_EQ(req.get()->format.sector_size, 512u);
  Guarded<sectorcrypt_slot_request> sreq(sizeof(sectorcrypt_slot_request));
  sectorcrypt_slot_request_init_sized(sreq.get(), sreq.size);
  EXPECT_TRUE(sreq.guard_intact());
  Guarded<sectorcrypt_config> cfg(16);
  sectorcrypt_config_init_sized(cfg.get(), cfg.size);
  EXPECT_TRUE(cfg.guard_intact());
}

// The GPU list (appended after inline_max_bytes): a caller without it gets the one GPU
// gpu_ordinal; a count past SECTORCRYPT_MAX_GPUS or a negative ordinal is refused before
// any GPU is looked for; on the CPU a list is kept and handed back as given.
TEST(CApiStructSize, GpuOrdinalListIsReadAndChecked) {
  Guarded<sectorcrypt_config> before(offsetof(sectorcrypt_config, gpu_ordinal_count));
  sectorcrypt_config_init_sized(before.get(), before.size);
  EXPECT_TRUE(before.guard_intact());
  sectorcrypt_config c;
  sectorcrypt_config_init(&c);
  EXPECT_EQ(c.gpu_ordinal_count, 0u);
  EXPECT_EQ(c.gpu_ordinal, 0);
  for (int o : c.gpu_ordinals) EXPECT_EQ(o, 0);

  c.backend = SECTORCRYPT_BACKEND_CPU;
  c.threads = 1;
  sectorcrypt_engine* e = nullptr;
  c.gpu_ordinal_count = SECTORCRYPT_MAX_GPUS + 1;
  EXPECT_EQ(sectorcrypt_create(&c, &e), SECTORCRYPT_EINVAL_LENGTH);
  EXPECT_NE(std::string(sectorcrypt_last_error()).find("gpu_ordinal_count"), std::string::npos);
  c.gpu_ordinal_count = 2;
  c.gpu_ordinals[0] = 0;
  c.gpu_ordinals[1] = -3;
  EXPECT_EQ(sectorcrypt_create(&c, &e), SECTORCRYPT_EINVAL_LENGTH);
  EXPECT_NE(std::string(sectorcrypt_last_error()).find("gpu_ordinals[1] = -3"), std::string::npos)
      << sectorcrypt_last_error();
  EXPECT_EQ(e, nullptr);

  c.gpu_ordinals[1] = 0;  // GPU 0 twice: the test mode, fine to list
  ASSERT_EQ(sectorcrypt_create(&c, &e), SECTORCRYPT_OK) << sectorcrypt_last_error();
  sectorcrypt_config got;
  ASSERT_EQ(sectorcrypt_get_config(e, &got), SECTORCRYPT_OK);
  EXPECT_EQ(got.gpu_ordinal_count, 2u);
  EXPECT_EQ(got.gpu_ordinals[0], 0);
  EXPECT_EQ(got.gpu_ordinals[1], 0);
  sectorcrypt_destroy(e);

  // Asking the cuda backend for the list: here without a GPU it says none is usable.
  c.backend = SECTORCRYPT_BACKEND_CUDA;
  e = nullptr;
  const int rc = sectorcrypt_create(&c, &e);
  if (rc == SECTORCRYPT_OK) {
    sectorcrypt_destroy(e);
    GTEST_SKIP() << "a GPU is usable here; engine_multi_gpu tests cover it";
  }
  EXPECT_EQ(rc, SECTORCRYPT_EUNAVAILABLE) << sectorcrypt_last_error();
}

}  // namespace
