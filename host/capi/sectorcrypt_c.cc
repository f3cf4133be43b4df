// The C ABI over sectorcrypt::Engine. Every entry point catches everything: no C++
// exception reaches a C caller. Per-request C callbacks travel through a table of bridge
// records allocated at create (the engine's callbacks carry one pointer), so submitting
// still allocates nothing.
#include "host/include/sectorcrypt.h"

#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <vector>

#include "engine/engine.h"

using sectorcrypt::Errc;
using sectorcrypt::Status;

namespace {

// The calling thread's last error message (static storage: no allocation).
thread_local char t_last_error[256];

int code_of(Errc e) {
  switch (e) {
    case Errc::ok: return SECTORCRYPT_OK;
    case Errc::invalid_key: return SECTORCRYPT_EINVAL_KEY;
    case Errc::invalid_format: return SECTORCRYPT_EINVAL_FORMAT;
    case Errc::invalid_length: return SECTORCRYPT_EINVAL_LENGTH;
    case Errc::invalid_buffer: return SECTORCRYPT_EINVAL_BUFFER;
    case Errc::would_block: return SECTORCRYPT_EWOULDBLOCK;
    case Errc::shut_down: return SECTORCRYPT_ESHUTDOWN;
    case Errc::backend_failure: return SECTORCRYPT_EBACKEND;
    case Errc::unavailable: return SECTORCRYPT_EUNAVAILABLE;
    case Errc::resource_exhausted: return SECTORCRYPT_ENOMEM;
    case Errc::internal: return SECTORCRYPT_EINTERNAL;
  }
  return SECTORCRYPT_EINTERNAL;
}

int fail(int code, const char* message) {
  std::snprintf(t_last_error, sizeof t_last_error, "%s", message);
  return code;
}

int result(const Status& s) {
  if (s.ok()) return SECTORCRYPT_OK;
  return fail(code_of(s.code()), s.message());
}

// Runs `body` (returning int) with every exception turned into a code.
template <typename F>
int guarded(F&& body) {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return fail(SECTORCRYPT_ENOMEM, "out of memory");
  } catch (const std::exception& e) {
    return fail(SECTORCRYPT_EINTERNAL, e.what());
  } catch (...) {
    return fail(SECTORCRYPT_EINTERNAL, "unknown exception");
  }
}

bool to_format(const sectorcrypt_format* in, sectorcrypt::SectorFormat* out) {
  if (in == nullptr || in->iv_mode < 0 || in->iv_mode > 2) return false;
  out->sector_size = in->sector_size;
  out->iv_mode = static_cast<sectorcrypt::IvMode>(in->iv_mode);
  out->iv_large_sectors = in->iv_large_sectors != 0;
  return true;
}

bool to_direction(int d, sectorcrypt::Direction* out) {
  if (d != SECTORCRYPT_ENCRYPT && d != SECTORCRYPT_DECRYPT) return false;
  *out = d == SECTORCRYPT_ENCRYPT ? sectorcrypt::Direction::encrypt : sectorcrypt::Direction::decrypt;
  return true;
}

}  // namespace

struct sectorcrypt_engine {
  struct Bridge {
    sectorcrypt_engine* owner;
    uint32_t index;
    sectorcrypt_callback callback;
    void* user_data;
  };

  std::unique_ptr<sectorcrypt::Engine> engine;
  std::vector<Bridge> bridges;
  std::vector<uint32_t> free_bridges;  // a stack; capacity reserved at create
  std::mutex mu;
  std::condition_variable cv;

  Bridge* take_bridge(bool wait) {
    std::unique_lock lock(mu);
    if (wait) cv.wait(lock, [&] { return !free_bridges.empty(); });
    if (free_bridges.empty()) return nullptr;
    Bridge* b = &bridges[free_bridges.back()];
    free_bridges.pop_back();
    return b;
  }
  void give_back(Bridge* b) {
    std::lock_guard lock(mu);
    free_bridges.push_back(b->index);  // never exceeds the reserved capacity
    cv.notify_one();
  }
  static void trampoline(const Status& s, void* ctx) {
    auto* b = static_cast<Bridge*>(ctx);
    const sectorcrypt_callback cb = b->callback;
    void* user = b->user_data;
    b->owner->give_back(b);  // first, so the callback itself can try_submit again
    cb(code_of(s.code()), user);
  }
};

