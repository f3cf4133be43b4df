// Request::forward and SlotRequest::forward: the engine hands a binding's target
// function back untouched, with the caller's context and the final status, once per
// request; a request that sets both callback and forward.call is refused before anything
// is taken.
#include <atomic>

#include "tests/engine/engine_test_support.h"

namespace sectorcrypt::testing {
namespace {

// What a binding's caller would register: a function of the binding's own type.
using BindingFunction = void (*)(int code, void* context);

struct Calls {
  std::atomic<int> target_calls{0};
  std::atomic<int> forwarded{0};
  std::atomic<int> last_code{-1};
};

void binding_target(int code, void* context) {
  auto* c = static_cast<Calls*>(context);
  c->last_code = code;
  c->target_calls.fetch_add(1);
}

void forward_call(const Status& status, void (*target)(), void* context) {
  static_cast<Calls*>(context)->forwarded.fetch_add(1);
  reinterpret_cast<BindingFunction>(target)(static_cast<int>(status.code()), context);
}

void plain_callback(const Status&, void*) {}

ForwardedCallback forward_to_target() {
  ForwardedCallback f;
  f.call = &forward_call;
  f.target = reinterpret_cast<void (*)()>(&binding_target);
  return f;
}

TEST(EngineForwardedCallback, TargetAndContextComeBackOncePerRequest) {
  auto e = make_engine(small_config());
  ASSERT_TRUE(e);
  TestKey k = add_test_key(*e, 64, 21);
  auto buf = bytes_of(8 * 4096, 22);
  iovec segs[8];
  Calls calls;
  for (int i = 0; i < 8; ++i) {
    segs[i] = {buf.data() + i * 4096, 4096};
    Request r;
    r.key = k.handle;
    r.src = &segs[i];
    r.src_count = 1;
    r.forward = forward_to_target();
    r.user_context = &calls;
    r.post_completion = i % 2 == 0;  // forwarded and posted alike
    ASSERT_TRUE(e->submit(r).ok());
  }
  ASSERT_TRUE(e->drain().ok());
  EXPECT_EQ(calls.forwarded.load(), 8);
  EXPECT_EQ(calls.target_calls.load(), 8);
  EXPECT_EQ(calls.last_code.load(), static_cast<int>(Errc::ok));
  Completion c[8];
  EXPECT_EQ(e->poll(c, 8), 4u);

  SlotHandle slot;
  ASSERT_TRUE(e->acquire_slot(&slot).ok());
  SlotRequest sr;
  sr.key = k.handle;
  sr.bytes = 4096;
  sr.forward = forward_to_target();
  sr.user_context = &calls;
  ASSERT_TRUE(e->submit_slot(slot, sr).ok());
  ASSERT_TRUE(e->drain().ok());
  EXPECT_EQ(calls.target_calls.load(), 9);
  EXPECT_TRUE(e->release_slot(slot).ok());
}

TEST(EngineForwardedCallback, BothCallbackAndForwardAreRefused) {
  auto e = make_engine(small_config());
  ASSERT_TRUE(e);
  TestKey k = add_test_key(*e, 32, 23);
  auto buf = bytes_of(4096, 24);
  iovec seg{buf.data(), buf.size()};
  Request r;
  r.key = k.handle;
  r.src = &seg;
  r.src_count = 1;
  r.callback = &plain_callback;
  r.forward = forward_to_target();
  for (bool blocking : {true, false}) {
    const Status s = blocking ? e->submit(r) : e->try_submit(r);
    EXPECT_EQ(s.code(), Errc::invalid_buffer) << s.message();
    EXPECT_NE(std::string(s.message()).find("forward"), std::string::npos) << s.message();
  }
  SlotHandle slot;
  ASSERT_TRUE(e->acquire_slot(&slot).ok());
  SlotRequest sr;
  sr.key = k.handle;
  sr.bytes = 4096;
  sr.callback = &plain_callback;
  sr.forward = forward_to_target();
  EXPECT_EQ(e->submit_slot(slot, sr).code(), Errc::invalid_buffer);
  EXPECT_TRUE(e->release_slot(slot).ok());  // still lent, untouched
  EXPECT_EQ(e->stats().requests, 0u);
}

}  // namespace
}  // namespace sectorcrypt::testing
