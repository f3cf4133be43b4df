// Bad requests are refused synchronously with a clear invalid_* (never would_block),
// before anything is taken: no completion, output untouched. Bad configs fail create.
#include <sys/resource.h>
#include <unistd.h>

#include "tests/engine/engine_test_support.h"

namespace sectorcrypt::testing {
namespace {

class EngineBadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    EngineConfig c = small_config();
    c.flush_deadline_us = 50;
    e_ = make_engine(c);
    k_ = add_test_key(*e_, 32, 1);
    in_ = bytes_of(8192, 2);
    out_.assign(8192, 0xab);
    sv_ = {in_.data(), in_.size()};
    dv_ = {out_.data(), out_.size()};
    base_.key = k_.handle;
    base_.src = &sv_;
    base_.src_count = 1;
    base_.dst = &dv_;
    base_.dst_count = 1;
    base_.callback = &CompletionLog::on_done;
    base_.user_context = &ctx_;
  }
  // Submits r with submit and try_submit; both must give `code`, no completion may
  // follow, and out_ must be untouched.
  void expect_refused(const Request& r, Errc code, const char* what) {
    const Status a = e_->submit(r);
    const Status b = e_->try_submit(r);
    EXPECT_EQ(a.code(), code) << what << ": " << a.message();
    EXPECT_EQ(b.code(), code) << what << ": " << b.message();
    EXPECT_STRNE(a.message(), "") << what;
    ASSERT_TRUE(e_->drain().ok());
    EXPECT_EQ(log_.count[0].load(), 0) << what;
    EXPECT_EQ(out_, std::vector<uint8_t>(8192, 0xab)) << what;
    std::printf("  %-28s -> %s: %s\n", what, errc_name(a.code()), a.message());
  }

  std::unique_ptr<Engine> e_;
  TestKey k_;
  std::vector<uint8_t> in_, out_;
  iovec sv_{}, dv_{};
  Request base_;
  CompletionLog log_{1};
  CompletionLog::Ctx ctx_{&log_, 0};
};

TEST_F(EngineBadInput, KeyHandles) {
  Request r = base_;
  r.key = KeyHandle{};
  expect_refused(r, Errc::invalid_key, "null key handle");
  r.key = KeyHandle{0x12345678900ull};
  expect_refused(r, Errc::invalid_key, "made-up key handle");
  TestKey gone = add_test_key(*e_, 64, 5);
  ASSERT_TRUE(e_->remove_key(gone.handle).ok());
  r.key = gone.handle;
  expect_refused(r, Errc::invalid_key, "removed key handle");
}

TEST_F(EngineBadInput, Formats) {
  Request r = base_;
  r.format.sector_size = 1000;
  expect_refused(r, Errc::invalid_format, "sector size 1000");
  r.format.sector_size = 8192;
  expect_refused(r, Errc::invalid_format, "sector size 8192");
  r = base_;
  r.format.iv_mode = static_cast<IvMode>(7);
  expect_refused(r, Errc::invalid_format, "unknown IV mode");
}

TEST_F(EngineBadInput, Lengths) {
  Request r = base_;
  r.src_count = 0;
  expect_refused(r, Errc::invalid_length, "no source segments");
  iovec many[kMaxSegments + 1];
  for (auto& v : many) v = {in_.data(), 512};
  r = base_;
  r.src = many;
  r.src_count = kMaxSegments + 1;
  expect_refused(r, Errc::invalid_length, "too many segments");
  iovec odd{in_.data(), 1000};
  r = base_;
  r.src = &odd;
  expect_refused(r, Errc::invalid_length, "not whole sectors");
  iovec empty{in_.data(), 0};
  r = base_;
  r.src = &empty;
  expect_refused(r, Errc::invalid_length, "empty segment");
  iovec short_dst{out_.data(), 4096};
  r = base_;
  r.dst = &short_dst;
  expect_refused(r, Errc::invalid_length, "destination size mismatch");
}