namespace {

// The request's own fields, checked without the engine: used only when every bridge
// record is taken, so that an invalid request still gets its invalid_* answer rather
// than "would block" (the engine checks all of this, and more, on the normal path).
int check_fields(const sectorcrypt_request* r) {
  sectorcrypt::SectorFormat f;
  if (!to_format(&r->format, &f)) return fail(SECTORCRYPT_EINVAL_FORMAT, "IV mode out of range");
  if (Status s = sectorcrypt::validate_format(f); !s) return result(s);
  if (r->key == 0) return fail(SECTORCRYPT_EINVAL_KEY, "key handle 0");
  sectorcrypt::IvSequence seq{};
  if (Status s = sectorcrypt::iv_sequence_for(f, r->start_sector, &seq); !s) return result(s);
  auto total = [&](const iovec* v, size_t n, size_t* sum) {
    if (n == 0 || n > SECTORCRYPT_MAX_SEGMENTS || v == nullptr) return SECTORCRYPT_EINVAL_LENGTH;
    *sum = 0;
    for (size_t i = 0; i < n; ++i) {
      if (v[i].iov_base == nullptr) return SECTORCRYPT_EINVAL_BUFFER;
      if (v[i].iov_len == 0) return SECTORCRYPT_EINVAL_LENGTH;
      *sum += v[i].iov_len;
    }
    return *sum % f.sector_size == 0 ? SECTORCRYPT_OK : SECTORCRYPT_EINVAL_LENGTH;
  };
  size_t src_total = 0, dst_total = 0;
  if (int c = total(r->src, r->src_count, &src_total); c != 0) return fail(c, "source segments");
  if (r->dst_count > 0) {
    if (int c = total(r->dst, r->dst_count, &dst_total); c != 0) return fail(c, "destination segments");
    if (dst_total != src_total) return fail(SECTORCRYPT_EINVAL_LENGTH, "dst total != src total");
  }
  return SECTORCRYPT_OK;
}

int submit_impl(sectorcrypt_engine* e, const sectorcrypt_request* r, bool blocking) {
  if (e == nullptr || r == nullptr) return fail(SECTORCRYPT_EINVAL, "null engine or request");
  const bool poll = (r->flags & SECTORCRYPT_REQ_POLL) != 0;
  if (poll && r->callback != nullptr) {
    return fail(SECTORCRYPT_EINVAL, "a request has a callback or SECTORCRYPT_REQ_POLL, not both");
  }
  if ((r->flags & ~(SECTORCRYPT_REQ_POLL | SECTORCRYPT_REQ_FLUSH)) != 0) {
    return fail(SECTORCRYPT_EINVAL, "unknown request flags");
  }
  sectorcrypt::Request q;
  if (!to_direction(r->direction, &q.dir)) return fail(SECTORCRYPT_EINVAL, "direction out of range");
  if (!to_format(&r->format, &q.format)) return fail(SECTORCRYPT_EINVAL_FORMAT, "IV mode out of range");
  q.key.value = r->key;
  q.start_sector = r->start_sector;
  q.src = r->src;
  q.src_count = r->src_count;
  q.dst = r->dst;
  q.dst_count = r->dst_count;
  q.flush = (r->flags & SECTORCRYPT_REQ_FLUSH) != 0;
  q.post_completion = poll;
  q.user_context = r->user_data;
  sectorcrypt_engine::Bridge* bridge = nullptr;
  if (r->callback != nullptr) {
    bridge = e->take_bridge(blocking);
    if (bridge == nullptr) {
      if (int c = check_fields(r); c != 0) return c;
      return fail(SECTORCRYPT_EWOULDBLOCK, "every pending-callback record is in use");
    }
    bridge->callback = r->callback;
    bridge->user_data = r->user_data;
    q.callback = &sectorcrypt_engine::trampoline;
    q.user_context = bridge;
  }
  const Status s = blocking ? e->engine->submit(q) : e->engine->try_submit(q);
  if (!s.ok() && bridge != nullptr) e->give_back(bridge);
  return result(s);
}

// The C view of an EngineConfig (the defaults, or what create resolved).
void to_c_config(const sectorcrypt::EngineConfig& c, int backend, sectorcrypt_config* out) {
  out->backend = backend;
  out->threads = c.threads;
  out->slot_count = c.slot_count;
  out->slot_bytes = c.slot_bytes;
  out->request_capacity = c.request_capacity;
  out->key_capacity = c.key_capacity;
  out->flush_deadline_us = c.flush_deadline_us;
  out->require_locked_memory = c.require_locked_memory ? 1 : 0;
  out->gpu_ordinal = c.gpu_ordinal;
  out->idle_spin_us = c.idle_spin_us;
  out->cpu_fallback = c.cpu_fallback ? 1 : 0;
}

}  // namespace

