// Bad input, one row per class (issue 7): each is refused up front with its own clear
// error, no completion follows, and the output buffer is untouched. CLI classes (bad
// cipher, short key file, equal key halves in a key file, ...) are in
// tests/cli/cli_errors_test.cc; the kernel-level ones in tests/bad_input_test.cc.
#include <cstring>
#include <functional>
#include <set>
#include <string>

#include "engine_test_support.h"
#include "tests/test_support.h"

namespace sectorcrypt::testing {
namespace {

struct Fixture {
  std::unique_ptr<Engine> e;
  KeyHandle key;
  std::vector<uint8_t> raw_key;
  std::vector<uint8_t> src, dst;
  std::atomic<int> completions{0};
  iovec sv[kMaxSegments + 1] = {}, dv[kMaxSegments + 1] = {};

  static void on_done(const Status&, void* p) {
    static_cast<Fixture*>(p)->completions.fetch_add(1);
  }
  Request request() {
    sv[0] = {src.data(), src.size()};
    dv[0] = {dst.data(), dst.size()};
    Request r;
    r.key = key;
    r.src = sv;
    r.src_count = 1;
    r.dst = dv;
    r.dst_count = 1;
    r.callback = &on_done;
    r.user_context = this;
    return r;
  }
};

struct BadClass {
  const char* area;
  const char* name;
  Errc want;
  const char* says;  // a word the message must contain
  std::function<Status(Fixture&)> run;
};

Status add(Fixture& f, std::vector<uint8_t> k) {
  KeyHandle h;
  return f.e->add_key(k.data(), k.size(), {}, &h);
}

const std::vector<BadClass>& classes() {
  static const std::vector<BadClass> all = {
      {"key", "length 31", Errc::invalid_key, "needs 32",
       [](Fixture& f) { return add(f, key_of(31, 1)); }},
      {"key", "length 48", Errc::invalid_key, "needs 32",
       [](Fixture& f) { return add(f, key_of(48, 1)); }},
      {"key", "equal halves", Errc::invalid_key, "halves",
       [](Fixture& f) {
         auto k = key_of(64, 2);
         std::memcpy(k.data() + 32, k.data(), 32);
         return add(f, k);
       }},
      {"key", "null key", Errc::invalid_key, "null",
       [](Fixture& f) {
         KeyHandle h;
         return f.e->add_key(nullptr, 64, {}, &h);
       }},
      {"format", "sector size 520", Errc::invalid_format, "sector size",
       [](Fixture& f) {
         Request r = f.request();
         r.format.sector_size = 520;
         return f.e->submit(r);
       }},
      {"format", "IV mode value 7", Errc::invalid_format, "IV",
       [](Fixture& f) {
         Request r = f.request();
         r.format.iv_mode = static_cast<IvMode>(7);
         return f.e->submit(r);
       }},
      {"length", "not whole sectors", Errc::invalid_length, "sector",
       [](Fixture& f) {
         Request r = f.request();
         f.sv[0].iov_len = 1000;
         f.dv[0].iov_len = 1000;
         return f.e->submit(r);
       }},
      {"length", "no segments", Errc::invalid_length, "segment",
       [](Fixture& f) {
         Request r = f.request();
         r.src_count = 0;
         return f.e->submit(r);
       }},
      {"length", "empty segment", Errc::invalid_length, "segment",
       [](Fixture& f) {
         Request r = f.request();
         f.sv[0].iov_len = 0;
         return f.e->submit(r);
       }},
      {"length", "dst total != src total", Errc::invalid_length, "",
       [](Fixture& f) {
         Request r = f.request();
         f.dv[0].iov_len = 512;
         return f.e->submit(r);
       }},
      {"length", "too many segments", Errc::invalid_length, "segment",
       [](Fixture& f) {
         Request r = f.request();
         for (std::size_t i = 0; i <= kMaxSegments; ++i) f.sv[i] = {f.src.data() + i * 512, 512};
         r.src_count = kMaxSegments + 1;
         return f.e->submit(r);
       }},
      {"buffer", "null source", Errc::invalid_buffer, "null",
       [](Fixture& f) {
         Request r = f.request();
         f.sv[0].iov_base = nullptr;
         return f.e->submit(r);
       }},
      {"buffer", "dst overlaps src", Errc::invalid_buffer, "overlap",
       [](Fixture& f) {
         Request r = f.request();
         f.sv[0] = {f.dst.data(), 4096};
         f.dv[0] = {f.dst.data() + 512, 4096};
         return f.e->submit(r);
       }},
      {"buffer", "misaligned start, iv_large_sectors", Errc::invalid_buffer, "",
       [](Fixture& f) {
         Request r = f.request();
         r.format.sector_size = 4096;
         r.format.iv_large_sectors = true;
         r.start_sector = 3;
         return f.e->submit(r);
       }},
      {"handle", "removed key", Errc::invalid_key, "removed",
       [](Fixture& f) {
         KeyHandle h;
         auto k = key_of(32, 3);
         EXPECT_TRUE(f.e->add_key(k.data(), k.size(), {}, &h).ok());
         EXPECT_TRUE(f.e->remove_key(h).ok());
         Request r = f.request();
         r.key = h;
         return f.e->submit(r);
       }},
      {"handle", "unknown key", Errc::invalid_key, "",
       [](Fixture& f) {
         Request r = f.request();
         r.key = KeyHandle{0xdead0001};
         return f.e->submit(r);
       }},
      {"handle", "unknown slot", Errc::invalid_buffer, "slot",
       [](Fixture& f) {
         SlotHandle h;
         h.index = 999;
         SlotRequest sr;
         sr.key = f.key;
         sr.bytes = 512;
         return f.e->submit_slot(h, sr);
       }},
      {"handle", "slot released twice", Errc::invalid_buffer, "not lent",
       [](Fixture& f) {
         SlotHandle h;
         EXPECT_TRUE(f.e->acquire_slot(&h).ok());
         EXPECT_TRUE(f.e->release_slot(h).ok());
         return f.e->release_slot(h);
       }},
      {"handle", "slot handle kept after release, slot lent again", Errc::invalid_buffer,
       "stale slot handle",
       [](Fixture& f) {
         SlotHandle old_h, new_h;
         EXPECT_TRUE(f.e->acquire_slot(&old_h).ok());
         EXPECT_TRUE(f.e->release_slot(old_h).ok());
         // Take every slot, so the old handle's slot is lent to the new owner for sure.
         std::vector<SlotHandle> all;
         SlotHandle h;
         while (f.e->try_acquire_slot(&h).ok()) all.push_back(h);
         for (const SlotHandle& x : all) {
           if (x.index == old_h.index) new_h = x;
         }
         EXPECT_EQ(new_h.index, old_h.index);
         EXPECT_NE(new_h.generation, old_h.generation);
         const Status release_old = f.e->release_slot(old_h);  // must not free new_h's slot
         SlotRequest sr;
         sr.key = f.key;
         sr.bytes = 512;
         EXPECT_EQ(f.e->submit_slot(old_h, sr).code(), Errc::invalid_buffer);
         for (const SlotHandle& x : all) EXPECT_TRUE(f.e->release_slot(x).ok());  // all still lent
         return release_old;
       }},
      {"length", "zero-copy over the slot's capacity", Errc::invalid_length, "",
       [](Fixture& f) {
         SlotHandle h;
         EXPECT_TRUE(f.e->acquire_slot(&h).ok());
         SlotRequest sr;
         sr.key = f.key;
         sr.bytes = h.capacity + 512;
         const Status s = f.e->submit_slot(h, sr);
         EXPECT_TRUE(f.e->release_slot(h).ok());
         return s;
       }},
      {"lifecycle", "submit after shutdown", Errc::shut_down, "shut",
       [](Fixture& f) {
         f.e->shutdown();
         return f.e->submit(f.request());
       }},
  };
  return all;
}


TEST(BadInputClasses, EachIsAClearErrorWithOutputUntouched) {
  Watchdog w(std::chrono::seconds(60), "bad input classes");
  std::set<std::string> distinct;
  for (const BadClass& c : classes()) {
    SCOPED_TRACE(std::string(c.area) + ": " + c.name);
    Fixture f;
    f.e = make_engine(small_config());
    f.raw_key = key_of(64, 99);
    ASSERT_TRUE(f.e->add_key(f.raw_key.data(), f.raw_key.size(), {}, &f.key).ok());
    f.src = bytes_of(16 * 1024, 1);
    f.dst.assign(f.src.size(), 0xc3);
    const auto src_before = f.src, dst_before = f.dst;
    const Status s = c.run(f);
    EXPECT_EQ(s.code(), c.want) << s.message();
    EXPECT_NE(std::string(s.message()).find(c.says), std::string::npos)
        << c.name << ": " << s.message();
    // No key bytes in any message (hex or raw), for the engine's key or the bad one.
    EXPECT_EQ(std::string(s.message()).find(to_hex(f.raw_key).substr(0, 12)), std::string::npos);
    (void)f.e->drain();
    EXPECT_EQ(f.completions.load(), 0) << "a refused request completed";
    EXPECT_EQ(f.src, src_before);
    EXPECT_EQ(f.dst, dst_before) << "output written for a refused request";
    distinct.insert(std::string(c.area) + "/" + c.name);
  }
  std::printf("%zu distinct bad-input classes refused (plus the CLI's in cli_errors_test)\n",
              distinct.size());
  EXPECT_GE(distinct.size(), 12u);
}

}  // namespace
}  // namespace sectorcrypt::testing