TEST_F(EngineBadInput, Buffers) {
  Request r = base_;
  iovec null_src{nullptr, 512};
  r.src = &null_src;
  expect_refused(r, Errc::invalid_buffer, "null source base");
  r = base_;
  r.src = nullptr;
  expect_refused(r, Errc::invalid_buffer, "null source list");
  // Destination overlapping the source without being in place.
  std::vector<uint8_t> both(16384, 0);
  iovec s{both.data(), 8192}, d{both.data() + 4096, 8192};
  r = base_;
  r.src = &s;
  r.dst = &d;
  expect_refused(r, Errc::invalid_buffer, "partly overlapping buffers");
  iovec same{both.data(), 8192};
  r.dst = &same;
  expect_refused(r, Errc::invalid_buffer, "dst list equal to src list");
  iovec d2[2] = {{out_.data(), 4096}, {out_.data() + 512, 4096}};
  r = base_;
  r.dst = d2;
  r.dst_count = 2;
  expect_refused(r, Errc::invalid_buffer, "overlapping dst segments");
  r = base_;
  r.format = SectorFormat{4096, IvMode::plain64, true};
  r.start_sector = 3;
  expect_refused(r, Errc::invalid_buffer, "misaligned large-sector start");
}

TEST_F(EngineBadInput, SubmitAfterShutdown) {
  e_->shutdown();
  const Status s = e_->submit(base_);
  EXPECT_EQ(s.code(), Errc::shut_down) << s.message();
  EXPECT_EQ(e_->try_submit(base_).code(), Errc::shut_down);
  EXPECT_EQ(log_.count[0].load(), 0);
  EXPECT_EQ(out_, std::vector<uint8_t>(8192, 0xab));
}

TEST(EngineBadConfig, SizesOutOfRange) {
  std::unique_ptr<Engine> e;
  EngineConfig c = small_config();
  c.slot_bytes = 1000;
  EXPECT_EQ(Engine::create(c, &e).code(), Errc::invalid_length);
  c = small_config();
  c.slot_count = 0;
  EXPECT_EQ(Engine::create(c, &e).code(), Errc::invalid_length);
  c = small_config();
  c.key_capacity = 0;
  EXPECT_EQ(Engine::create(c, &e).code(), Errc::invalid_length);
  EXPECT_EQ(e, nullptr);
}

// require_locked_memory names the limit. Root may lock past RLIMIT_MEMLOCK, so the child
// drops to an unprivileged user first when it is root.
// Runs in the death-test child: exits 0 when create behaves.
[[noreturn]] void locked_memory_child() {
  if (geteuid() == 0 && setuid(65534) != 0) _exit(3);
  rlimit lim{64 * 1024, 64 * 1024};
  if (setrlimit(RLIMIT_MEMLOCK, &lim) != 0) _exit(4);
  EngineConfig c = small_config();
  c.slot_count = 4;
  c.slot_bytes = 1 << 20;
  c.require_locked_memory = true;
  std::unique_ptr<Engine> e;
  const Status s = Engine::create(c, &e);
  std::fprintf(stderr, "%s: %s\n", errc_name(s.code()), s.message());
  if (s.code() != Errc::resource_exhausted) _exit(5);
  if (!std::strstr(s.message(), "RLIMIT_MEMLOCK") || !std::strstr(s.message(), "ulimit -l") ||
      !std::strstr(s.message(), "64 KiB")) {
    _exit(6);
  }
  // Without the requirement the engine runs and says its memory is not locked.
  c.require_locked_memory = false;
  if (!Engine::create(c, &e).ok() || e->memory_locked() || e->stats().memory_locked) _exit(7);
  if (!std::strstr(e->memory_detail(), "not locked")) _exit(8);
  _exit(0);
}

TEST(EngineBadConfig, RequireLockedMemoryNamesTheLimit) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(locked_memory_child(), ::testing::ExitedWithCode(0), "RLIMIT_MEMLOCK");
}

}  // namespace
}  // namespace sectorcrypt::testing