extern "C" {

void sectorcrypt_config_init(struct sectorcrypt_config* cfg) {
  if (cfg == nullptr) return;
  to_c_config(sectorcrypt::EngineConfig{}, SECTORCRYPT_BACKEND_AUTO, cfg);
}

void sectorcrypt_format_init(struct sectorcrypt_format* fmt) {
  if (fmt == nullptr) return;
  fmt->sector_size = 512;
  fmt->iv_mode = SECTORCRYPT_IV_PLAIN64;
  fmt->iv_large_sectors = 0;
}

void sectorcrypt_request_init(struct sectorcrypt_request* req) {
  if (req == nullptr) return;
  std::memset(req, 0, sizeof *req);
  req->direction = SECTORCRYPT_ENCRYPT;
  sectorcrypt_format_init(&req->format);
}

int sectorcrypt_create(const struct sectorcrypt_config* cfg, sectorcrypt_engine** out) {
  return guarded([&] {
    if (out == nullptr) return fail(SECTORCRYPT_EINVAL, "out is null");
    sectorcrypt_config c;
    sectorcrypt_config_init(&c);
    if (cfg != nullptr) c = *cfg;
    sectorcrypt::EngineConfig ec;
    switch (c.backend) {
      case SECTORCRYPT_BACKEND_AUTO: ec.backend = sectorcrypt::BackendKind::automatic; break;
      case SECTORCRYPT_BACKEND_CPU: ec.backend = sectorcrypt::BackendKind::cpu; break;
      case SECTORCRYPT_BACKEND_CUDA: ec.backend = sectorcrypt::BackendKind::cuda; break;
      default: return fail(SECTORCRYPT_EINVAL, "backend out of range");
    }
    ec.threads = c.threads;
    ec.slot_count = c.slot_count;
    ec.slot_bytes = c.slot_bytes;
    ec.request_capacity = c.request_capacity;
    ec.key_capacity = c.key_capacity;
    ec.flush_deadline_us = c.flush_deadline_us;
    ec.require_locked_memory = c.require_locked_memory != 0;
    ec.gpu_ordinal = c.gpu_ordinal;
    ec.idle_spin_us = c.idle_spin_us;
    ec.cpu_fallback = c.cpu_fallback != 0;
    auto w = std::make_unique<sectorcrypt_engine>();
    if (Status s = sectorcrypt::Engine::create(ec, &w->engine); !s) return result(s);
    // Twice the engine's request records (plus room for concurrent submitters): a bridge
    // is held from just before the engine accepts until just before the callback runs.
    const std::size_t n = 2 * w->engine->config().request_capacity + 64;
    w->bridges.resize(n);
    w->free_bridges.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      w->bridges[i] = {w.get(), static_cast<uint32_t>(i), nullptr, nullptr};
      w->free_bridges.push_back(static_cast<uint32_t>(n - 1 - i));
    }
    *out = w.release();
    return SECTORCRYPT_OK;
  });
}

void sectorcrypt_destroy(sectorcrypt_engine* engine) {
  try {
    delete engine;  // the Engine's destructor shuts down and waits for every completion
  } catch (...) {
  }
}

int sectorcrypt_add_key(sectorcrypt_engine* engine, const uint8_t* key, size_t len,
                        unsigned flags, sectorcrypt_key* out) {
  return guarded([&] {
    if (engine == nullptr || out == nullptr) return fail(SECTORCRYPT_EINVAL, "null engine or out");
    if (key == nullptr) return fail(SECTORCRYPT_EINVAL_KEY, "key is null");
    if ((flags & ~SECTORCRYPT_KEY_ALLOW_EQUAL_HALVES) != 0) return fail(SECTORCRYPT_EINVAL, "unknown key flags");
    sectorcrypt::KeyOptions o;
    o.allow_equal_halves = (flags & SECTORCRYPT_KEY_ALLOW_EQUAL_HALVES) != 0;
    sectorcrypt::KeyHandle h;
    if (Status s = engine->engine->add_key(key, len, o, &h); !s) return result(s);
    *out = h.value;
    return SECTORCRYPT_OK;
  });
}

int sectorcrypt_remove_key(sectorcrypt_engine* engine, sectorcrypt_key key) {
  return guarded([&] {
    if (engine == nullptr) return fail(SECTORCRYPT_EINVAL, "null engine");
    return result(engine->engine->remove_key(sectorcrypt::KeyHandle{key}));
  });
}

int sectorcrypt_submit(sectorcrypt_engine* engine, const struct sectorcrypt_request* req) {
  return guarded([&] { return submit_impl(engine, req, true); });
}

int sectorcrypt_try_submit(sectorcrypt_engine* engine, const struct sectorcrypt_request* req) {
  return guarded([&] { return submit_impl(engine, req, false); });
}

namespace {
int poll_impl(sectorcrypt_engine* e, sectorcrypt_completion* out, size_t max, bool wait,
              uint64_t timeout_us) {
  if (e == nullptr || (out == nullptr && max > 0)) return fail(SECTORCRYPT_EINVAL, "null engine or out");
  constexpr size_t kChunk = 32;
  sectorcrypt::Completion c[kChunk];
  size_t total = 0;
  while (total < max) {
    const size_t want = std::min(kChunk, max - total);
    const size_t got = (wait && total == 0) ? e->engine->wait_completions(c, want, timeout_us)
                                            : e->engine->poll(c, want);
    for (size_t i = 0; i < got; ++i) {
      out[total + i].status = code_of(c[i].status.code());
      out[total + i].user_data = c[i].user_context;
      out[total + i].bytes = c[i].bytes;
    }
    total += got;
    if (got < want) break;
  }
  return static_cast<int>(std::min<size_t>(total, 0x7fffffff));
}
}  // namespace

int sectorcrypt_poll(sectorcrypt_engine* engine, struct sectorcrypt_completion* out, size_t max) {
  return guarded([&] { return poll_impl(engine, out, std::min<size_t>(max, 0x7fffffff), false, 0); });
}

int sectorcrypt_wait(sectorcrypt_engine* engine, struct sectorcrypt_completion* out, size_t max,
                     uint64_t timeout_us) {
  return guarded([&] { return poll_impl(engine, out, std::min<size_t>(max, 0x7fffffff), true, timeout_us); });
}

int sectorcrypt_crypt(sectorcrypt_engine* engine, sectorcrypt_key key, int direction,
                      const struct sectorcrypt_format* format, uint64_t start_sector,
                      const void* in, void* out, size_t bytes) {
  return guarded([&] {
    if (engine == nullptr) return fail(SECTORCRYPT_EINVAL, "null engine");
    sectorcrypt::Direction d;
    sectorcrypt::SectorFormat f;
    if (!to_direction(direction, &d)) return fail(SECTORCRYPT_EINVAL, "direction out of range");
    if (!to_format(format, &f)) return fail(SECTORCRYPT_EINVAL_FORMAT, "format null or IV mode out of range");
    return result(engine->engine->crypt_sync(sectorcrypt::KeyHandle{key}, d, f, start_sector, in, out, bytes));
  });
}

int sectorcrypt_crypt_fd(sectorcrypt_engine* engine, sectorcrypt_key key, int direction,
                         const struct sectorcrypt_format* format, uint64_t start_sector,
                         int in_fd, off_t in_offset, int out_fd, off_t out_offset,
                         uint64_t bytes) {
  return guarded([&] {
    if (engine == nullptr) return fail(SECTORCRYPT_EINVAL, "null engine");
    sectorcrypt::Direction d;
    sectorcrypt::SectorFormat f;
    if (!to_direction(direction, &d)) return fail(SECTORCRYPT_EINVAL, "direction out of range");
    if (!to_format(format, &f)) return fail(SECTORCRYPT_EINVAL_FORMAT, "format null or IV mode out of range");
    return result(engine->engine->crypt_fd(sectorcrypt::KeyHandle{key}, d, f, start_sector, in_fd,
                                           in_offset, out_fd, out_offset, bytes));
  });
}

int sectorcrypt_drain(sectorcrypt_engine* engine) {
  return guarded([&] {
    if (engine == nullptr) return fail(SECTORCRYPT_EINVAL, "null engine");
    return result(engine->engine->drain());
  });
}

int sectorcrypt_shutdown(sectorcrypt_engine* engine) {
  return guarded([&] {
    if (engine == nullptr) return fail(SECTORCRYPT_EINVAL, "null engine");
    engine->engine->shutdown();
    return SECTORCRYPT_OK;
  });
}

int sectorcrypt_get_stats(const sectorcrypt_engine* engine, struct sectorcrypt_stats* out) {
  return guarded([&] {
    if (engine == nullptr || out == nullptr) return fail(SECTORCRYPT_EINVAL, "null engine or out");
    const sectorcrypt::EngineStats s = engine->engine->stats();
    out->bytes = s.bytes;
    out->requests = s.requests;
    out->requests_failed = s.requests_failed;
    out->batches = s.batches;
    out->would_block = s.would_block;
    out->latency_p50_ns = s.latency.p50_ns();
    out->latency_p99_ns = s.latency.p99_ns();
    return SECTORCRYPT_OK;
  });
}

int sectorcrypt_get_config(const sectorcrypt_engine* engine, struct sectorcrypt_config* out) {
  return guarded([&] {
    if (engine == nullptr || out == nullptr) return fail(SECTORCRYPT_EINVAL, "null engine or out");
    const bool cuda = engine->engine->backend() == sectorcrypt::BackendKind::cuda;
    to_c_config(engine->engine->config(),
                cuda ? SECTORCRYPT_BACKEND_CUDA : SECTORCRYPT_BACKEND_CPU, out);
    return SECTORCRYPT_OK;
  });
}

const char* sectorcrypt_backend_detail(const sectorcrypt_engine* engine) {
  if (engine == nullptr) return "";
  try {
    return engine->engine->backend_detail();
  } catch (...) {
    return "";
  }
}

const char* sectorcrypt_strerror(int code) {
  switch (code) {
    case SECTORCRYPT_OK: return "success";
    case SECTORCRYPT_EINVAL_KEY: return "invalid key: wrong length, equal XTS halves, or unknown handle";
    case SECTORCRYPT_EINVAL_FORMAT: return "invalid format: sector size or IV generator not supported";
    case SECTORCRYPT_EINVAL_LENGTH: return "invalid length: not a whole number of sectors, or sizes differ";
    case SECTORCRYPT_EINVAL_BUFFER: return "invalid buffer: null, overlapping, or misaligned start sector";
    case SECTORCRYPT_EWOULDBLOCK: return "would block: the engine is full right now; retry later";
    case SECTORCRYPT_ESHUTDOWN: return "the engine is shut down";
    case SECTORCRYPT_EBACKEND: return "backend failure: the output is not valid";
    case SECTORCRYPT_EUNAVAILABLE: return "unavailable: the requested backend or resource does not exist here";
    case SECTORCRYPT_ENOMEM: return "resources exhausted: memory, locked memory, streams or key table";
    case SECTORCRYPT_EINTERNAL: return "internal error (a bug)";
    case SECTORCRYPT_EINVAL: return "invalid argument: null pointer or value out of range";
    default: return "unknown sectorcrypt error code";
  }
}

const char* sectorcrypt_last_error(void) { return t_last_error; }

const char* sectorcrypt_version(void) { return SECTORCRYPT_VERSION; }

}  // extern "C"
